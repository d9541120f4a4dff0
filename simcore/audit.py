"""The audit log: append-only, hash-chained, verifiable.

The log is 16 hash chains ("lanes"), an event's lane fixed by its subject (CRC-32 of the subject
id mod 16), so a SIM's whole history is one chain. Each event carries its lane's previous hash
and its own SHA-256 over a canonical encoding: for each of lane, lane sequence number, ts, actor,
action, subject type, subject id, details (canonical JSON: sorted keys, no spaces) and previous
hash, `<length in characters>:<text>;`, the whole in UTF-8. Length prefixes make the encoding
unambiguous whatever the fields contain. A global sequence number orders events for reading.

Why lanes: one chain means one lock that every state change in the system queues on until it
commits; with 32 concurrent allocators on PostgreSQL that lock, not the database, set the pace
(about 430 allocations/s against 820/s without it). Sixteen chains keep every guarantee per
chain — an edit, an insertion, a deletion or a truncation is found — and let unrelated
subjects commit side by side.

Appenders serialise per lane on the lane's head row. On PostgreSQL the append is one statement
(UPDATE of the head computing the hash with sha256() in SQL, feeding the INSERT of the event
and of its outbox record), issued last in the transaction so the head lock is held only for that
statement and the commit. On SQLite writers are serialised anyway (BEGIN IMMEDIATE) and the hash
is computed in Python. `verify` recomputes every hash in Python, walks each lane and names the
first event (by global order) that does not fit.

No secret ever enters the log: details are checked against the names of secret fields and
refused, with an error that names the field but never its value.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, bindparam, select, text, update
from sqlmodel import col

from simcore.db import Tx, core, read_session
from simcore.errors import SimsmithError
from simcore.events import DEFERRED, emit
from simcore.models import AUDIT_LANES, AuditEvent, AuditHead, OutboxEvent
from simcore.paging import keyset_page
from simcore.records import SecretInAudit as SecretInAudit  # raised by append; callers catch it
from simcore.records import canonical_json, check_no_secrets
from simcore.telemetry import outbox_traceparent

GENESIS_HASH = "0" * 64

class AuditChainBroken(SimsmithError):
    """The log does not verify; `seq` names the first event at fault (global order)."""

    def __init__(self, seq: int, reason: str) -> None:
        self.seq = seq
        self.reason = reason
        super().__init__(f"audit event {seq}: {reason}")


@dataclass(frozen=True)
class Outbox:
    """An outbox event to be written together with an audit event (see simcore.events)."""

    topic: str
    subject_type: str
    subject_id: str
    payload: Mapping[str, Any]


def lane_of(subject_id: str) -> int:
    return zlib.crc32(subject_id.encode()) % AUDIT_LANES


def event_hash(
    lane: int, lane_seq: int, ts: str, actor: str, action: str, subject_type: str,
    subject_id: str, details: str, prev_hash: str,
) -> str:
    fields = (str(lane), str(lane_seq), ts, actor, action, subject_type, subject_id, details,
              prev_hash)
    body = "".join(f"{len(f)}:{f};" for f in fields)
    return hashlib.sha256(body.encode()).hexdigest()


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- append -----------------------------------------------------------------------------------


def _sql_field(expr: str) -> str:
    return f"length({expr})::text || ':' || {expr} || ';'"


def _pg_event_hash(lane: str, action: str, details: str) -> str:
    """event_hash's encoding in PostgreSQL, for an UPDATE of audit_head (right-hand sides of
    SET see the old row): `lane`, `action` and `details` are the SQL giving those fields, the
    others are the statement's parameters."""
    return ("encode(sha256(convert_to(" + " || ".join(_sql_field(e) for e in (
        f"{lane}::text", "(seq + 1)::text", "CAST(:ts AS text)", "CAST(:actor AS text)",
        action, "CAST(:subject_type AS text)", "CAST(:subject_id AS text)", details, "hash"))
        + ", 'UTF8')), 'hex')")


