"""What `make run` serves, activating through the API with nothing else running: a real
`simsmith serve` process (its own workflow worker threads, no osmo-hlr named) takes
`POST /v1/activations`, and the run succeeds into the embedded HLR (issue 18). SQLite and
PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from simcore import apikeys
from simcore.ports.embedded_hlr import EmbeddedHlr
from tests.api.live import LiveServer

pytestmark = pytest.mark.slow  # a server process


def test_serve_activates_into_the_embedded_hlr(stocked: Engine, tmp_path: Path) -> None:
    key = apikeys.create(stocked, "k", ["sims:read", "sims:write"], actor="t")[1]
    auth = {"Authorization": f"Bearer {key}"}
    server = LiveServer(stocked.url.render_as_string(hide_password=False), tmp_path, workers=1)
    try:
        r = httpx.post(server.url + "/v1/activations", json={"subscriber_ref": "live-1"},
                       headers=auth, timeout=30)
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 90  # a loaded machine: only a bound on waiting
        body = r.json()
        while body["status"] not in ("succeeded", "failed", "stuck") \
                and time.monotonic() < deadline:
            time.sleep(0.2)
            body = httpx.get(r.headers["location"], headers=auth, timeout=30).json()
    finally:
        server.stop()
    assert body["status"] == "succeeded", (body["error"], body["steps"])
    entry = EmbeddedHlr(stocked).lookup(body["data"]["msisdn"])
    assert (entry.imsi, entry.iccid, entry.access) == (
        body["data"]["imsi"], body["data"]["iccid"], "allowed")
