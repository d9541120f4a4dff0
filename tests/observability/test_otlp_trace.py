"""One complete trace, read back from a real OTLP/HTTP receiver: an eSIM order crosses the API,
the ES2+ HTTPS calls to simsmith's own SM-DP+ (which continues the trace from the W3C
traceparent the client injected), and the database; the access log line names the trace.
Tracing is configured the standard way only: OTEL_EXPORTER_OTLP_ENDPOINT."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from simcore import telemetry
from tests.api.conftest import make_keys, seed_inventory, settings
from tests.helpers.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.storage

SERVER, CLIENT = 2, 3


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    rec = OtlpReceiver()
    telemetry.shutdown()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rec.endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "simsmith-it")
    yield rec
    telemetry.shutdown()
    rec.close()


@pytest.mark.slow
def test_esim_order_is_one_trace_across_api_es2plus_smdp_and_db(
        engine: Engine, tmp_path: Path, receiver: OtlpReceiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    seed_inventory(engine, physical=1, esims=2)
    keys = make_keys(engine)
    app = create_app(settings(tmp_path, smdp_mode="es2plus"), engine=engine)
    assert telemetry.tracing_enabled()
    err = io.StringIO()
    with TestClient(app) as client:
        monkeypatch.setattr(sys, "stderr", err)
        r = client.post("/v1/esim-profiles", json={"external_ref": "trace-1"},
                        headers={"Authorization": f"Bearer {keys['admin']}",
                                 "Idempotency-Key": "trace-order-1"})
        monkeypatch.undo()
    assert r.status_code in (200, 201), r.text
    telemetry.flush()
    access = [json.loads(x) for x in err.getvalue().splitlines()
              if x.startswith("{") and '"request"' in x]
    (line,) = [a for a in access if a.get("route") == "/v1/esim-profiles"]
    spans = receiver.trace(line["trace_id"])
    by_id = {s.span_id: s for s in spans}

    (root,) = [s for s in spans if s.parent_id == ""]
    assert root.name == "POST /v1/esim-profiles" and root.kind == SERVER
    assert root.service == "simsmith-it"
    assert root.attributes["http.route"] == "/v1/esim-profiles"

    calls = [s for s in spans if s.kind == CLIENT and s.name.startswith("POST")]
    assert calls, [s.name for s in spans]  # the ES2+ HTTPS calls (httpx)
    smdp = [s for s in spans if s.kind == SERVER and s is not root]
    assert smdp, [s.name for s in spans]  # the SM-DP+'s side, same trace
    for s in smdp:
        assert by_id[s.parent_id] in calls  # continued from the injected traceparent
        assert "/gsma/rsp2/es2plus/" in str(s.attributes.get("http.target")
                                            or s.attributes.get("url.path") or s.name)
    db_spans = [s for s in spans if "db.system" in s.attributes
                or "db.system.name" in s.attributes]
    assert db_spans
    for s in spans:  # every span hangs off the one root
        seen = s
        while seen.parent_id:
            seen = by_id[seen.parent_id]
        assert seen is root
    # No secret in any attribute: statements are parameterised, not values.
    flat = json.dumps([s.attributes for s in spans])
    for secret_name in ('"ki"', '"opc"'):
        assert secret_name not in flat.lower()