_PG_HEAD_UPDATE = (
    "WITH h AS (UPDATE audit_head SET seq = seq + 1, prev_hash = hash, hash = "
    + _pg_event_hash("id", "CAST(:action AS text)", "CAST(:details AS text)")
    + " WHERE id = :lane RETURNING id, seq, hash, prev_hash) "
)
_PG_INSERT_EVENT = (
    "INSERT INTO audit_event (lane, lane_seq, ts, actor, action, subject_type, subject_id, "
    "details, prev_hash, hash) SELECT h.id, h.seq, :ts, :actor, :action, :subject_type, "
    ":subject_id, :details, h.prev_hash, h.hash FROM h RETURNING seq"
)
_PG_APPEND = text(_PG_HEAD_UPDATE + _PG_INSERT_EVENT)
_PG_OUTBOX_CTE = (
    ", o AS (INSERT INTO outbox_event (created_at, topic, subject_type, subject_id, payload, "
    "attempts, traceparent) VALUES (now(), :o_topic, :o_subject_type, :o_subject_id, :o_payload, "
    "0, :o_traceparent)) ")
# The same, with the change's outbox event written by the same statement (one round trip).
_PG_APPEND_WITH_OUTBOX = text(_PG_HEAD_UPDATE + _PG_OUTBOX_CTE + _PG_INSERT_EVENT)


def pg_append_sql(ctes: str) -> str:
    """PostgreSQL: the append with its outbox event as one statement that also runs the
    caller's data-modifying CTEs (`ctes`: ", name AS (INSERT …)" …): a change, its audit record
    and its outbox event in one round trip — run it alone in autocommit, the lane's head is
    then locked only for that statement. It returns the event's `seq`; its parameters are
    `pg_append_params`' and the CTEs' own (not named like those)."""
    return _PG_HEAD_UPDATE + _PG_OUTBOX_CTE + ctes + " " + _PG_INSERT_EVENT


def pg_append_params(*, actor: str, action: str, subject_type: str, subject_id: str,
                     details: Mapping[str, Any], outbox: Outbox) -> dict[str, Any]:
    """The parameters of pg_append_sql's statement for one record and its outbox event,
    checked for secrets as `append` checks them."""
    record = dict(details)
    check_no_secrets(record)
    payload = dict(outbox.payload)
    check_no_secrets(payload, "payload")
    return {"ts": now_iso(), "actor": actor, "action": action, "subject_type": subject_type,
            "subject_id": subject_id, "details": canonical_json(record),
            "lane": lane_of(subject_id), "o_topic": outbox.topic,
            "o_subject_type": outbox.subject_type, "o_subject_id": outbox.subject_id,
            "o_payload": canonical_json(payload), "o_traceparent": outbox_traceparent()}


def pg_append_tail(source: str) -> str:
    """The append with outbox, as the end of a larger PostgreSQL statement whose earlier CTEs
    decide what is recorded: `source` names a one-row CTE with the columns `action`, `details`
    (canonical JSON text) and `topic`; the outbox payload is the details, as `append` writes
    them when both are one record. Returns `h AS (…), o AS (…) INSERT INTO audit_event …` —
    the caller writes `WITH <its CTEs>, ` before it — with the parameters :lane, :ts, :actor,
    :subject_type, :subject_id, :o_subject_type, :o_subject_id and :o_traceparent. The same
    hash encoding as `append` (verify cannot tell them apart); the lane head is locked by this
    statement until the commit, so it belongs in an autocommitted statement or last in its
    transaction. Without the lane's head row the statement fails as a whole (the event's
    columns are NOT NULL). For a report that is one statement (simcore.smdp.download_reports)."""
    return (
        "h AS (UPDATE audit_head SET seq = seq + 1, prev_hash = hash, hash = "
        + _pg_event_hash("audit_head.id", f"{source}.action", f"{source}.details")
        + f" FROM {source} WHERE audit_head.id = :lane RETURNING audit_head.id, "
        f"audit_head.seq, audit_head.hash, audit_head.prev_hash, {source}.action, "
        f"{source}.details, {source}.topic), "
        "o AS (INSERT INTO outbox_event (created_at, topic, subject_type, subject_id, payload, "
        "attempts, traceparent) SELECT now(), h.topic, :o_subject_type, :o_subject_id, h.details, "
        "0, :o_traceparent FROM h) "
        "INSERT INTO audit_event (lane, lane_seq, ts, actor, action, subject_type, subject_id, "
        "details, prev_hash, hash) SELECT h.id, h.seq, :ts, :actor, h.action, :subject_type, "
        f":subject_id, h.details, h.prev_hash, h.hash FROM {source} LEFT JOIN h ON true "
        "RETURNING seq"  # no head row: an event of NULLs, refused, and the statement with it
    )


