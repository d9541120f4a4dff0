"""The API process runs the NATS relay when SIMSMITH_NATS_URL is set: an eSIM order made over
HTTP reaches JetStream as <prefix>.esim_profile.released, without anyone calling the relay."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from simcore import nats_relay
from tests.api.conftest import make_keys, seed_inventory, settings
from tests.helpers.nats_server import nats_url

pytestmark = pytest.mark.storage


async def _messages(url: str, stream: str) -> list[Any]:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            return []
        return [await js.get_msg(stream, s)
                for s in range(info.state.first_seq, info.state.last_seq + 1)]
    finally:
        await nc.close()


@pytest.mark.slow
def test_serve_publishes_api_changes(engine: Engine, tmp_path: Path) -> None:
    seed_inventory(engine, physical=2, esims=2)
    keys = make_keys(engine)
    tag = uuid.uuid4().hex[:10]
    url = nats_url()
    app = create_app(settings(tmp_path, nats_url=url, nats_stream=f"S{tag}",
                              nats_subject_prefix=f"s{tag}", nats_poll_seconds=0.05),
                     engine=engine)
    try:
        with TestClient(app) as client:
            r = client.post("/v1/esim-profiles", json={"external_ref": "c-1"},
                            headers={"Authorization": f"Bearer {keys['admin']}",
                                     "Idempotency-Key": f"o-{tag}"})
            assert r.status_code in (200, 201), r.text
            iccid = r.json()["iccid"]
            deadline = time.monotonic() + 20
            while nats_relay.backlog(engine) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert nats_relay.backlog(engine) == 0
        msgs = asyncio.run(_messages(url, f"S{tag}"))
        released = [m for m in msgs if m.subject == f"s{tag}.esim_profile.released"]
        assert [json.loads(m.data)["subject_id"] for m in released] == [iccid]
        assert nats_relay.status(engine)["owner"] is None  # the lease went with the process
    finally:
        async def drop() -> None:
            import nats

            nc = await nats.connect(url)
            with contextlib.suppress(Exception):
                await nc.jetstream().delete_stream(f"S{tag}")
            await nc.close()
        asyncio.run(drop())
