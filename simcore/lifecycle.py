"""Lifecycle state machines as data (design §3), and the one function that applies them.

- SIM service lifecycle (physical cards and eSIM profiles alike):
  blank → personalised → in_stock → allocated → active ⇄ suspended → terminated → quarantine →
  recycled. A card is never reused; recycling frees its IMSI and MSISDN.
- eSIM profile state, mirrored from the SM-DP+ (GSMA SGP.22 v2.5 §3.1.1 / §5.3 ES2+):
  available → allocated | linked → confirmed → released → downloaded → installed →
  (enabled ⇄ disabled) → deleted, plus error and unavailable. Kept in its own field.

`apply_transition` is the only writer of either field: in the caller's transaction it checks
the move, writes the state (bumping the row version), one audit event and one outbox event.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import bindparam, literal_column, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, SQLModel

from simcore import audit
from simcore.db import Tx, core
from simcore.errors import Conflict, SimsmithError
from simcore.models import MsisdnEntry, Sim, UtcDateTime, from_row, utcnow


class SimState(StrEnum):
    BLANK = "blank"
    PERSONALISED = "personalised"
    IN_STOCK = "in_stock"
    ALLOCATED = "allocated"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"
    QUARANTINE = "quarantine"
    RECYCLED = "recycled"


class ProfileState(StrEnum):
    """SGP.22 SM-DP+ profile states (ES2+), plus the eUICC-side states reported back."""

    AVAILABLE = "available"
    ALLOCATED = "allocated"
    LINKED = "linked"
    CONFIRMED = "confirmed"
    RELEASED = "released"
    DOWNLOADED = "downloaded"
    INSTALLED = "installed"
    ENABLED = "enabled"
    DISABLED = "disabled"
    DELETED = "deleted"
    ERROR = "error"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per machine
class StateMachine:
    name: str
    field: str  # the column it governs
    transitions: Mapping[str, frozenset[str]]
    model: type[SQLModel] = Sim
    key: str = "iccid"

    def allowed(self, state: str) -> frozenset[str]:
        return self.transitions.get(state, frozenset())

    @property
    def states(self) -> frozenset[str]:
        return frozenset(self.transitions)


S, P = SimState, ProfileState

SIM_LIFECYCLE = StateMachine(
    "sim",
    "state",
    {
        S.BLANK: frozenset({S.PERSONALISED, S.TERMINATED}),
        S.PERSONALISED: frozenset({S.IN_STOCK, S.TERMINATED}),
        S.IN_STOCK: frozenset({S.ALLOCATED, S.TERMINATED}),
        # An allocation not yet activated can be handed back to stock.
        S.ALLOCATED: frozenset({S.ACTIVE, S.IN_STOCK, S.TERMINATED}),
        S.ACTIVE: frozenset({S.SUSPENDED, S.TERMINATED}),
        S.SUSPENDED: frozenset({S.ACTIVE, S.TERMINATED}),
        S.TERMINATED: frozenset({S.QUARANTINE}),
        S.QUARANTINE: frozenset({S.RECYCLED}),
        S.RECYCLED: frozenset(),
    },
)

# The new SIM of a swap takes over the subscription as it stands: active, or suspended when
# the old SIM was (the suspension moves with the subscription). Only a swap moves an allocated
# SIM straight to suspended; SIM_LIFECYCLE itself does not (nothing else may).
SIM_SWAP_TAKEOVER = StateMachine(
    "sim",
    "state",
    {S.ALLOCATED: frozenset({S.ACTIVE, S.SUSPENDED})},
)

PROFILE_LIFECYCLE = StateMachine(
    "esim_profile",
    "profile_state",
    {
        # DownloadOrder without EID → allocated, with EID → linked (SGP.22 §5.3.1).
        P.AVAILABLE: frozenset({P.ALLOCATED, P.LINKED, P.UNAVAILABLE}),
        # ConfirmOrder → confirmed, or released with releaseFlag; CancelOrder → available or
        # unavailable per finalProfileStatusIndicator (§5.3.4).
        P.ALLOCATED: frozenset({P.LINKED, P.CONFIRMED, P.RELEASED, P.AVAILABLE, P.UNAVAILABLE}),
        P.LINKED: frozenset({P.CONFIRMED, P.RELEASED, P.AVAILABLE, P.UNAVAILABLE}),
        P.CONFIRMED: frozenset({P.RELEASED, P.AVAILABLE, P.UNAVAILABLE}),
        # HandleDownloadProgressInfo reports download, installation or failure (§5.3.5).
        P.RELEASED: frozenset({P.DOWNLOADED, P.INSTALLED, P.ERROR, P.AVAILABLE, P.UNAVAILABLE}),
        P.DOWNLOADED: frozenset({P.INSTALLED, P.ERROR, P.AVAILABLE, P.UNAVAILABLE}),
        # Past download ES2+ has nothing to cancel (SGP.22 v2 §5.3.3: CancelOrder ends an order
        # before the download) and no SM-DP+ function deletes a profile on a device: the
        # operator retires it at the SM-DP+ instead (→ unavailable: never served again) when
        # the subscription ends, and it stays on the device until the user deletes it.
        P.INSTALLED: frozenset({P.ENABLED, P.DISABLED, P.DELETED, P.ERROR, P.UNAVAILABLE}),
        P.ENABLED: frozenset({P.DISABLED, P.DELETED, P.UNAVAILABLE}),
        P.DISABLED: frozenset({P.ENABLED, P.DELETED, P.UNAVAILABLE}),
        P.DELETED: frozenset(),
        P.ERROR: frozenset({P.AVAILABLE, P.UNAVAILABLE}),
        # A retired profile's delete notification (ES9+ HandleNotification, or ES2+
        # HandleDownloadProgressInfo point 5 from an external SM-DP+) is still recorded.
        P.UNAVAILABLE: frozenset({P.DELETED}),
    },
)


class MsisdnState(StrEnum):
    AVAILABLE = "available"
    ASSIGNED = "assigned"
    QUARANTINE = "quarantine"


M = MsisdnState

# A number rests in quarantine after release before anyone else gets it (number recycling).
MSISDN_LIFECYCLE = StateMachine(
    "msisdn",
    "state",
    {
        M.AVAILABLE: frozenset({M.ASSIGNED}),
        M.ASSIGNED: frozenset({M.QUARANTINE}),
        M.QUARANTINE: frozenset({M.AVAILABLE}),
    },
    model=MsisdnEntry,
    key="msisdn",
)


class TransitionNotAllowed(SimsmithError):
    """A state change the machine does not allow; names from, to and the allowed targets."""

    def __init__(self, machine: str, subject: str, current: str | None, target: str,
                 allowed: frozenset[str]) -> None:
        self.machine = machine
        self.subject = subject
        self.current = current
        self.target = target
        self.allowed = allowed
        targets = ", ".join(sorted(allowed)) or "none (final state)"
        super().__init__(
            f"{machine} {subject}: cannot go from {current} to {target}; allowed from "
            f"{current}: {targets}"
        )


class StaleVersion(Conflict):
    """The row changed since it was read (optimistic locking)."""


class QuarantineNotOver(Conflict):
    """A number or SIM is still in quarantine."""


def check_transition(machine: StateMachine, subject: str, current: str | None,
                     target: str) -> None:
    if current is None or target not in machine.allowed(current):
        raise TransitionNotAllowed(
            machine.name, subject, current, target,
            machine.allowed(current) if current else frozenset(),
        )


ObjT = TypeVar("ObjT", Sim, MsisdnEntry)


def apply_transition(
    session: Session,
    obj: ObjT,
    target: str,
    *,
    actor: str,
    machine: StateMachine = SIM_LIFECYCLE,
    reason: str | None = None,
    changes: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> ObjT:
    """Move `obj` (a Sim, or a MsisdnEntry for MSISDN_LIFECYCLE) to `target` in the caller's
    transaction: state + audit + outbox, or nothing.

    `changes` are further column values written with the state (e.g. subscriber_ref, msisdn);
    `details` go to the audit and outbox records. Raises TransitionNotAllowed or StaleVersion.
    """
    subject = str(getattr(obj, machine.key))
    current = getattr(obj, machine.field)
    check_transition(machine, subject, current, target)
    values: dict[str, Any] = dict(changes or {})
    values[machine.field] = str(target)
    values["version"] = obj.version + 1
    values["updated_at"] = utcnow()
    if reason is not None and machine is SIM_LIFECYCLE:
        values["reason"] = reason
    params = {f"v_{k}": v for k, v in values.items()}
    result = core(session).execute(
        _transition_statement(machine, tuple(sorted(values))),
        {**params, "subject": subject, "old_version": obj.version})
    if result.rowcount != 1:
        raise StaleVersion(
            f"{machine.name} {subject}: changed by someone else (version {obj.version})"
        )
    for name, value in values.items():
        # Already written above: keep the ORM from flushing the same UPDATE again at commit.
        set_committed_value(obj, name, value)
    _record(session, machine, subject, current, target, actor, reason, details)
    return obj


def transition_row(
    tx: Tx,
    machine: StateMachine,
    subject: str,
    current: str | None,
    version: int,
    target: str,
    *,
    actor: str,
    reason: str | None = None,
    changes: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """apply_transition for a row read with Core — its key `subject`, its state `current` and
    its `version` — on a session or a connection: the same check, version-guarded UPDATE,
    audit and outbox records. Returns the column values written."""
    check_transition(machine, subject, current, target)
    assert current is not None
    values: dict[str, Any] = dict(changes or {})
    values[machine.field] = str(target)
    values["version"] = version + 1
    values["updated_at"] = utcnow()
    if reason is not None and machine is SIM_LIFECYCLE:
        values["reason"] = reason
    result = core(tx).execute(
        _transition_statement(machine, tuple(sorted(values))),
        {"subject": subject, "old_version": version, **{f"v_{k}": v for k, v in values.items()}})
    if result.rowcount != 1:
        raise StaleVersion(f"{machine.name} {subject}: changed by someone else (version {version})")
    _record(tx, machine, subject, current, target, actor, reason, details)
    return values


def claim_transition(
    tx: Tx,
    current: str,
    target: str,
    *,
    actor: str,
    where: Mapping[str, Any] | None = None,
    machine: StateMachine = SIM_LIFECYCLE,
    changes: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    lowest: bool = False,
) -> Any:
    """apply_transition for "the next row in state `current`": pick the first such row (key
    order) whose columns equal `where` and that no other transaction holds (PostgreSQL: FOR
    UPDATE SKIP LOCKED), move it to `target` in one UPDATE … RETURNING, then write the audit and
    outbox records. Returns the row as now stored (a detached model object), or None when no
    row is free. `lowest`: always the lowest key free (the scan starts at the beginning, not
    at the last key this process claimed)."""
    check_transition(machine, "(next)", current, target)
    where = dict(where or {})
    values = dict(changes or {})
    shape = (machine, tuple(sorted(where)), tuple(sorted(values)))
    params = {f"w_{k}": v for k, v in where.items()}
    params.update({f"v_{k}": v for k, v in values.items()})
    params.update(current=str(current), target=str(target), now=utcnow())
    conn = core(tx)
    # Rows claimed before leave dead index entries at the front of the scan until VACUUM; start
    # at the last key this process claimed, and from the beginning only when that finds none.
    url = conn.engine.url  # its parts: hashing the URL itself renders it as a string each time
    cursor_key = (url.drivername, url.host, url.port, url.database, machine.name, str(current),
                  tuple(sorted(where.items())))
    after = None if lowest else _claim_cursors.get(cursor_key)
    row = None
    if after is not None:
        row = conn.execute(_claim_statement(*shape, after=True), {**params, "after": after}
                           ).first()
    if row is None:
        # Core execution and a plain object: a third of the CPU of an ORM load.
        row = conn.execute(_claim_statement(*shape), params).first()
    if row is None:
        return None
    obj = from_row(machine.model, row._mapping)
    _claim_cursors[cursor_key] = getattr(obj, machine.key)
    _record(tx, machine, str(getattr(obj, machine.key)), current, target, actor, None,
            details)
    return obj


def transition_if(
    tx: Tx,
    machine: StateMachine,
    subject: str,
    current: str,
    target: str,
    *,
    actor: str,
    where: Mapping[str, Any] | None = None,
    changes: Mapping[str, Any] | None = None,
    details: Callable[[Any], Mapping[str, Any]] | None = None,
) -> Any:
    """apply_transition without reading the row first: move the row `subject` from `current`
    to `target` in one UPDATE … RETURNING if it is in `current` and its columns equal `where`
    (the UPDATE locks it), then write the audit and outbox records (`details(row)`: their
    details, from the row as now stored). Returns that row (a detached model object), or None
    when the row is not in that state (or not there): the caller reads it to say why."""
    check_transition(machine, subject, current, target)
    where = dict(where or {})
    values = dict(changes or {})
    params = {f"w_{k}": v for k, v in where.items()}
    params.update({f"v_{k}": v for k, v in values.items()})
    params.update(subject=subject, current=str(current), target=str(target), now=utcnow())
    row = core(tx).execute(_transition_if_statement(machine, tuple(sorted(where)),
                                                    tuple(sorted(values))), params).first()
    if row is None:
        return None
    obj = from_row(machine.model, row._mapping)
    _record(tx, machine, subject, current, target, actor, None,
            details(obj) if details is not None else None)
    return obj


@functools.lru_cache(maxsize=64)
def _transition_if_statement(machine: StateMachine, where: tuple[str, ...],
                             changes: tuple[str, ...]) -> Any:
    table: Any = machine.model.__table__  # type: ignore[attr-defined]
    values: dict[str, Any] = {k: bindparam(f"v_{k}") for k in changes}
    values.update({machine.field: bindparam("target"), "version": table.c.version + 1,
                   "updated_at": bindparam("now", type_=UtcDateTime())})
    return (update(table)
            .where(table.c[machine.key] == bindparam("subject"),
                   table.c[machine.field] == bindparam("current"),
                   *(table.c[k] == bindparam(f"w_{k}") for k in where))
            .values(**values).returning(*table.c))


# Last key claimed per (database, machine, state, filters) in this process: where the next scan
# starts. Only a hint — a miss falls back to a scan from the start.
_claim_cursors: dict[tuple[Any, ...], Any] = {}


@functools.lru_cache(maxsize=128)
def _transition_statement(machine: StateMachine, columns: tuple[str, ...]) -> Any:
    # Built once per shape with bound parameters (apply_transition runs on every hot path).
    table: Any = machine.model.__table__  # type: ignore[attr-defined]
    return (update(table)
            .where(table.c[machine.key] == bindparam("subject"),
                   table.c.version == bindparam("old_version"))
            .values({c: bindparam(f"v_{c}") for c in columns}))


@functools.lru_cache(maxsize=64)
def _claim_statement(machine: StateMachine, where: tuple[str, ...],
                     changes: tuple[str, ...], after: bool = False) -> Any:
    # Built once per shape with bound parameters: statement construction is costly in Python.
    model: Any = machine.model
    table = model.__table__
    key, field = table.c[machine.key], table.c[machine.field]
    conditions = [field == bindparam("current"),
                  *(table.c[k] == bindparam(f"w_{k}") for k in where)]
    if after:
        # >=: a claim whose transaction rolled back left its row in stock at the cursor.
        conditions.append(key >= bindparam("after"))
    # LIMIT 1 written as such: as a parameter (SQLAlchemy's default) PostgreSQL kept a custom
    # plan for the claim, planning it anew on every execution.
    pick = (select(key).where(*conditions).order_by(key).limit(literal_column("1"))
            .with_for_update(skip_locked=True).scalar_subquery())
    values: dict[str, Any] = {k: bindparam(f"v_{k}") for k in changes}
    values.update({machine.field: bindparam("target"), "version": table.c.version + 1,
                   "updated_at": bindparam("now", type_=UtcDateTime())})
    return (update(table).where(key == pick, field == bindparam("current")).values(**values)
            .returning(*table.c))


def _record(tx: Tx, machine: StateMachine, subject: str, current: str, target: str,
            actor: str, reason: str | None, details: Mapping[str, Any] | None) -> None:
    record: dict[str, Any] = {"from": current, "to": str(target)}
    if reason is not None:
        record["reason"] = reason
    record.update(details or {})
    # Audit (with the outbox event) last: appenders queue on the chain head until the commit.
    audit.append(tx, actor=actor, action=f"{machine.name}.{target}",
                 subject_type=machine.name, subject_id=subject, details=record,
                 outbox=audit.Outbox(f"{machine.name}.state_changed", machine.name, subject,
                                     record))