_EVENT_TABLE: Table = AuditEvent.__table__  # type: ignore[attr-defined]
_HEADS = select(col(AuditHead.id), col(AuditHead.seq), col(AuditHead.hash))
# The other databases' path, built once with bound parameters: building statements per call
# (and their cache keys) cost more than executing them.
_HEAD_FOR_UPDATE = _HEADS.where(col(AuditHead.id) == bindparam("lane")).with_for_update()
_INSERT_EVENT = _EVENT_TABLE.insert()
_UPDATE_HEAD = (update(AuditHead).where(col(AuditHead.id) == bindparam("lane"))
                .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"),
                        prev_hash=bindparam("old_hash")))


def append(
    tx: Tx,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    details: Mapping[str, Any] | None = None,
    outbox: Outbox | None = None,
) -> int:
    """Append one event inside the caller's transaction; returns its global sequence number.

    `outbox`, if given, is recorded in the transactional outbox in the same step. Call this
    last in the transaction: from here to the commit, appenders to the same lane wait."""
    details = dict(details or {})
    check_no_secrets(details)
    lane = lane_of(subject_id)
    params: dict[str, Any] = {"ts": now_iso(), "actor": actor, "action": action,
                              "subject_type": subject_type, "subject_id": subject_id,
                              "details": canonical_json(details)}
    conn = core(tx)
    if conn.dialect.name == "postgresql":
        deferred = conn.info.get(DEFERRED)
        if deferred is not None:
            if outbox is None:
                deferred.append(("audit", subject_id, {**params, "lane": lane}))
                return 0
            payload = dict(outbox.payload)
            check_no_secrets(payload, "payload")
            deferred.append(("audit", subject_id, {
                **params, "lane": lane, "o_topic": outbox.topic,
                "o_subject_type": outbox.subject_type, "o_subject_id": outbox.subject_id,
                "o_payload": canonical_json(payload), "o_traceparent": outbox_traceparent()}))
            return 0
        if outbox is None:
            return int(conn.execute(_PG_APPEND, {**params, "lane": lane}).scalar_one())
        payload = dict(outbox.payload)
        check_no_secrets(payload, "payload")
        return int(conn.execute(_PG_APPEND_WITH_OUTBOX, {
            **params, "lane": lane, "o_topic": outbox.topic,
            "o_subject_type": outbox.subject_type, "o_subject_id": outbox.subject_id,
            "o_payload": canonical_json(payload),
            "o_traceparent": outbox_traceparent()}).scalar_one())
    if outbox is not None:
        emit(conn, outbox.topic, outbox.subject_type, outbox.subject_id, outbox.payload)
    head = conn.execute(_HEAD_FOR_UPDATE, {"lane": lane}).one()
    lane_seq = head.seq + 1
    digest = event_hash(lane, lane_seq, prev_hash=head.hash, **params)
    seq = conn.execute(_INSERT_EVENT, {**params, "lane": lane, "lane_seq": lane_seq,
                                       "prev_hash": head.hash, "hash": digest}
                       ).inserted_primary_key[0]  # type: ignore[index]
    conn.execute(_UPDATE_HEAD, {"lane": lane, "new_seq": lane_seq, "new_hash": digest,
                                "old_hash": head.hash})
    return int(seq)


