"""The audit log: append-only, hash-chained, verifiable.

Each event carries the SHA-256 of the previous event and its own SHA-256 over a canonical
encoding (compact JSON array of seq, ts, actor, action, subject type, subject id, details, previous
hash; UTF-8). Appenders lock the single chain-head row, so the chain never forks under concurrent
writers (PostgreSQL: SELECT … FOR UPDATE; SQLite: the writer lock of BEGIN IMMEDIATE).
`verify` walks the chain and names the first event that does not fit.

No secret ever enters the log: details are checked against the names of secret fields and
refused, with an error that names the field but never its value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlmodel import Session, col

from simcore.db import read_session
from simcore.errors import SimsmithError
from simcore.models import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64

# Field names that must never carry a value into the audit log.
SECRET_FIELDS = frozenset(
    {
        "k", "ki", "eki", "opc", "eopc", "op", "key", "pin", "pin1", "pin2", "puk", "puk1",
        "puk2", "adm", "adm1", "adm2", "adm3", "adm4", "kic", "kid", "kik", "kic1", "kid1",
        "kik1", "transport_key", "component", "passphrase", "secret", "password",
    }
)


class SecretInAudit(SimsmithError):
    """Someone tried to put a secret into an audit record."""


class AuditChainBroken(SimsmithError):
    """The chain does not verify; `seq` names the first event at fault."""

    def __init__(self, seq: int, reason: str) -> None:
        self.seq = seq
        self.reason = reason
        super().__init__(f"audit event {seq}: {reason}")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(
    seq: int, ts: str, actor: str, action: str, subject_type: str, subject_id: str,
    details: str, prev_hash: str,
) -> str:
    body = canonical_json([seq, ts, actor, action, subject_type, subject_id, details, prev_hash])
    return hashlib.sha256(body.encode()).hexdigest()


def check_no_secrets(details: Mapping[str, Any], path: str = "details") -> None:
    for name, value in details.items():
        if name.lower() in SECRET_FIELDS:
            raise SecretInAudit(f"{path}.{name}: secret fields never enter the audit log")
        if isinstance(value, bytes | bytearray):
            raise SecretInAudit(f"{path}.{name}: raw bytes never enter the audit log")
        if isinstance(value, Mapping):
            check_no_secrets(value, f"{path}.{name}")


_HEAD = select(col(AuditHead.seq), col(AuditHead.hash)).where(col(AuditHead.id) == 1)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    details: Mapping[str, Any] | None = None,
) -> int:
    """Append one event inside the caller's transaction; returns its sequence number."""
    details = dict(details or {})
    check_no_secrets(details)
    details_text = canonical_json(details)
    head = session.execute(_HEAD.with_for_update()).one()
    seq = head.seq + 1
    ts = now_iso()
    digest = event_hash(seq, ts, actor, action, subject_type, subject_id, details_text, head.hash)
    session.execute(
        AuditEvent.__table__.insert().values(  # type: ignore[attr-defined]
            seq=seq, ts=ts, actor=actor, action=action, subject_type=subject_type,
            subject_id=subject_id, details=details_text, prev_hash=head.hash, hash=digest,
        )
    )
    session.execute(update(AuditHead).where(col(AuditHead.id) == 1).values(seq=seq, hash=digest))
    return seq


@dataclass(frozen=True)
class VerifyReport:
    events: int
    head_seq: int
    head_hash: str


def iter_events(engine: Engine, chunk: int = 5000) -> Iterator[AuditEvent]:
    """All events in order, read in chunks (the log may hold millions)."""
    last = 0
    while True:
        with read_session(engine) as s:
            rows = list(
                s.execute(select(AuditEvent).where(col(AuditEvent.seq) > last)
                          .order_by(col(AuditEvent.seq)).limit(chunk)).scalars()
            )
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify(engine: Engine) -> VerifyReport:
    """Walk the chain; raise AuditChainBroken naming the first event that does not verify."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    for ev in iter_events(engine):
        if ev.seq != expected_seq:
            raise AuditChainBroken(expected_seq, f"missing (next stored event is {ev.seq})")
        if ev.prev_hash != prev_hash:
            raise AuditChainBroken(ev.seq, "previous-hash link does not match the event before")
        digest = event_hash(ev.seq, ev.ts, ev.actor, ev.action, ev.subject_type, ev.subject_id,
                            ev.details, ev.prev_hash)
        if digest != ev.hash:
            raise AuditChainBroken(ev.seq, "content does not match its hash (edited)")
        prev_hash = ev.hash
        expected_seq += 1
        count += 1
    with read_session(engine) as s:
        head = s.execute(_HEAD).one()
    if head.seq != count or head.hash != prev_hash:
        raise AuditChainBroken(
            count + 1 if head.seq > count else head.seq,
            f"chain head says {head.seq} events but {count} are stored (events removed?)",
        )
    return VerifyReport(events=count, head_seq=head.seq, head_hash=head.hash)


def count_events(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(AuditEvent)).scalar_one())


def query(
    engine: Engine, *, subject_id: str | None = None, action: str | None = None,
    limit: int = 100, after_seq: int = 0,
) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(col(AuditEvent.seq) > after_seq)
    if subject_id is not None:
        stmt = stmt.where(col(AuditEvent.subject_id) == subject_id)
    if action is not None:
        stmt = stmt.where(col(AuditEvent.action) == action)
    with read_session(engine) as s:
        return list(s.execute(stmt.order_by(col(AuditEvent.seq)).limit(limit)).scalars())
