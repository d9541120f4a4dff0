"""The inventory store's tables (SQLModel). Migrations live in simcore/migrations (Alembic).

States are stored as short strings (the values of simcore.lifecycle's enums), not native enums,
so adding a state is a code change, not a schema change. Key material never appears here in
clear: `ki_ref`, `opc_ref` and `SimCredential.ref` hold opaque KeyRef tokens from hsm_sim.
Timestamps are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import configure_mappers, instrumentation
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UtcDateTime(TypeDecorator[datetime]):
    """DateTime that always comes back timezone-aware UTC (SQLite stores naive strings)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


T = TypeVar("T", bound=SQLModel)


def utcnow() -> datetime:
    return datetime.now(UTC)


def from_row(model: type[T], row: Mapping[Any, Any]) -> T:
    """A model object from a Core result row, built the way SQLAlchemy's ORM loader builds one
    (new instance, then its __dict__) — ~20x cheaper than __init__, which validates and
    instruments every field. For rows straight from the table only."""
    configure_mappers()  # a no-op once done; a fresh process may not have loaded anything yet
    obj = instrumentation.manager_of_class(model).new_instance()
    obj.__dict__.update(row)
    return obj


def _ts(nullable: bool = False) -> Any:
    return Field(default_factory=utcnow if not nullable else None,
                 sa_column=Column(UtcDateTime(), nullable=nullable))


