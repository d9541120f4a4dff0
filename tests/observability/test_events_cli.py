"""`simsmith events relay | tail | status` through Typer's runner, against the real nats-server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from simcore import events
from simcore.db import transaction
from tests.helpers.nats_server import nats_url
from tools.cli import app

pytestmark = pytest.mark.storage
runner = CliRunner()


def test_relay_tail_status(engine: Engine, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:10]
    env = {"SIMSMITH_HOME": str(tmp_path / "home"),
           "SIMSMITH_DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "SIMSMITH_NATS_URL": nats_url(), "SIMSMITH_NATS_STREAM": f"C{tag}",
           "SIMSMITH_NATS_SUBJECT_PREFIX": f"c{tag}"}
    r = runner.invoke(app, ["events", "status", "--json"], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"name": "nats", "registered": False}
    from simcore import nats_relay

    nats_relay.register(engine)
    with transaction(engine) as tx:
        events.emit(tx, "sim.state_changed", "sim", "89990000000000000017",
                    {"from": "allocated", "to": "active"})
        events.emit(tx, "sim.swapped", "sim", "89990000000000000017", {"new": "x"})
    try:
        r = runner.invoke(app, ["events", "relay", "--once", "--json"], env=env)
        assert r.exit_code == 0, r.output
        out = json.loads(r.output)
        assert out["published"] == 2 and out["backlog"] == 0
        r = runner.invoke(app, ["events", "tail", "--all", "--count", "2", "--idle", "10",
                                "--json"], env=env)
        assert r.exit_code == 0, r.output
        lines = [json.loads(x) for x in r.output.splitlines()]
        assert [x["subject"] for x in lines] == [f"c{tag}.sim.activated", f"c{tag}.sim.swapped"]
        assert [x["event"]["subject_id"] for x in lines] == ["89990000000000000017"] * 2
        r = runner.invoke(app, ["events", "status"], env=env)
        assert r.exit_code == 0 and "2 published, backlog 0" in r.output
    finally:
        async def drop() -> None:
            import nats

            nc = await nats.connect(nats_url())
            with contextlib.suppress(Exception):
                await nc.jetstream().delete_stream(f"C{tag}")
            await nc.close()
        asyncio.run(drop())


def test_relay_without_a_server_says_so(engine: Engine, tmp_path: Path) -> None:
    env = {"SIMSMITH_HOME": str(tmp_path / "home"),
           "SIMSMITH_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    r = runner.invoke(app, ["events", "relay", "--once"], env=env)
    assert r.exit_code == 1
    assert "SIMSMITH_NATS_URL" in r.output
