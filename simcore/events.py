"""Transactional outbox (design §1): an event is written in the same transaction as the change
it announces, so it exists exactly when the change does. Two relays read it, each with its own
marker: the API's webhook deliverer (fan-out, `published_at`) and the NATS JetStream relay
(simcore.nats_relay, `relayed_at`). An event remembers the trace of the change that wrote it
(`traceparent`, while tracing is on).

Further consumers read the outbox on a cursor of their own (`consume`, table `outbox_cursor`):
the ES2+ notifier (simcore.smdp.progress_notify) is one. `prune` never deletes what a cursor
has not passed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from simcore.db import Tx, connection_transaction, core, read_connection, read_session, transaction
from simcore.models import OutboxCursor, OutboxEvent, OutboxRelay, utcnow
from simcore.records import canonical_json, check_no_secrets


def emit(
    tx: Tx, topic: str, subject_type: str, subject_id: str,
    payload: Mapping[str, Any] | None = None,
) -> None:
    """Record an event inside the caller's transaction. Payloads carry no secrets."""
    data = dict(payload or {})
    check_no_secrets(data, "payload")
    conn = core(tx)
    params = {"created_at": utcnow(), "topic": topic, "subject_type": subject_type,
              "subject_id": subject_id, "payload": canonical_json(data), "attempts": 0}
    deferred = conn.info.get(DEFERRED)
    if deferred is not None:  # inside audit.deferred: written at its end, in order per subject
        from simcore.telemetry import outbox_traceparent

        deferred.append(("event", subject_id, {**params, "traceparent": outbox_traceparent()}))
        return
    conn.execute(_INSERT, params)


# While a transaction defers its records (simcore.audit.deferred), they queue here, in
# Connection.info: ("event" | "audit", the subject's id, the statement's parameters).
DEFERRED = "simsmith.deferred"


# Built once: statement construction per call costs more than the insert itself.
_INSERT = OutboxEvent.__table__.insert()  # type: ignore[attr-defined]


def pending(engine: Engine, limit: int = 100) -> list[OutboxEvent]:
    stmt = (select(OutboxEvent).where(col(OutboxEvent.published_at).is_(None))
            .order_by(col(OutboxEvent.id)).limit(limit))
    with read_session(engine) as s:
        return list(s.execute(stmt).scalars())


def mark_published(engine: Engine, ids: list[int]) -> None:
    with transaction(engine) as s:
        s.execute(update(OutboxEvent).where(col(OutboxEvent.id).in_(ids))
                  .values(published_at=utcnow()))


def prune(engine: Engine, *, older_than: timedelta, batch: int = 5000,
          now: datetime | None = None) -> int:
    """Delete events published more than `older_than` ago; returns how many went.

    The retention policy of the outbox: once an event has been fanned out, each webhook delivery
    carries its own copy of the body, so the outbox row is only history. Pending events are never
    touched, whatever their age, nor events a bus relay (simcore.nats_relay) has still to
    publish: a relay that was down catches up on everything it missed. Deletes run in short
    transactions of `batch` rows (walking the (published_at, id) index), so a large backlog never
    holds a long write lock.
    """
    cutoff = (now or utcnow()) - older_than
    with read_session(engine) as s:
        relay_start = s.execute(select(func.min(col(OutboxRelay.start_after)))).scalar()
    conditions = [col(OutboxEvent.published_at).is_not(None),
                  col(OutboxEvent.published_at) < cutoff]
    if relay_start is not None:
        conditions.append(or_(col(OutboxEvent.relayed_at).is_not(None),
                              col(OutboxEvent.id) <= relay_start))
    total = 0
    with read_session(engine) as s:
        cursors = s.execute(select(col(OutboxCursor.last_id), col(OutboxCursor.gaps))).all()
    if cursors:
        # Never past a consumer's cursor, nor an event it still waits for; and never the
        # newest event: SQLite reuses the highest rowid once it is deleted, and a reused id
        # would sit below every cursor, unseen.
        waited = {int(i) for _, g in cursors for i in json.loads(g or "{}")}
        conditions += [col(OutboxEvent.id) <= min(int(c) for c, _ in cursors),
                       col(OutboxEvent.id) < select(func.max(col(OutboxEvent.id)))
                       .scalar_subquery()]
        if waited:
            conditions.append(col(OutboxEvent.id).not_in(waited))
    while True:
        ids = (select(col(OutboxEvent.id))
               .where(*conditions)
               .order_by(col(OutboxEvent.published_at), col(OutboxEvent.id)).limit(batch))
        with transaction(engine) as s:
            result = s.execute(
                delete(OutboxEvent).where(col(OutboxEvent.id).in_(ids.scalar_subquery())))
            n = int(getattr(result, "rowcount", 0) or 0)
        total += n
        if n < batch:
            return total


