"""The outbox relay to NATS JetStream (design §10; docs/observability.md "Events on NATS").

Every outbox event (simcore.events) is published to subject `simsmith.<entity>.<event>`
(`subject_for`), in outbox order, at least once: an event is marked `relayed_at` only after
JetStream acknowledged it, so a relay that crashes in between publishes it again — with the same
`Nats-Msg-Id` header (the event id), which JetStream drops as a duplicate inside the stream's
duplicate window (JetStream "Message Deduplication"; 2 minutes by default). The relay keeps its
own marker, independent of the webhook fan-out's; NATS being down only delays it (the outbox
keeps every event the relay owes, whatever the retention), and it catches up in order.

Several processes may run a relay (each `simsmith serve` worker, `simsmith events relay`): a lease
in `outbox_relay` lets one publish at a time, so subscribers see outbox order. Headers:
`Nats-Msg-Id`, `Simsmith-Event-Id`, `Simsmith-Topic`, `Content-Type`, and the W3C `traceparent`
of the change that wrote the event (or of the relay's publish span, a child of it, while tracing
is on here). The body is the JSON a webhook receives (simcore.webhooks.event_body).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from opentelemetry.trace import SpanKind
from sqlalchemy import Engine, bindparam, func, select, update
from sqlmodel import col

from simcore import telemetry
from simcore.db import read_session, transaction
from simcore.log import get_logger
from simcore.models import OutboxEvent, OutboxRelay, utcnow
from simcore.webhooks import event_body

log = get_logger("simcore.nats_relay")

RELAY_NAME = "nats"
SUBJECT_PREFIX = "simsmith"
DEFAULT_STREAM = "SIMSMITH"
MSG_ID_HEADER = "Nats-Msg-Id"

# State changes (topic `<entity>.state_changed`, payload from/to) become an event named for the
# new state, as a subscriber would say it: simsmith.sim.activated, simsmith.sim.resumed, ...
_SIM_EVENTS = {
    "blank": "blanked", "personalised": "personalised", "in_stock": "stocked",
    "allocated": "allocated", "active": "activated", "suspended": "suspended",
    "terminated": "terminated", "quarantine": "quarantined", "recycled": "recycled",
}
_PROFILE_EVENTS = {"error": "failed"}  # the SGP.22 profile states are participles already
_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


def _token(text: str) -> str:
    # A NATS subject token: no '.', '*', '>' or white space.
    return _TOKEN.sub("_", text) or "_"


def subject_for(topic: str, payload: Mapping[str, Any], prefix: str = SUBJECT_PREFIX) -> str:
    """The NATS subject of an outbox event: `simsmith.<entity>.<event>`.

    `sim.state_changed` maps to the new state (`simsmith.sim.activated`; `simsmith.sim.resumed`
    for suspended → active), `esim_profile.state_changed` likewise (`simsmith.esim_profile.
    released`, `…downloaded`, `…failed` for error), any other topic `<entity>.<event>` keeps its
    two parts (`sim.swapped` → `simsmith.sim.swapped`)."""
    entity, _, event = topic.partition(".")
    if event == "state_changed":
        to = str(payload.get("to", ""))
        if entity == "sim":
            event = ("resumed" if to == "active" and payload.get("from") == "suspended"
                     else _SIM_EVENTS.get(to, to))
        else:
            event = _PROFILE_EVENTS.get(to, to) or event
    parts = [_token(entity)] + [_token(p) for p in (event or "event").split(".")]
    return ".".join([prefix, *parts])


# --- the relay's state in the store -------------------------------------------------------------

def register(engine: Engine, name: str = RELAY_NAME) -> OutboxRelay:
    """The relay's row, made on first use: it starts after the newest event at that moment (a
    relay added to a running deployment does not replay the history)."""
    with transaction(engine) as s:
        row = s.get(OutboxRelay, name)
        if row is None:
            newest = s.execute(select(func.max(col(OutboxEvent.id)))).scalar()
            row = OutboxRelay(name=name, start_after=int(newest or 0))
            s.add(row)
            s.flush()
        s.expunge(row)
        return row


def acquire_lease(engine: Engine, owner: str, seconds: float, name: str = RELAY_NAME) -> bool:
    """Take or renew the relay's lease for `seconds`; False while another owner holds it."""
    now = utcnow()
    with transaction(engine) as s:
        result = s.execute(
            update(OutboxRelay)
            .where(col(OutboxRelay.name) == name,
                   (col(OutboxRelay.owner) == owner) | col(OutboxRelay.owner).is_(None)
                   | (col(OutboxRelay.lease_until) < now))
            .values(owner=owner, lease_until=now + timedelta(seconds=seconds)))
        return bool(getattr(result, "rowcount", 0))