class NumberRange(SQLModel, table=True):
    """A contiguous range of ICCIDs (over the body), IMSIs or MSISDNs owned by the operator."""

    __tablename__ = "number_range"
    __table_args__ = (UniqueConstraint("name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    kind: str = Field(max_length=8, index=True)  # iccid | imsi | msisdn
    first: str = Field(max_length=20)
    last: str = Field(max_length=20)
    mnc_length: int | None = None
    # Members before this offset have been handed out (generated, reserved or pooled).
    next_offset: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    created_at: datetime = _ts()


class Batch(SQLModel, table=True):
    """A set of SIMs made together: generated here, imported from a vendor file, or ordered."""

    __tablename__ = "batch"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    source: str = Field(max_length=16)  # generated | import | order
    vendor: str | None = Field(default=None, max_length=64)
    profile: str | None = Field(default=None, max_length=64)
    kind: str = Field(default="physical", max_length=8)  # physical | esim
    form_factor: str | None = Field(default=None, max_length=16)
    file_sha256: str | None = Field(default=None, max_length=64, unique=True)
    row_count: int = 0
    status: str = Field(default="complete", max_length=16)  # complete | in_progress
    created_at: datetime = _ts()


class Sim(SQLModel, table=True):
    """One SIM: a physical card or an eSIM profile, keyed by ICCID."""

    __tablename__ = "sim"
    __table_args__ = (
        # Allocation scans in_stock SIMs of a kind in ICCID order.
        Index("ix_sim_state_kind_iccid", "state", "kind", "iccid"),
        # Lists filtered by one of state, kind or batch are pages in ICCID order (keyset on
        # iccid): each filter has an index in that order, so a page reads ~limit rows instead
        # of walking the primary key past every SIM that does not match (migration 0020).
        Index("ix_sim_state_iccid", "state", "iccid"),
        Index("ix_sim_kind_iccid", "kind", "iccid"),
        Index("ix_sim_batch_iccid", "batch_id", "iccid"),
    )

    iccid: str = Field(primary_key=True, max_length=20)
    imsi: str | None = Field(default=None, max_length=15, unique=True)
    # After recycling the IMSI is free for a new SIM; the card keeps a record of what it had.
    former_imsi: str | None = Field(default=None, max_length=15)
    kind: str = Field(default="physical", max_length=8)  # physical | esim
    form_factor: str | None = Field(default=None, max_length=16)
    batch_id: int | None = Field(default=None, foreign_key="batch.id")
    state: str = Field(max_length=16)
    profile_state: str | None = Field(default=None, max_length=16)
    subscriber_ref: str | None = Field(default=None, max_length=128, index=True)
    msisdn: str | None = Field(default=None, max_length=15, unique=True)
    eid: str | None = Field(default=None, max_length=32, index=True)
    # Opaque KeyRef tokens (wrapped keys): kept out of reprs all the same.
    ki_ref: str | None = Field(default=None, sa_column=Column(Text, nullable=True), repr=False)
    opc_ref: str | None = Field(default=None, sa_column=Column(Text, nullable=True), repr=False)
    auth_algorithm: str | None = Field(default=None, max_length=16)
    acc: str | None = Field(default=None, max_length=4)
    reason: str | None = Field(default=None, max_length=64)
    quarantine_until: datetime | None = _ts(nullable=True)
    version: int = 1
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class SimCredential(SQLModel, table=True):
    """Wrapped per-SIM secrets other than Ki/OPc: PIN1/PUK1/PIN2/PUK2, ADM1.., KIc/KID/KIK."""

    __tablename__ = "sim_credential"

    iccid: str = Field(foreign_key="sim.iccid", primary_key=True, max_length=20)
    name: str = Field(primary_key=True, max_length=16)
    ref: str = Field(sa_column=Column(Text, nullable=False), repr=False)


class SimSqn(SQLModel, table=True):
    """A SIM's authentication sequence number as its AuC keeps it (3GPP TS 33.102 §6.3, Annex C):
    SQN = SEQ || IND. `seq` is SEQ_HE, the highest SEQ issued (or learnt from the card's AUTS);
    `ind` the IND of the last vector issued (the next one uses ind + 1 mod 2^5). A row appears
    with a SIM's first vector (simcore.keys); a separate table, so issuing vectors never locks or
    versions the `sim` row that allocation and lifecycle changes write."""

    __tablename__ = "sim_sqn"

    iccid: str = Field(foreign_key="sim.iccid", primary_key=True, max_length=20)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    ind: int = Field(sa_column=Column(Integer, nullable=False))
    updated_at: datetime = _ts()


class MsisdnEntry(SQLModel, table=True):
    """An MSISDN in the operator's pool."""

    __tablename__ = "msisdn"
    __table_args__ = (Index("ix_msisdn_state_msisdn", "state", "msisdn"),)

    msisdn: str = Field(primary_key=True, max_length=15)
    range_id: int | None = Field(default=None, foreign_key="number_range.id")
    state: str = Field(max_length=16)  # available | assigned | quarantine
    iccid: str | None = Field(default=None, max_length=20)
    quarantine_until: datetime | None = _ts(nullable=True)
    version: int = 1
    updated_at: datetime = _ts()


class FreeImsi(SQLModel, table=True):
    """An IMSI released by a recycled SIM, free for a new SIM record."""

    __tablename__ = "free_imsi"

    imsi: str = Field(primary_key=True, max_length=15)
    range_id: int | None = Field(default=None, foreign_key="number_range.id")
    released_at: datetime = _ts()


# The audit log is this many hash chains, an event's lane chosen by its subject (simcore.audit).
AUDIT_LANES = 16


class AuditEvent(SQLModel, table=True):
    """One entry of the append-only, hash-chained audit log (see simcore.audit)."""

    __tablename__ = "audit_event"
    __table_args__ = (UniqueConstraint("lane", "lane_seq"), {"sqlite_autoincrement": True})

    # Global reading order; the chain order is (lane, lane_seq).
    seq: int | None = Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True))
    lane: int
    lane_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    ts: str = Field(max_length=32)  # ISO 8601 UTC with microseconds: hashed exactly as stored
    actor: str = Field(max_length=128)
    action: str = Field(max_length=64, index=True)
    subject_type: str = Field(max_length=32)
    subject_id: str = Field(max_length=64, index=True)
    details: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """The head of one lane: locked by each appender to it, so a chain never forks."""

    __tablename__ = "audit_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})  # the lane
    seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    hash: str = Field(max_length=64)
    # The hash before `hash`: lets one UPDATE … RETURNING hand back the link it replaced.
    prev_hash: str = Field(max_length=64)


