"""simcore.telemetry: spans, W3C Trace Context propagation, trace ids in logs, step metrics."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import structlog
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client.parser import text_string_to_metric_families

from simcore import log, telemetry

# W3C Trace Context (Recommendation 2021-11-23), §3.2.2.7 / examples: the traceparent value.
W3C_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
W3C_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_off_by_default_and_spans_cost_nothing() -> None:
    telemetry.shutdown()
    assert not telemetry.configure_tracing(environ={})
    with telemetry.span("x", iccid="8988") as s:
        assert s is None
        assert telemetry.current_trace_id() is None
        assert telemetry.inject_headers({}) == {}
    telemetry.shutdown()


@pytest.mark.parametrize(("env", "wanted"), [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, False),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, False),
])
def test_tracing_requested_by_standard_variables(env: dict[str, str], wanted: bool) -> None:
    assert telemetry.tracing_requested(env) is wanted


def test_nested_spans_share_the_trace(spans: InMemorySpanExporter) -> None:
    with telemetry.span("outer", workflow="activation") as outer:
        trace_id = telemetry.current_trace_id()
        with telemetry.span("inner", step="hlr", attempt=1, ignored=None):
            assert telemetry.current_trace_id() == trace_id
    assert outer is not None
    telemetry.flush()
    got = {s.name: s for s in spans.get_finished_spans()}
    assert set(got) == {"outer", "inner"}
    assert format(got["inner"].context.trace_id, "032x") == trace_id
    assert got["inner"].parent is not None
    assert got["inner"].parent.span_id == got["outer"].context.span_id
    assert dict(got["inner"].attributes or {}) == {"step": "hlr", "attempt": 1}
    assert got["outer"].resource.attributes["service.name"] == "simsmith-test"


def test_an_exception_marks_the_span_failed(spans: InMemorySpanExporter) -> None:
    with pytest.raises(RuntimeError), telemetry.span("boom"):
        raise RuntimeError("peer down")
    telemetry.flush()
    (s,) = spans.get_finished_spans()
    assert s.status.status_code is StatusCode.ERROR
    assert any(e.name == "exception" for e in s.events)


@pytest.mark.parametrize("name", ["ki", "OPc", "pin1", "transport_key"])
def test_secret_attributes_are_refused(spans: InMemorySpanExporter, name: str) -> None:
    with pytest.raises(telemetry.SecretInTelemetry, match=name), \
            telemetry.span("hsm.milenage", **{name: "00" * 16}):
        pass


def test_w3c_traceparent_continues_and_propagates(spans: InMemorySpanExporter) -> None:
    with telemetry.continue_trace({"TraceParent": W3C_TRACEPARENT}):
        assert telemetry.current_trace_id() == W3C_TRACE_ID
        with telemetry.span("smdp.es2plus.download_order"):
            headers = telemetry.inject_headers({"content-type": "application/json"})
    version, trace_id, parent_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", W3C_TRACE_ID, "01")
    telemetry.flush()
    (s,) = spans.get_finished_spans()
    assert parent_id == format(s.context.span_id, "016x")
    assert s.parent is not None and format(s.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert telemetry.current_trace_id() is None  # detached after the block


@pytest.mark.parametrize("bad", [
    "", "00-4bf92f3577b34da6a3ce929d0e0e4736",
    "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id: invalid
])
def test_malformed_traceparent_starts_nothing(spans: InMemorySpanExporter, bad: str) -> None:
    with telemetry.continue_trace({"traceparent": bad}):
        assert telemetry.current_trace_id() is None


def test_json_log_lines_carry_the_trace_id(spans: InMemorySpanExporter,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    log.configure("INFO", json=True)
    try:
        with telemetry.span("request"):
            trace_id = telemetry.current_trace_id()
            log.get_logger("t").info("inside", iccid="8988")
        log.get_logger("t").info("outside")
    finally:
        structlog.reset_defaults()
        log.configure("WARNING")
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    assert inside["trace_id"] == trace_id and len(inside["span_id"]) == 16
    assert "trace_id" not in outside


def _sample(name: str, labels: dict[str, str]) -> float:
    body, ctype = telemetry.metrics_text()
    assert ctype.startswith("text/plain")
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def test_step_metrics() -> None:
    lbl = {"workflow": "t-activation", "step": "hlr"}
    before = _sample("simsmith_workflow_step_duration_seconds_count", {**lbl, "outcome": "ok"})
    telemetry.record_step("t-activation", "hlr", "ok", 0.012)
    telemetry.record_step("t-activation", "hlr", "ok", 0.3)
    telemetry.count_retry("t-activation", "hlr")
    telemetry.count_compensation("t-activation", "hlr", "ok")
    telemetry.record_workflow("t-activation", "compensated")
    assert _sample("simsmith_workflow_step_duration_seconds_count",
                   {**lbl, "outcome": "ok"}) == before + 2
    assert _sample("simsmith_workflow_step_duration_seconds_bucket",
                   {**lbl, "outcome": "ok", "le": "0.025"}) >= 1
    assert _sample("simsmith_workflow_step_retries_total", lbl) >= 1
    assert _sample("simsmith_workflow_compensations_total", {**lbl, "outcome": "ok"}) >= 1
    assert _sample("simsmith_workflow_outcomes_total",
                   {"workflow": "t-activation", "outcome": "compensated"}) >= 1
    body, _ = telemetry.metrics_text()
    assert b"_created" not in body


def test_hsm_operations_are_spans_without_secrets(spans: InMemorySpanExporter,
                                                  tmp_path: Path) -> None:
    from hsm_sim.keyref import KeyType
    from hsm_sim.soft import SoftHsm

    hsm = SoftHsm.init(tmp_path / "hsm", components=[b"\x11" * 32, b"\x2c" * 32])
    with telemetry.span("activation.keys"):
        ref = hsm.generate("8988000000000000001", KeyType.KI)
        hsm.kcv(ref)
    telemetry.flush()
    got = {s.name: s for s in spans.get_finished_spans()}
    assert {"hsm.generate", "hsm.kcv"} <= set(got)
    for name in ("hsm.generate", "hsm.kcv"):
        assert dict(got[name].attributes or {}) == {"hsm.backend": "soft"}
        assert got[name].parent is not None
        assert got[name].parent.span_id == got["activation.keys"].context.span_id


def test_statements_are_spans_inside_a_trace_only(spans: InMemorySpanExporter,
                                                  tmp_path: Path) -> None:
    from sqlalchemy import text

    from simcore import db

    eng = db.make_engine(f"sqlite:///{tmp_path / 's.db'}")
    try:
        with eng.connect() as c:
            c.execute(text("SELECT 1"))  # an idle poll: no trace of its own
            with telemetry.span("request"):
                c.execute(text("SELECT 2"))
    finally:
        eng.dispose()
    telemetry.flush()
    got = spans.get_finished_spans()
    request = next(s for s in got if s.name == "request")
    statements = [s for s in got if s.name != "request"]
    assert statements and all(s.parent is not None
                              and s.parent.span_id == request.context.span_id
                              for s in statements)
    assert any("SELECT 2" in str((s.attributes or {}).get("db.statement")
                                 or (s.attributes or {}).get("db.query.text")) for s in statements)