@contextmanager
def deferred(tx: Tx) -> Iterator[None]:
    """Audit and outbox records of the block are written at its end (on PostgreSQL; SQLite has
    one writer, so nothing to order), lane by lane in ascending order, each subject's in the
    order they were made. For a transaction that records several subjects' changes (the
    workflow engine records consecutive store steps together): the lane heads are locked only
    from the end of the block to the commit, always in the same order, so two such
    transactions cannot deadlock on them, and each audit record goes with its outbox event in
    one statement. Two or more records go in one call of `audit_append_batch` (migration
    0041: the same chaining and hashing in PL/pgSQL), one round trip for all. Events of
    different subjects may leave in another order than they were made (they commit
    together). `append` returns 0 for a deferred record."""
    conn = core(tx)
    if conn.dialect.name != "postgresql" or DEFERRED in conn.info:
        yield
        return
    pending: list[tuple[str, str, dict[str, Any]]] = []
    conn.info[DEFERRED] = pending
    try:
        yield
        del conn.info[DEFERRED]
        ordered = sorted(pending, key=lambda p: lane_of(p[1]))  # stable
        if len(ordered) > 1:
            # All of them in one round trip (migration 0041's audit_append_batch).
            conn.execute(_PG_APPEND_BATCH, _batch_params(ordered))
            return
        for what, _, params in ordered:
            if what == "event":
                conn.execute(_OUTBOX_INSERT, params)
            else:
                conn.execute(_PG_APPEND_WITH_OUTBOX if "o_topic" in params else _PG_APPEND,
                             params)
    finally:
        conn.info.pop(DEFERRED, None)  # info outlives the checkout: never leave it behind


_OUTBOX_INSERT = OutboxEvent.__table__.insert()  # type: ignore[attr-defined]
# Entry i of the arrays: an audit record (lane set) and/or an outbox event (topic set).
_BATCH_AUDIT = ("lane", "ts", "actor", "action", "subject_type", "subject_id", "details")
_BATCH_OUTBOX = ("o_topic", "o_subject_type", "o_subject_id", "o_payload", "o_traceparent")
_BATCH_TYPES = {"lane": "integer[]", "o_created": "timestamptz[]"}


def _batch_call(prefix: str) -> str:
    return "audit_append_batch(" + ", ".join(
        f"CAST(:{prefix}{k} AS {_BATCH_TYPES.get(k, 'text[]')})"
        for k in (*_BATCH_AUDIT, "o_created", *_BATCH_OUTBOX)) + ")"


_PG_APPEND_BATCH = text("SELECT " + _batch_call(""))
# For take_deferred: the call as an expression of the caller's statement, parameters b_*.
PG_BATCH_CALL = _batch_call("b_")


def take_deferred(tx: Tx) -> dict[str, list[Any]] | None:
    """PostgreSQL, inside `deferred`: the records deferred so far, taken out of the block, as
    the parameters of PG_BATCH_CALL — an expression the caller puts in its own last statement
    (one round trip less); the block's end then writes only what is deferred after this.
    None when nothing is deferred (or not inside `deferred`, or not PostgreSQL)."""
    pending = core(tx).info.get(DEFERRED)
    if not pending:
        return None
    ordered = sorted(pending, key=lambda p: lane_of(p[1]))  # stable
    pending.clear()
    return {f"b_{k}": v for k, v in _batch_params(ordered).items()}


