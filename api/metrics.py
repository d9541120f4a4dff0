"""The API's Prometheus metrics, on prometheus-client (simcore.telemetry holds the collectors).

Request metrics keep their names: `simsmith_http_requests_total{method,route,status}` and the
`simsmith_http_request_duration_seconds{method,route}` histogram (same buckets). Gauges read at
scrape time (the webhook backlog, the NATS relay backlog) live in a registry of this app, each
a family with one `kind` label. With several worker processes, set PROMETHEUS_MULTIPROC_DIR (an
empty directory, the same for every worker, cleared before start): counters and histograms are
then summed over the workers at each scrape (docs/observability.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from simcore import telemetry

BUCKETS = telemetry.HTTP_BUCKETS


class _Gauges(Collector):
    def __init__(self, gauges: dict[str, Callable[[], dict[str, float]]]) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[Any]:
        for name, fn in sorted(self.gauges.items()):
            try:
                values = fn()
            except Exception:  # a gauge that cannot be read is left out, not fatal
                continue
            family = GaugeMetricFamily(name, f"{name} by kind.", labels=["kind"])
            for kind, value in sorted(values.items()):
                family.add_metric([kind], float(value))
            yield family


class Metrics:
    def __init__(self) -> None:
        # Collected at scrape time: name -> callable giving {label value: number}.
        self.gauges: dict[str, Callable[[], dict[str, float]]] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Gauges(self.gauges))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        telemetry.record_http(method, route, status, seconds)

    def render(self) -> str:
        return self.exposition()[0].decode()

    def exposition(self) -> tuple[bytes, str]:
        """The body and content type of a scrape."""
        return telemetry.metrics_text(extra=self.registry)
