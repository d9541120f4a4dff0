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

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import update
from sqlmodel import Session, SQLModel

from simcore import audit, events
from simcore.errors import Conflict, SimsmithError
from simcore.models import MsisdnEntry, Sim, utcnow


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


@dataclass(frozen=True)
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
        P.INSTALLED: frozenset({P.ENABLED, P.DISABLED, P.DELETED, P.ERROR}),
        P.ENABLED: frozenset({P.DISABLED, P.DELETED}),
        P.DISABLED: frozenset({P.ENABLED, P.DELETED}),
        P.DELETED: frozenset(),
        P.ERROR: frozenset({P.AVAILABLE, P.UNAVAILABLE}),
        P.UNAVAILABLE: frozenset(),
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
    table = machine.model.__table__  # type: ignore[attr-defined]
    result = session.execute(
        update(table)
        .where(table.c[machine.key] == subject, table.c.version == obj.version)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StaleVersion(
            f"{machine.name} {subject}: changed by someone else (version {obj.version})"
        )
    for name, value in values.items():
        setattr(obj, name, value)
    record: dict[str, Any] = {"from": current, "to": str(target)}
    if reason is not None:
        record["reason"] = reason
    record.update(details or {})
    action = f"{machine.name}.{target}"
    audit.append(session, actor=actor, action=action, subject_type=machine.name,
                 subject_id=subject, details=record)
    events.emit(session, f"{machine.name}.state_changed", machine.name, subject, record)
    return obj