def _batch_params(ordered: Sequence[tuple[str, str, dict[str, Any]]]) -> dict[str, list[Any]]:
    """The deferred records as audit_append_batch's arrays, in their order."""
    out: dict[str, list[Any]] = {k: [] for k in (*_BATCH_AUDIT, "o_created", *_BATCH_OUTBOX)}
    for what, _, params in ordered:
        if what == "event":  # an outbox event alone (events.emit)
            for k in _BATCH_AUDIT:
                out[k].append(None)
            out["o_created"].append(params["created_at"])
            for k in _BATCH_OUTBOX:
                out[k].append(params[k.removeprefix("o_")])
        else:
            for k in _BATCH_AUDIT:
                out[k].append(params[k])
            out["o_created"].append(None)  # now(), as the one-statement append
            for k in _BATCH_OUTBOX:
                out[k].append(params.get(k))
    return out


def append_many(
    tx: Tx,
    *,
    actor: str,
    action: str,
    events: Sequence[tuple[str, str, Mapping[str, Any]]],
) -> int:
    """Append many events of one actor and action at once, inside the caller's transaction:
    `events` are (subject type, subject id, details), all with one timestamp. Each lane's head
    is locked once (lanes in ascending order, so bulk appenders cannot deadlock), the events
    are chained and hashed as `append` would (the same encoding, so `verify` cannot tell) and
    inserted with one multi-row statement. For per-subject records of bulk operations (a
    package per SIM of a batch): ~10× `append` in a loop. Call it last in the transaction: the
    heads stay locked until the commit. Returns the number of events appended."""
    ts = now_iso()
    by_lane: dict[int, list[tuple[str, str, str]]] = {}
    # Bulk callers share one details mapping between events: checked and encoded once.
    encoded: dict[int, str] = {}
    for subject_type, subject_id, details in events:
        known = encoded.get(id(details))
        if known is None:
            check_no_secrets(details)
            known = encoded[id(details)] = canonical_json(dict(details))
        by_lane.setdefault(lane_of(subject_id), []).append((subject_type, subject_id, known))
    conn = core(tx)
    rows: list[dict[str, Any]] = []
    for lane in sorted(by_lane):
        head = conn.execute(_HEAD_FOR_UPDATE, {"lane": lane}).one()
        lane_seq, prev, before = head.seq, head.hash, head.hash
        for subject_type, subject_id, body in by_lane[lane]:
            lane_seq += 1
            digest = event_hash(lane, lane_seq, ts, actor, action, subject_type, subject_id,
                                body, prev)
            rows.append({"ts": ts, "actor": actor, "action": action,
                         "subject_type": subject_type, "subject_id": subject_id,
                         "details": body, "lane": lane, "lane_seq": lane_seq,
                         "prev_hash": prev, "hash": digest})
            before, prev = prev, digest
        conn.execute(_UPDATE_HEAD, {"lane": lane, "new_seq": lane_seq, "new_hash": prev,
                                    "old_hash": before})
    if rows:
        conn.execute(_INSERT_EVENT, rows)
    return len(rows)


# --- verify and read --------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyReport:
    events: int
    lanes: int
    heads: dict[int, str]  # lane -> head hash
    lane_seqs: dict[int, int] = field(default_factory=dict)  # lane -> events in it

    @property
    def digest(self) -> str:
        """One hash over every lane head: write it down (or anchor it elsewhere) and a later
        verify proves nothing before it was rewritten wholesale."""
        return hashlib.sha256("".join(self.heads[i] for i in sorted(self.heads)).encode()
                              ).hexdigest()


@dataclass(frozen=True)
class LaneStart:
    """Where a lane's walk begins: after `lane_seq` events ending in `hash` (0 and the genesis
    hash for a full walk; a signed checkpoint's position for an incremental one)."""

    lane_seq: int = 0
    hash: str = GENESIS_HASH


