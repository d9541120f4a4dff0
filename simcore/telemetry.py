"""Telemetry: OpenTelemetry traces and Prometheus metrics (design §10; docs/observability.md).

Traces follow W3C Trace Context (Recommendation, 23 November 2021): §3.2 `traceparent`, §3.3
`tracestate`. Tracing is off unless the standard OpenTelemetry environment variables ask for it
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_TRACES_EXPORTER`
naming an exporter; `OTEL_SDK_DISABLED=true` wins over all): `configure_tracing()` reads them once
per process. While it is off, `span()` costs one flag test and no OpenTelemetry call.

Metrics are prometheus-client collectors in the default registry; with several server worker
processes, `PROMETHEUS_MULTIPROC_DIR` makes them multiprocess-safe (`metrics_text()` then merges
every worker's files).

The API every layer above hsm_sim uses:

    with span("activation.hlr", iccid=iccid):       # a child of the current span, if tracing
        ...
    current_trace_id()                               # "4bf9…" (32 hex digits) or None
    headers = inject_headers({})                     # {"traceparent": "00-…-…-01"} or {}
    with continue_trace(request_headers): ...        # spans below are children of the caller's
    record_step("activation", "hlr", "ok", 0.012)    # per-step latency histogram + outcome
    count_retry("activation", "hlr"); count_compensation("activation", "hlr", "ok")
    record_workflow("activation", "completed")

Attributes never carry secrets: `span()` refuses attribute names that look like one (Ki, OPc,
PIN, …), as the outbox refuses such payload keys.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess

from simcore.errors import SimsmithError
from simcore.records import SECRET_FIELDS

TRACER_NAME = "simsmith"
AttrValue = str | int | float | bool | None

_lock = threading.Lock()
_enabled = False
_configured = False
_provider: Any = None


class SecretInTelemetry(SimsmithError):
    """A span attribute was named like a secret (Ki, OPc, PIN, …): secrets never leave in traces."""


# --- tracing: configuration ---------------------------------------------------------------------

def tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the OTEL_* variables in `environ` (default: the process's) ask for traces."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(exporter or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_tracing(service_name: str = "simsmith", *, exporter: Any = None,
                      environ: Mapping[str, str] | None = None) -> bool:
    """Install the OpenTelemetry SDK tracer provider if the environment asks for it (or an
    `exporter` is given, for tests); returns whether tracing is on. Called by entry points
    (`simsmith serve`, the CLI), never at import; a second call is a no-op.

    The OTLP exporter takes endpoint, headers, timeout and protocol from the standard
    `OTEL_EXPORTER_OTLP_*` variables itself; `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`
    override `service_name`.
    """
    global _enabled, _configured, _provider
    with _lock:
        if _configured:
            return _enabled
        if exporter is None and not tracing_requested(environ):
            _configured = True
            return False
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if exporter is None:
            exporter = _exporter_from_env(environ)
        env = os.environ if environ is None else environ
        named = env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get(
            "OTEL_RESOURCE_ATTRIBUTES", "")
        # Resource.create() merges OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME in; the given
        # name only when the environment names none.
        resource = Resource.create({} if named else {SERVICE_NAME: service_name})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _provider = provider
        _enabled = _configured = True
        _instrument_libraries()
        return True


# --- instrumentation of the libraries and peers simsmith calls ----------------------------------

_instrumented_engines: weakref.WeakSet[Any] = weakref.WeakSet()
_libraries_done = False


class _CurrentTracer(trace.Tracer):
    """A tracer that asks the global provider at each span: instrumentation set up once keeps
    following the provider configured now (a process may shut tracing down and configure it
    again, as the test suite does)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        return trace.get_tracer(self._name).start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return trace.get_tracer(self._name).start_as_current_span(*args, **kwargs)


class _ChildOnlyTracer(_CurrentTracer):
    """Statement spans only inside a trace: a worker's idle poll (the webhook fan-out, the NATS
    relay, workflow claims) would otherwise start a trace of its own every fraction of a second."""

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        if not trace.get_current_span().get_span_context().is_valid:
            return trace.INVALID_SPAN
        return super().start_span(*args, **kwargs)


class _CurrentProvider(trace.TracerProvider):
    def get_tracer(self, instrumenting_module_name: str, *args: Any, **kwargs: Any) -> Any:
        return _CurrentTracer(instrumenting_module_name)