def release_lease(engine: Engine, owner: str, name: str = RELAY_NAME) -> None:
    with transaction(engine) as s:
        s.execute(update(OutboxRelay).where(col(OutboxRelay.name) == name,
                                            col(OutboxRelay.owner) == owner)
                  .values(owner=None, lease_until=None))


_OUTBOX: Any = OutboxEvent.__table__  # type: ignore[attr-defined]
_DUE = (select(_OUTBOX).where(_OUTBOX.c.relayed_at.is_(None),
                              _OUTBOX.c.id > bindparam("after"))
        .order_by(_OUTBOX.c.id).limit(bindparam("limit")))


def due(engine: Engine, start_after: int, limit: int = 200) -> Sequence[Any]:
    """Events the relay has still to publish, oldest first."""
    with read_session(engine) as s:
        return s.execute(_DUE, {"after": start_after, "limit": limit}).all()


def backlog(engine: Engine, name: str = RELAY_NAME) -> int | None:
    """Events the relay owes (None when no relay ever ran)."""
    with read_session(engine) as s:
        start = s.execute(select(col(OutboxRelay.start_after))
                          .where(col(OutboxRelay.name) == name)).scalar()
        if start is None:
            return None
        return int(s.execute(select(func.count()).select_from(_OUTBOX).where(
            _OUTBOX.c.relayed_at.is_(None), _OUTBOX.c.id > start)).scalar_one())


def mark_relayed(engine: Engine, ids: list[int], name: str = RELAY_NAME) -> None:
    now = utcnow()
    with transaction(engine) as s:
        s.execute(update(OutboxEvent).where(col(OutboxEvent.id).in_(ids))
                  .values(relayed_at=now))
        s.execute(update(OutboxRelay).where(col(OutboxRelay.name) == name).values(
            last_event_id=max(ids), last_relayed_at=now, last_error=None,
            relayed_count=col(OutboxRelay.relayed_count) + len(ids)))


def record_error(engine: Engine, error: str, name: str = RELAY_NAME) -> None:
    with transaction(engine) as s:
        s.execute(update(OutboxRelay).where(col(OutboxRelay.name) == name)
                  .values(last_error=error[:256]))


def status(engine: Engine, name: str = RELAY_NAME) -> dict[str, Any]:
    """The relay's row and backlog, for `simsmith events status` and operators."""
    with read_session(engine) as s:
        row = s.get(OutboxRelay, name)
        if row is None:
            return {"name": name, "registered": False}
        out = {"name": name, "registered": True, **row.model_dump(exclude={"name"})}
    out["backlog"] = backlog(engine, name)
    return out


# --- publishing ---------------------------------------------------------------------------------

@dataclass
class RelaySettings:
    url: str
    stream: str = DEFAULT_STREAM
    subject_prefix: str = SUBJECT_PREFIX  # another for a second simsmith on the same NATS
    poll_seconds: float = 0.2
    batch: int = 200
    lease_seconds: float = 15.0
    publish_timeout: float = 2.0
    max_backoff: float = 5.0


def headers_for(ev: Any) -> dict[str, str]:
    headers = {MSG_ID_HEADER: str(ev.id), "Simsmith-Event-Id": str(ev.id),
               "Simsmith-Topic": ev.topic, "Content-Type": "application/json"}
    if ev.traceparent:
        headers["traceparent"] = ev.traceparent
    return headers