class AuditCheckpoint(SQLModel, table=True):
    """A signed record of every lane's length and last hash after a verify (migration 0040):
    later verifies start there (simcore.audit_checkpoint)."""

    __tablename__ = "audit_checkpoint"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = _ts()
    events: int = Field(sa_column=Column(BigInteger, nullable=False))
    heads: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON {lane: [n, hash]}
    key_id: str = Field(max_length=16, index=True)
    signature: str = Field(max_length=128)  # Ed25519, hex


class SimStateCount(SQLModel, table=True):
    """SIMs per kind and state, maintained by PostgreSQL triggers on `sim` (migration 0020), so
    that `inventory summary` reads a few rows instead of counting millions. Sharded by server
    backend (pid mod 64) so that concurrent transactions seldom wait on one counter row; the
    count of a (kind, state) is the sum over its shards. Unused on SQLite, where the summary
    counts the (state, kind, iccid) index directly."""

    __tablename__ = "sim_state_count"

    kind: str = Field(primary_key=True, max_length=8)
    state: str = Field(primary_key=True, max_length=16)
    shard: int = Field(primary_key=True)
    n: int = Field(sa_column=Column(BigInteger, nullable=False))


def _outbox_traceparent() -> str | None:
    # The W3C traceparent of the span writing the event (None while tracing is off), so webhook
    # and NATS deliveries continue the trace of the change they announce.
    from simcore.telemetry import outbox_traceparent

    return outbox_traceparent()


class OutboxEvent(SQLModel, table=True):
    """Transactional outbox: written with the change it announces, delivered later.

    Two relays read it independently: the webhook fan-out marks `published_at`, the NATS
    JetStream relay (simcore.nats_relay) marks `relayed_at`."""

    __tablename__ = "outbox_event"
    __table_args__ = (Index("ix_outbox_pending", "published_at", "id"),
                      Index("ix_outbox_relay", "relayed_at", "id"))

    # BIGINT on PostgreSQL; INTEGER on SQLite, where only INTEGER PRIMARY KEY autoincrements.
    id: int | None = Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True))
    created_at: datetime = _ts()
    topic: str = Field(max_length=64, index=True)
    subject_type: str = Field(max_length=32)
    subject_id: str = Field(max_length=64)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    published_at: datetime | None = _ts(nullable=True)
    attempts: int = 0
    traceparent: str | None = Field(default=None, sa_column=Column(
        String(55), nullable=True, default=_outbox_traceparent))
    relayed_at: datetime | None = _ts(nullable=True)


class OutboxRelay(SQLModel, table=True):
    """A relay of the outbox to a message bus (simcore.nats_relay): one row per relay name.

    Only events after `start_after` are relayed (the newest event when the relay first ran: a
    relay added to a running deployment does not replay history). `owner` holds a lease until
    `lease_until`, so one relay process at a time publishes and the bus sees outbox order."""

    __tablename__ = "outbox_relay"

    name: str = Field(primary_key=True, max_length=32)
    start_after: int = Field(sa_column=Column(BigInteger, nullable=False))
    owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = _ts(nullable=True)
    last_event_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    relayed_count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    last_relayed_at: datetime | None = _ts(nullable=True)
    last_error: str | None = Field(default=None, max_length=256)
    created_at: datetime = _ts()


class OutboxCursor(SQLModel, table=True):
    """How far one consumer of the outbox has read (simcore.events.consume): the highest event
    id it has handled, and the ids below that it has not seen yet (`gaps`, JSON {id: first
    seen}): on PostgreSQL an id is taken at insert, so a transaction committing late makes a
    lower id visible after a higher one. A gap is waited for a while, then dropped (a rolled-back
    insert never appears). Migration 0452."""

    __tablename__ = "outbox_cursor"

    consumer: str = Field(primary_key=True, max_length=64)
    last_id: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    gaps: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    updated_at: datetime = _ts()