_CURRENT_PROVIDER = _CurrentProvider()


def _instrument_libraries() -> None:
    """httpx client spans with traceparent injected (ES2+, ES9+, webhooks), and HSM operation
    spans. Once per process: the patches stay; with tracing shut down they record nothing."""
    global _libraries_done
    if _libraries_done:
        return
    _libraries_done = True
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument(tracer_provider=_CURRENT_PROVIDER)
    _instrument_hsm()


def instrument_engine(engine: Any) -> None:
    """Spans for every statement on `engine` (opentelemetry-instrumentation-sqlalchemy), when
    tracing is on; a no-op otherwise or when done already. simcore.db.make_engine calls it."""
    if not _enabled or engine in _instrumented_engines:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter

    meter = get_meter(TRACER_NAME)
    usage = meter.create_up_down_counter("db.client.connections.usage", unit="connections")
    tracer = _ChildOnlyTracer("opentelemetry.instrumentation.sqlalchemy")
    EngineTracer(tracer, engine, usage)  # type: ignore[no-untyped-call]
    _instrumented_engines.add(engine)


def _hsm_operations() -> list[str]:
    from hsm_sim.hsm import Hsm

    return [n for n, v in vars(Hsm).items() if callable(v) and not n.startswith("_")]


def _instrument_hsm() -> None:
    """A span `hsm.<operation>` around every operation of the HSM protocol (hsm_sim.hsm.Hsm) on
    both backends, attributes naming the backend only: no key, reference or argument."""
    import functools

    from hsm_sim.soft import SoftHsm

    classes: list[type] = [SoftHsm]
    try:
        from hsm_sim.pkcs11 import Pkcs11Hsm
    except ImportError:  # python-pkcs11 not installed: the soft HSM only
        pass
    else:
        classes.append(Pkcs11Hsm)
    for cls in classes:
        backend = "pkcs11" if cls.__name__.startswith("Pkcs11") else "soft"
        for name in _hsm_operations():
            original = getattr(cls, name, None)
            if original is None or getattr(original, "_simsmith_traced", False):
                continue

            def make(fn: Any, op: str, be: str) -> Any:
                @functools.wraps(fn)
                def traced(*args: Any, **kwargs: Any) -> Any:
                    if not _enabled:
                        return fn(*args, **kwargs)
                    with span(f"hsm.{op}", attrs={"hsm.backend": be}):
                        return fn(*args, **kwargs)
                traced._simsmith_traced = True  # type: ignore[attr-defined]
                return traced

            setattr(cls, name, make(original, name, backend))


def _exporter_from_env(environ: Mapping[str, str] | None) -> Any:
    env = os.environ if environ is None else environ
    name = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter
        return ConsoleSpanExporter()
    # OTLP over HTTP/protobuf (the OTel default protocol for HTTP, port 4318).
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter()


def tracing_enabled() -> bool:
    return _enabled


def flush(timeout_millis: int = 5000) -> None:
    """Export every finished span now (tests, and before a short-lived command exits)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis)


def shutdown() -> None:
    """Flush and stop the exporter; tracing is off afterwards (and may be configured again)."""
    global _enabled, _configured, _provider
    with _lock:
        if _provider is not None:
            _provider.shutdown()
        _provider = None
        _enabled = _configured = False
        # The global provider cannot be replaced through the API once set; tests that configure
        # again go through _reset_global_provider().
        _reset_global_provider()


def _reset_global_provider() -> None:
    # opentelemetry-api sets its global provider once (a Once guard); a process that shuts
    # tracing down and configures it again (the test suite) resets that guard.
    trace._TRACER_PROVIDER_SET_ONCE = trace.Once()
    trace._TRACER_PROVIDER = None


# --- tracing: spans and propagation -------------------------------------------------------------

@contextmanager
def span(name: str, *, kind: trace.SpanKind = trace.SpanKind.INTERNAL,
         attrs: Mapping[str, AttrValue] | None = None,
         **attributes: AttrValue) -> Iterator[Any]:
    """A span named `name` around the block, child of the current one; yields the span, or None
    when tracing is off. An exception leaving the block is recorded and marks the span as an
    error. Attributes come as keywords, or in `attrs` for dotted names (`server.address`);
    values of None are left out; names that look like secrets are refused."""
    if not _enabled:
        yield None
        return
    attrs = {k: v for k, v in {**(attrs or {}), **attributes}.items() if v is not None}
    for key in attrs:
        if key.lower() in SECRET_FIELDS:
            raise SecretInTelemetry(f"span {name!r} attribute {key!r}: secrets never enter traces")
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(name, kind=kind, attributes=attrs) as s:
        yield s


def current_trace_id() -> str | None:
    """The current trace id as 32 lower-case hex digits, or None outside any (sampled or remote)
    span — the value logged as `trace_id`."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x")


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