def describe(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ").strip()
    return f"{type(exc).__name__}: {text}"[:256] if text else type(exc).__name__


class NatsRelay:
    """Publishes the outbox to JetStream; `run()` until stopped, or `run_once()` per batch."""

    def __init__(self, engine: Engine, settings: RelaySettings, name: str = RELAY_NAME) -> None:
        self.engine = engine
        self.settings = settings
        self.name = name
        self.owner = f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._nc: Any = None
        self._js: Any = None
        self._stream_ready = False
        self._start_after: int | None = None
        self._lease_until = 0.0

    async def connect(self) -> None:
        import nats

        if self._nc is not None and not self._nc.is_closed:
            return
        # Reconnects forever once connected: a NATS restart is a pause, not the relay's end.
        self._nc = await nats.connect(self.settings.url, connect_timeout=2,
                                      max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                      allow_reconnect=True, name=f"simsmith-relay {self.owner}")
        self._js = self._nc.jetstream(timeout=self.settings.publish_timeout)
        self._stream_ready = False

    async def ensure_stream(self) -> None:
        """Create the stream (subjects `<prefix>.>`) if it is missing; an existing one is kept
        as the operator configured it."""
        from nats.js.api import StreamConfig
        from nats.js.errors import NotFoundError

        try:
            await self._js.stream_info(self.settings.stream)
        except NotFoundError:
            await self._js.add_stream(StreamConfig(
                name=self.settings.stream, subjects=[f"{self.settings.subject_prefix}.>"],
                duplicate_window=120.0))
            log.info("nats stream created", stream=self.settings.stream)
        self._stream_ready = True

    async def close(self) -> None:
        """Give up the lease (another relay takes over at once) and the NATS connection."""
        if self._lease_until:
            self._lease_until = 0.0
            try:
                release_lease(self.engine, self.owner, self.name)
            except Exception:
                log.exception("nats relay could not release its lease")
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()
        self._nc = self._js = None

    def _hold_lease(self) -> bool:
        loop_now = asyncio.get_running_loop().time()
        if loop_now < self._lease_until - self.settings.lease_seconds / 2:
            return True
        if acquire_lease(self.engine, self.owner, self.settings.lease_seconds, self.name):
            self._lease_until = loop_now + self.settings.lease_seconds
            return True
        self._lease_until = 0.0
        return False

    async def run_once(self) -> int:
        """Publish one batch of due events in order; returns how many JetStream acknowledged.
        Stops at the first failure (the rest wait for the next round, in order) and raises it."""
        if self._start_after is None:
            self._start_after = register(self.engine, self.name).start_after
        if not self._hold_lease():
            return 0
        events = due(self.engine, self._start_after, self.settings.batch)
        if not events:
            return 0
        await self.connect()
        if not self._stream_ready:
            await self.ensure_stream()
        done: list[int] = []
        try:
            for ev in events:
                await self._publish(ev)
                done.append(int(ev.id))
        finally:
            if done:
                mark_relayed(self.engine, done, self.name)
        return len(done)

    async def _publish(self, ev: Any) -> None:
        headers = headers_for(ev)
        subject = subject_for(ev.topic, _payload(ev), self.settings.subject_prefix)
        parent = {"traceparent": ev.traceparent} if ev.traceparent else None
        with telemetry.continue_trace(parent), \
                telemetry.span("nats.publish", kind=SpanKind.PRODUCER, event_id=int(ev.id),
                               subject=subject):
            telemetry.inject_headers(headers)
            try:
                await self._js.publish(subject, event_body(ev).encode(),
                                       stream=self.settings.stream, headers=headers)
            except Exception:
                telemetry.NATS_PUBLISH_FAILURES.inc()
                self._stream_ready = False  # a restarted server may have lost it: check again
                raise
        telemetry.NATS_PUBLISHED.inc()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set: poll when idle, back off (up to max_backoff) on failures."""
        delay = 0.0
        try:
            while not stop.is_set():
                try:
                    n = await self.run_once()
                    delay = 0.0
                except Exception as e:  # NATS down, the store busy: retried, never fatal
                    delay = min(self.settings.max_backoff, max(0.2, delay * 2))
                    error = describe(e)
                    log.warning("nats relay round failed", error=error, retry_in=delay)
                    try:
                        record_error(self.engine, error, self.name)
                    except Exception:
                        log.exception("nats relay could not record its error")
                    n = 0
                if n < self.settings.batch or delay:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay or self.settings.poll_seconds)
        finally:
            await self.close()


def _payload(ev: Any) -> Mapping[str, Any]:
    import json

    data = json.loads(ev.payload)
    return data if isinstance(data, dict) else {}


def relay_settings(settings: Any) -> RelaySettings:
    """RelaySettings from simcore.config.Settings (SIMSMITH_NATS_*)."""
    return RelaySettings(url=settings.nats_url, stream=settings.nats_stream,
                         subject_prefix=settings.nats_subject_prefix,
                         poll_seconds=settings.nats_poll_seconds)


class RelayThread:
    """A NatsRelay on its own event loop in a daemon thread (inside `simsmith serve`)."""

    def __init__(self, engine: Engine, settings: RelaySettings) -> None:
        self.relay = NatsRelay(engine, settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="nats-relay", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self.relay.run(self._stop)

        try:
            asyncio.run(main())
        except Exception:
            log.exception("nats relay stopped")
        finally:
            self._ready.set()

    def start(self) -> None:
        # Registered before the server takes requests: every change it serves is relayed.
        register(self.relay.engine, self.relay.name)
        self._thread.start()
        self._ready.wait(5)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended already
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
