"""The outbox's retention policy (simcore.events.prune): published events past the retention go,
pending events never do, in bounded batches. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, update
from sqlmodel import col

from simcore import events
from simcore.db import transaction
from simcore.models import OutboxEvent, utcnow

pytestmark = pytest.mark.storage


def _emit(engine: Engine, n: int) -> None:
    with transaction(engine) as tx:
        for i in range(n):
            events.emit(tx, "sim.test", "sim", f"8999{i:015d}", {"i": i})


def _count(engine: Engine, published: bool | None = None) -> int:
    stmt = select(func.count()).select_from(OutboxEvent)
    if published is True:
        stmt = stmt.where(col(OutboxEvent.published_at).is_not(None))
    elif published is False:
        stmt = stmt.where(col(OutboxEvent.published_at).is_(None))
    with transaction(engine) as s:
        return int(s.execute(stmt).scalar_one())


@pytest.mark.slow
def test_prune_keeps_pending_and_recent_events(engine: Engine) -> None:
    _emit(engine, 30)
    ids = [e.id for e in events.pending(engine, limit=100)]
    assert len(ids) == 30
    old, recent = ids[:12], ids[12:20]  # ids[20:] stay pending
    events.mark_published(engine, old + recent)
    with transaction(engine) as s:  # the first 12 were published ten days ago
        s.execute(update(OutboxEvent).where(col(OutboxEvent.id).in_(old))
                  .values(published_at=utcnow() - timedelta(days=10)))
        # a pending event older than the retention is still pending: never pruned
        s.execute(update(OutboxEvent).where(col(OutboxEvent.id) == ids[25])
                  .values(created_at=utcnow() - timedelta(days=30)))

    assert events.prune(engine, older_than=timedelta(days=7), batch=5) == 12  # 3 batches
    assert _count(engine, published=True) == 8
    assert _count(engine, published=False) == 10
    assert [e.id for e in events.pending(engine, limit=100)] == ids[20:]
    assert events.prune(engine, older_than=timedelta(days=7)) == 0
    # a shorter retention takes the recent ones too, still not the pending ones
    assert events.prune(engine, older_than=timedelta(seconds=0),
                        now=utcnow() + timedelta(seconds=1)) == 8
    assert _count(engine) == 10