# --- consumers on a cursor --------------------------------------------------------------------

GAP_WAIT = timedelta(minutes=5)  # longer than any transaction that writes events
MAX_GAPS = 1000

_EVENTS: Any = OutboxEvent.__table__  # type: ignore[attr-defined]
_CURSORS: Any = OutboxCursor.__table__  # type: ignore[attr-defined]
_CURSOR = select(_CURSORS.c.last_id, _CURSORS.c.gaps).where(
    _CURSORS.c.consumer == bindparam("consumer"))
_ANY_AFTER = select(_EVENTS.c.id).where(_EVENTS.c.id > bindparam("last_id")).limit(1)


def consume(engine: Engine, consumer: str,
            handle: Callable[[Connection, Sequence[Row[Any]]], None], *,
            topics: Sequence[str] | None = None, limit: int = 500,
            now: datetime | None = None) -> int:
    """Hand the events past `consumer`'s cursor (up to `limit`, id order; only `topics` if
    given) to `handle` and move the cursor past them, in one transaction: `handle`'s writes
    and the cursor commit together, so every event is handled exactly once, even with several
    processes (the cursor row is locked) or a crash (nothing committed, read again).

    Ids are taken at insert, so on PostgreSQL an event may become visible after a higher one:
    the ids skipped below the newest seen are remembered and read again when they appear;
    after GAP_WAIT one is given up (a rolled-back insert leaves its id unused forever).
    Returns the number of events read (all topics), 0 when there was nothing new."""
    now = now or utcnow()
    # Idle rounds take no write lock (SQLite has one): a read connection, prebuilt SELECTs.
    with read_connection(engine) as conn:
        row = conn.execute(_CURSOR, {"consumer": consumer}).first()
        if row is not None and not json.loads(row.gaps) and conn.execute(
                _ANY_AFTER, {"last_id": row.last_id}).first() is None:
            return 0
    if row is None:
        # A new consumer starts at the oldest event kept. Until it first runs it holds
        # nothing back from pruning.
        try:
            with connection_transaction(engine) as conn:
                first = conn.execute(select(func.min(_EVENTS.c.id))).scalar()
                conn.execute(insert(_CURSORS).values(
                    consumer=consumer, last_id=max(0, int(first or 1) - 1), gaps="{}",
                    updated_at=now))
        except IntegrityError:
            pass  # another process made it first
    with connection_transaction(engine) as conn:
        cur = conn.execute(select(_CURSORS.c.last_id, _CURSORS.c.gaps)
                           .where(_CURSORS.c.consumer == consumer).with_for_update()).one()
        last_id = int(cur.last_id)
        gaps: dict[int, str] = {int(k): v for k, v in json.loads(cur.gaps).items()}
        cond = _EVENTS.c.id > last_id
        if gaps:
            cond = or_(cond, _EVENTS.c.id.in_(sorted(gaps)))
        rows = conn.execute(select(_EVENTS).where(cond).order_by(_EVENTS.c.id).limit(limit)
                            ).all()
        if not rows and not gaps:
            return 0
        seen = {int(r.id) for r in rows}
        top = max([last_id, *seen])
        prev = last_id
        for i in sorted(k for k in seen if k > last_id):
            # Ids skipped between two visible ones (at most MAX_GAPS of a long run).
            for missing in range(max(prev + 1, i - MAX_GAPS), i):
                gaps.setdefault(missing, now.isoformat())
            prev = i
        for found in seen:
            gaps.pop(found, None)
        expired = now - GAP_WAIT
        gaps = {k: v for k, v in gaps.items() if datetime.fromisoformat(v) > expired}
        if len(gaps) > MAX_GAPS:  # a burst of rolled-back ids: keep the newest
            gaps = dict(sorted(gaps.items())[-MAX_GAPS:])
        wanted = [r for r in rows if topics is None or r.topic in topics]
        if wanted:
            handle(conn, wanted)
        conn.execute(update(_CURSORS).where(_CURSORS.c.consumer == consumer).values(
            last_id=top, gaps=json.dumps({str(k): v for k, v in sorted(gaps.items())}),
            updated_at=now))
        return len(rows)
