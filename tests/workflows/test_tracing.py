"""One trace per activation: every step's span (and the run's) carries the trace id the run
was started with (an API request's traceparent), whichever worker runs it; step metrics count
retries and compensations (simcore.telemetry)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from simcore import telemetry
from simcore.workflows import engine as wf
from simcore.workflows.service import get_workflow, start_activation
from simcore.workflows.steps import Deps
from tests.helpers.fake_hlr import FakeHlr
from tests.workflows.conftest import FAST

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"  # W3C Trace Context's example trace id


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    telemetry.shutdown()
    exporter = InMemorySpanExporter()
    assert telemetry.configure_tracing(exporter=exporter)
    yield exporter
    telemetry.shutdown()


def test_every_step_joins_the_runs_trace(deps: Deps, fake_hlr: FakeHlr,
                                         spans: InMemorySpanExporter) -> None:
    fake_hlr.down = 1  # one retry: two attempts of the hlr step, two advance() calls
    wid = start_activation(deps.engine, {"subscriber_ref": "t"}, actor="t", trace_id=TRACE_ID)
    w = wf.Worker(deps.engine, deps, policy=FAST)
    for _ in range(10):
        w.run_once()
    assert get_workflow(deps.engine, wid).status == wf.SUCCEEDED
    telemetry.flush()
    got = spans.get_finished_spans()
    names = [s.name for s in got]
    assert names.count("workflow.activation.hlr") == 2
    for n in ("validate", "reserve", "msisdn", "keys", "activate", "notify"):
        assert f"workflow.activation.{n}" in names
    assert {format(s.context.trace_id, "032x") for s in got} == {TRACE_ID}
    failed = [s for s in got if s.name == "workflow.activation.hlr" and not s.status.is_ok]
    assert len(failed) == 1
