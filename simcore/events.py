"""Transactional outbox (design §1): an event is written in the same transaction as the change
it announces, so it exists exactly when the change does. Two relays read it, each with its own
marker: the API's webhook deliverer (fan-out, `published_at`) and the NATS JetStream relay
(simcore.nats_relay, `relayed_at`). An event remembers the trace of the change that wrote it
(`traceparent`, while tracing is on).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, or_, select, update
from sqlmodel import col

from simcore.db import Tx, core, read_session, transaction
from simcore.models import OutboxEvent, OutboxRelay, utcnow
from simcore.records import canonical_json, check_no_secrets


def emit(
    tx: Tx, topic: str, subject_type: str, subject_id: str,
    payload: Mapping[str, Any] | None = None,
) -> None:
    """Record an event inside the caller's transaction. Payloads carry no secrets."""
    data = dict(payload or {})
    check_no_secrets(data, "payload")
    core(tx).execute(_INSERT, {"created_at": utcnow(), "topic": topic,
                               "subject_type": subject_type, "subject_id": subject_id,
                               "payload": canonical_json(data), "attempts": 0})


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
