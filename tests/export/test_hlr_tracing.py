"""HLR calls are traced: one `hlr.ctrl` client span per CTRL pipeline against the real osmo-hlr,
naming verbs and variable, never a value (K and OPc travel in them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from simcore import telemetry
from simcore.export.osmo_ctrl import CtrlClient

IMSI = "001019999000042"
K = "000102030405060708090a0b0c0d0e0f"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    telemetry.shutdown()
    exporter = InMemorySpanExporter()
    telemetry.configure_tracing("simsmith-test", exporter=exporter)
    yield exporter
    telemetry.shutdown()


def test_ctrl_pipeline_span(spans: InMemorySpanExporter, osmohlr: tuple[str, int, int]) -> None:
    host, ctrl, _ = osmohlr
    with telemetry.span("activation.hlr"), CtrlClient(host, ctrl) as c:
        c.pipeline([("SET", "subscriber.delete", IMSI)])
        replies = c.pipeline([("SET", "subscriber.create", IMSI),
                              ("SET", f"subscriber.by-imsi-{IMSI}.aud3g",
                               f"milenage,{K},opc,{K},5")])
        c.pipeline([("SET", "subscriber.delete", IMSI)])
    assert all(r.ok for r in replies)
    telemetry.flush()
    ctrl_spans = [s for s in spans.get_finished_spans() if s.name == "hlr.ctrl"]
    assert len(ctrl_spans) == 3
    attrs = dict(ctrl_spans[1].attributes or {})
    assert attrs["hlr.verbs"] == "SET" and attrs["hlr.commands"] == 2
    assert attrs["hlr.variable"] == "subscriber.create"
    assert attrs["server.address"] == host and attrs["server.port"] == ctrl
    for s in ctrl_spans:
        assert K not in repr(dict(s.attributes or {}))
