"""The outbox relay to NATS JetStream (simcore.nats_relay) against a real nats-server, on SQLite
and PostgreSQL: subjects, order, Nats-Msg-Id de-duplication, its own marker beside the webhook
fan-out's, the lease, and catching up in order after NATS was down while changes continued."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlmodel import col

from simcore import events, nats_relay, webhooks
from simcore.db import read_session, transaction
from simcore.models import OutboxEvent
from tests.helpers.nats_server import PrivateNats, nats_url

pytestmark = pytest.mark.storage


@pytest.mark.parametrize(("topic", "payload", "subject"), [
    ("sim.state_changed", {"from": "allocated", "to": "active"}, "simsmith.sim.activated"),
    ("sim.state_changed", {"from": "suspended", "to": "active"}, "simsmith.sim.resumed"),
    ("sim.state_changed", {"from": "active", "to": "suspended"}, "simsmith.sim.suspended"),
    ("sim.state_changed", {"from": "active", "to": "terminated"}, "simsmith.sim.terminated"),
    ("sim.state_changed", {"from": "terminated", "to": "quarantine"},
     "simsmith.sim.quarantined"),
    ("sim.state_changed", {"from": "personalised", "to": "in_stock"}, "simsmith.sim.stocked"),
    ("esim_profile.state_changed", {"from": "available", "to": "released"},
     "simsmith.esim_profile.released"),
    ("esim_profile.state_changed", {"to": "error"}, "simsmith.esim_profile.failed"),
    ("sim.swapped", {}, "simsmith.sim.swapped"),
    ("esim.profiles_available", {}, "simsmith.esim.profiles_available"),
    ("batch.created", {}, "simsmith.batch.created"),
    ("odd topic*>", {}, "simsmith.odd_topic__.event"),
])
def test_subjects(topic: str, payload: dict[str, Any], subject: str) -> None:
    assert nats_relay.subject_for(topic, payload) == subject


def _emit(engine: Engine, n: int, start: int = 0) -> list[int]:
    for i in range(start, start + n):
        with transaction(engine) as tx:
            to = ("active", "suspended")[i % 2]
            events.emit(tx, "sim.state_changed", "sim", f"8999{i:015d}",
                        {"from": "allocated", "to": to, "i": i})
    with read_session(engine) as s:
        return list(s.execute(select(col(OutboxEvent.id)).order_by(col(OutboxEvent.id))
                              .offset(start)).scalars())


def _settings(url: str) -> nats_relay.RelaySettings:
    tag = uuid.uuid4().hex[:10]
    # A stream and subject space of this test's own on the shared server.
    return nats_relay.RelaySettings(url=url, stream=f"T{tag}", subject_prefix=f"t{tag}",
                                    poll_seconds=0.05, publish_timeout=1.0, max_backoff=0.3)


async def _read_stream(url: str, stream: str) -> list[Any]:
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        return [await js.get_msg(stream, seq) for seq in
                range(info.state.first_seq, info.state.last_seq + 1)]
    finally:
        await nc.close()


async def _drop_stream(url: str, stream: str) -> None:
    import nats

    nc = await nats.connect(url)
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


@pytest.fixture
def shared(engine: Engine) -> Iterator[tuple[Engine, nats_relay.RelaySettings]]:
    settings = _settings(nats_url())
    nats_relay.register(engine)
    yield engine, settings
    with contextlib.suppress(Exception):
        asyncio.run(_drop_stream(settings.url, settings.stream))


def _relay_all(relay: nats_relay.NatsRelay) -> int:
    async def go() -> int:
        total = 0
        try:
            while n := await relay.run_once():
                total += n
        finally:
            await relay.close()
        return total
    return asyncio.run(go())


def test_events_published_in_order_with_their_ids(
        shared: tuple[Engine, nats_relay.RelaySettings]) -> None:
    engine, settings = shared
    ids = _emit(engine, 7)
    relay = nats_relay.NatsRelay(engine, settings)
    assert _relay_all(relay) == 7
    msgs = asyncio.run(_read_stream(settings.url, settings.stream))
    p = settings.subject_prefix
    assert [m.subject for m in msgs] == [f"{p}.sim.{('activated', 'suspended')[i % 2]}"
                                         for i in range(7)]
    assert [m.headers["Nats-Msg-Id"] for m in msgs] == [str(i) for i in ids]
    assert [m.headers["Simsmith-Topic"] for m in msgs] == ["sim.state_changed"] * 7
    bodies = [json.loads(m.data) for m in msgs]
    assert [b["id"] for b in bodies] == ids
    assert [b["data"]["i"] for b in bodies] == list(range(7))
    assert nats_relay.backlog(engine) == 0
    st = nats_relay.status(engine)
    assert st["relayed_count"] == 7 and st["last_event_id"] == ids[-1]


def test_republished_events_are_dropped_as_duplicates(
        shared: tuple[Engine, nats_relay.RelaySettings]) -> None:
    """A relay that died after JetStream's ack but before marking the events sends them again
    with the same Nats-Msg-Id: the stream keeps one copy."""
    engine, settings = shared
    _emit(engine, 5)
    assert _relay_all(nats_relay.NatsRelay(engine, settings)) == 5
    with transaction(engine) as s:  # as if the marks had never been written
        s.execute(update(OutboxEvent).values(relayed_at=None))
    assert nats_relay.backlog(engine) == 5
    assert _relay_all(nats_relay.NatsRelay(engine, settings)) == 5
    msgs = asyncio.run(_read_stream(settings.url, settings.stream))
    assert len(msgs) == 5
    assert len({m.headers["Nats-Msg-Id"] for m in msgs}) == 5


def test_webhooks_and_nats_progress_independently(
        shared: tuple[Engine, nats_relay.RelaySettings]) -> None:
    engine, settings = shared
    _emit(engine, 4)
    assert webhooks.fan_out(engine) == 4  # the webhook side is done with them ...
    assert nats_relay.backlog(engine) == 4  # ... the NATS side is not
    from datetime import timedelta

    # Retention may not take events the relay still owes, however old.
    assert events.prune(engine, older_than=timedelta(0)) == 0
    assert _relay_all(nats_relay.NatsRelay(engine, settings)) == 4
    assert events.prune(engine, older_than=timedelta(0)) == 4


def test_one_relay_at_a_time(shared: tuple[Engine, nats_relay.RelaySettings]) -> None:
    engine, settings = shared
    _emit(engine, 3)
    assert nats_relay.acquire_lease(engine, "someone-else", 60)
    assert _relay_all(nats_relay.NatsRelay(engine, settings)) == 0
    nats_relay.release_lease(engine, "someone-else")
    assert _relay_all(nats_relay.NatsRelay(engine, settings)) == 3


def test_events_written_before_the_relay_first_ran_are_not_replayed(engine: Engine) -> None:
    _emit(engine, 3)
    row = nats_relay.register(engine)
    with read_session(engine) as s:
        assert row.start_after == s.execute(select(func.max(col(OutboxEvent.id)))).scalar()
    assert nats_relay.backlog(engine) == 0
    _emit(engine, 2, start=3)
    assert nats_relay.backlog(engine) == 2


@pytest.mark.slow
def test_catch_up_in_order_after_nats_was_down(engine: Engine, tmp_path: Path) -> None:
    """NATS stops while changes continue: nothing is lost, and once it is back the relay
    publishes what it missed, in outbox order, each event once."""
    server = PrivateNats(tmp_path / "nats")
    server.start()
    try:
        settings = _settings(server.url)
        nats_relay.register(engine)
        first = _emit(engine, 3)

        async def scenario() -> None:
            relay = nats_relay.NatsRelay(engine, settings)
            stop = asyncio.Event()
            task = asyncio.create_task(relay.run(stop))
            await _until(lambda: nats_relay.backlog(engine) == 0)
            server.stop()
            more = _emit(engine, 4, start=3)  # changes go on while NATS is down
            await _until(lambda: (nats_relay.status(engine)["last_error"] or "") != "")
            assert nats_relay.backlog(engine) == 4
            server.start()  # same port, same JetStream store
            await _until(lambda: nats_relay.backlog(engine) == 0)
            _emit(engine, 2, start=7)
            await _until(lambda: nats_relay.backlog(engine) == 0)
            stop.set()
            await asyncio.wait_for(task, 10)
            assert len(more) == 4

        asyncio.run(scenario())
        msgs = asyncio.run(_read_stream(server.url, settings.stream))
        with read_session(engine) as s:
            ids = list(s.execute(select(col(OutboxEvent.id)).order_by(col(OutboxEvent.id)))
                       .scalars())
        assert len(ids) == 9 and ids[:3] == first
        assert [int(m.headers["Nats-Msg-Id"]) for m in msgs] == ids
        assert [json.loads(m.data)["data"]["i"] for m in msgs] == list(range(9))
        assert nats_relay.status(engine)["last_error"] is None
    finally:
        server.stop()


async def _until(cond: Any, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