def outbox_traceparent() -> str | None:
    """The traceparent an outbox event records (simcore.models.OutboxEvent): the current span's
    while tracing is on, else None without touching OpenTelemetry (this runs on every write)."""
    if not _enabled:
        return None
    return current_traceparent()


def inject_headers(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add `traceparent` (and `tracestate`) for the current span to `headers` and return them;
    unchanged when there is no current span."""
    if trace.get_current_span().get_span_context().is_valid:
        inject(headers)
    return headers


def extract_context(headers: Mapping[str, str]) -> otel_context.Context:
    """The OpenTelemetry context a caller sent in `traceparent`/`tracestate` (header names are
    matched without regard to case); an empty context when there is none or it is malformed."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return extract(lowered)


@contextmanager
def continue_trace(headers: Mapping[str, str] | None) -> Iterator[None]:
    """Make the trace a caller sent in `headers` the current one for the block (a consumer of an
    outbox event, a peer's request): spans opened inside are its children."""
    if not headers:
        yield
        return
    token = otel_context.attach(extract_context(headers))
    try:
        yield
    finally:
        otel_context.detach(token)


# --- metrics ------------------------------------------------------------------------------------

# Counters are exposed as <name>_total only: the <name>_created series doubles the output for no
# reader of ours.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Request latency buckets kept from the hand-written exporter this replaces.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
STEP_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter("simsmith_http_requests", "HTTP requests by method, route, status.",
                        ["method", "route", "status"])
HTTP_DURATION = Histogram("simsmith_http_request_duration_seconds", "Request latency.",
                          ["method", "route"], buckets=HTTP_BUCKETS)

STEP_DURATION = Histogram(
    "simsmith_workflow_step_duration_seconds",
    "Workflow step latency by workflow, step and outcome (ok, retry, failed, compensated).",
    ["workflow", "step", "outcome"], buckets=STEP_BUCKETS)
STEP_RETRIES = Counter("simsmith_workflow_step_retries", "Workflow step retries.",
                       ["workflow", "step"])
COMPENSATIONS = Counter("simsmith_workflow_compensations",
                        "Workflow steps compensated, by outcome (ok, failed).",
                        ["workflow", "step", "outcome"])
WORKFLOW_OUTCOMES = Counter("simsmith_workflow_outcomes",
                            "Finished workflows by outcome (completed, compensated, failed).",
                            ["workflow", "outcome"])

WEBHOOK_DELIVERIES = Counter("simsmith_webhook_deliveries",
                             "Webhook delivery attempts by outcome (delivered, retry, dead).",
                             ["outcome"])
NATS_PUBLISHED = Counter("simsmith_nats_published", "Outbox events published to NATS JetStream "
                         "(acknowledged; duplicates the stream dropped count too).")
NATS_PUBLISH_FAILURES = Counter("simsmith_nats_publish_failures",
                                "NATS publish attempts that failed (retried later).")


def record_http(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)


def record_step(workflow: str, step: str, outcome: str, seconds: float) -> None:
    """One execution of a workflow step: latency and outcome (ok, retry, failed, …)."""
    STEP_DURATION.labels(workflow, step, outcome).observe(seconds)


def count_retry(workflow: str, step: str) -> None:
    STEP_RETRIES.labels(workflow, step).inc()


def count_compensation(workflow: str, step: str, outcome: str = "ok") -> None:
    COMPENSATIONS.labels(workflow, step, outcome).inc()


def record_workflow(workflow: str, outcome: str) -> None:
    WORKFLOW_OUTCOMES.labels(workflow, outcome).inc()


def metrics_text(extra: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The Prometheus text exposition of every simsmith metric and its content type.

    In multiprocess mode (PROMETHEUS_MULTIPROC_DIR set before the workers start) the values come
    from every worker's files; `extra` adds collectors of this process only (gauges read at
    scrape time, such as the webhook backlog)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if extra is not None:
        body += generate_latest(extra)
    return body, CONTENT_TYPE_LATEST
