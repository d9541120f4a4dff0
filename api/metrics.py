"""Request metrics in the Prometheus text exposition format (version 0.0.4), without a client
library: a counter of requests and a latency histogram per method, route template and status
class. Each worker process counts its own requests (scrape each, or sum them).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: dict[tuple[str, str, str], int] = defaultdict(int)
        self._hist: dict[tuple[str, str], list[int]] = {}
        self._sum: dict[tuple[str, str], float] = defaultdict(float)
        # Collected at scrape time: name -> callable giving {label value: number}.
        self.gauges: dict[str, Callable[[], dict[str, float]]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._count[(method, route, str(status))] += 1
            key = (method, route)
            counts = self._hist.get(key)
            if counts is None:
                counts = self._hist[key] = [0] * (len(BUCKETS) + 1)
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
                    break
            else:
                counts[-1] += 1
            self._sum[key] += seconds

    def render(self) -> str:
        lines = ["# HELP simsmith_http_requests_total HTTP requests by method, route, status.",
                 "# TYPE simsmith_http_requests_total counter"]
        with self._lock:
            count = dict(self._count)
            hist = {k: list(v) for k, v in self._hist.items()}
            sums = dict(self._sum)
        for (method, route, status), n in sorted(count.items()):
            lines.append(f'simsmith_http_requests_total{{method="{method}",'
                         f'route="{_escape(route)}",status="{status}"}} {n}')
        lines += ["# HELP simsmith_http_request_duration_seconds Request latency.",
                  "# TYPE simsmith_http_request_duration_seconds histogram"]
        for (method, route), counts in sorted(hist.items()):
            labels = f'method="{method}",route="{_escape(route)}"'
            acc = 0
            for bound, n in zip(BUCKETS, counts, strict=False):
                acc += n
                lines.append(f'simsmith_http_request_duration_seconds_bucket{{{labels},'
                             f'le="{bound}"}} {acc}')
            acc += counts[-1]
            lines.append(f'simsmith_http_request_duration_seconds_bucket{{{labels},le="+Inf"}} '
                         f"{acc}")
            lines.append(f"simsmith_http_request_duration_seconds_sum{{{labels}}} "
                         f"{sums[(method, route)]:.6f}")
            lines.append(f"simsmith_http_request_duration_seconds_count{{{labels}}} {acc}")
        for name, fn in sorted(self.gauges.items()):
            try:
                values = fn()
            except Exception:  # a gauge that cannot be read is left out, not fatal
                continue
            lines.append(f"# TYPE {name} gauge")
            lines += [f'{name}{{kind="{_escape(k)}"}} {v}' for k, v in sorted(values.items())]
        return "\n".join(lines) + "\n"