def _lane_events(engine: Engine, lane: int, after: int = 0, chunk: int = 5000
                 ) -> Iterator[AuditEvent]:
    last = after
    while True:
        with read_session(engine) as s:
            rows = list(s.execute(
                select(AuditEvent).where(col(AuditEvent.lane) == lane,
                                         col(AuditEvent.lane_seq) > last)
                .order_by(col(AuditEvent.lane_seq)).limit(chunk)).scalars())
        if not rows:
            return
        yield from rows
        last = rows[-1].lane_seq


def _verify_lane(engine: Engine, lane: int, head_seq: int, head_hash: str,
                 start: LaneStart = LaneStart()) -> tuple[int, AuditChainBroken | None]:
    """Walk one lane from `start`; returns the events verified (from the start) and the first
    break, if any."""
    prev_hash, expected, count, last_seq = start.hash, start.lane_seq + 1, 0, 0
    for ev in _lane_events(engine, lane, start.lane_seq):
        seq = int(ev.seq or 0)
        if ev.lane_seq != expected:
            return count, AuditChainBroken(
                seq, f"lane {lane}: {ev.lane_seq - expected} event(s) before this one are "
                "missing (deleted?)")
        if ev.prev_hash != prev_hash:
            return count, AuditChainBroken(
                seq, f"lane {lane}: previous-hash link does not match the event before")
        digest = event_hash(ev.lane, ev.lane_seq, ev.ts, ev.actor, ev.action, ev.subject_type,
                            ev.subject_id, ev.details, ev.prev_hash)
        if digest != ev.hash:
            return count, AuditChainBroken(seq, f"lane {lane}: content does not match its "
                                                   "hash (edited)")
        prev_hash, expected, count, last_seq = ev.hash, expected + 1, count + 1, seq
    if head_seq != start.lane_seq + count or head_hash != prev_hash:
        return count, AuditChainBroken(
            last_seq, f"lane {lane}: its head says {head_seq} events but "
            f"{start.lane_seq + count} verify (events removed from the end?)")
    return count, None


def verify(engine: Engine, starts: Mapping[int, LaneStart] | None = None) -> VerifyReport:
    """Walk every lane (from `starts`, else from the genesis); raise AuditChainBroken naming
    the first event (in global order) that does not verify. `events` counts every event up to
    the heads, those before a start included (they were verified when the start was made)."""
    starts = starts or {}
    with read_session(engine) as s:
        heads = {h.id: (h.seq, h.hash) for h in s.execute(_HEADS).all()}
    total = 0
    broken: list[AuditChainBroken] = []
    for lane in range(AUDIT_LANES):
        if lane not in heads:
            raise AuditChainBroken(0, f"lane {lane}: head row missing")
        start = starts.get(lane, LaneStart())
        count, err = _verify_lane(engine, lane, *heads[lane], start=start)
        total += start.lane_seq + count
        if err is not None:
            broken.append(err)
    if broken:
        raise min(broken, key=lambda e: e.seq)
    return VerifyReport(events=total, lanes=AUDIT_LANES,
                        heads={lane: h for lane, (_, h) in heads.items()},
                        lane_seqs={lane: n for lane, (n, _) in heads.items()})


def iter_events(engine: Engine, chunk: int = 5000) -> Iterator[AuditEvent]:
    """All events in global order, read in chunks (the log may hold millions)."""
    last = 0
    while True:
        with read_session(engine) as s:
            rows = list(s.execute(select(AuditEvent).where(col(AuditEvent.seq) > last)
                                  .order_by(col(AuditEvent.seq)).limit(chunk)).scalars())
        if not rows:
            return
        yield from rows
        last = int(rows[-1].seq or 0)


def query(
    engine: Engine, *, subject_id: str | None = None, action: str | None = None,
    limit: int = 100, after_seq: int = 0,
) -> list[AuditEvent]:
    stmt = keyset_page(select(AuditEvent), col(AuditEvent.seq), after=after_seq, limit=limit,
                       filters={col(AuditEvent.subject_id): subject_id,
                                col(AuditEvent.action): action})
    with read_session(engine) as s:
        return list(s.execute(stmt).scalars())
