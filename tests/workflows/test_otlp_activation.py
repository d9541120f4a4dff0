"""One complete trace for an activation, read back from a real OTLP/HTTP receiver (tracing set up
by OTEL_EXPORTER_OTLP_ENDPOINT only): the API request that started it, every saga step and the
database statements inside them share the trace the request began. (The stocked SIMs have their
keys, so no HSM operation runs here: tests/observability covers the HSM spans.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from api.settings import ApiSettings
from simcore import apikeys, telemetry
from simcore.workflows import engine as wf
from simcore.workflows.steps import Deps
from tests.helpers.otlp_receiver import OtlpReceiver
from tests.workflows.conftest import FAST

SERVER = 2


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    rec = OtlpReceiver()
    telemetry.shutdown()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rec.endpoint)
    yield rec
    telemetry.shutdown()
    rec.close()


@pytest.mark.slow
def test_activation_is_one_trace(stocked: Engine, deps: Deps, tmp_path: Path,
                                 receiver: OtlpReceiver) -> None:
    key = apikeys.create(stocked, "k-w", ["sims:write"], actor="t")[1]
    settings = ApiSettings(home=tmp_path, webhooks_enabled=False,  # type: ignore[call-arg]
                           api_key_cache_seconds=0)
    with TestClient(create_app(settings, engine=stocked)) as c:
        r = c.post("/v1/activations", json={"subscriber_ref": "traced-1"},
                   headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "tr-1"})
    assert r.status_code == 202, r.text
    trace_id = r.json()["trace_id"]
    telemetry.instrument_engine(deps.engine)
    w = wf.Worker(deps.engine, deps, policy=FAST)
    for _ in range(30):
        w.run_once()
    telemetry.flush()
    spans = receiver.trace(trace_id)
    names = [s.name for s in spans]
    roots = [s for s in spans if s.parent_id == ""]
    assert [s.name for s in roots] == ["POST /v1/activations"] and roots[0].kind == SERVER
    for step in ("validate", "reserve", "msisdn", "keys", "hlr", "activate", "notify"):
        assert f"workflow.activation.{step}" in names, names
    assert any("db.system" in s.attributes or "db.system.name" in s.attributes
               for s in spans)
    assert {s.service for s in spans} == {"simsmith"}
