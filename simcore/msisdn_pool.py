"""The MSISDN pool (E.164 numbers): add ranges, assign to a SIM, release into quarantine,
recycle after the quarantine period. States follow simcore.lifecycle.MSISDN_LIFECYCLE.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select, update
from sqlmodel import Session, col

from simcore.db import read_session, transaction
from simcore.errors import Conflict, InvalidInput, NotFound
from simcore.identifiers import Iccid, Msisdn
from simcore.lifecycle import (
    MSISDN_LIFECYCLE,
    MsisdnState,
    QuarantineNotOver,
    apply_transition,
    claim_transition,
)
from simcore.models import MsisdnEntry, NumberRange, Sim, utcnow
from simcore.paging import keyset_page
from simcore.ranges import add_range, range_of


def add_msisdn_range(engine: Engine, first: str, last: str, *, name: str, actor: str) -> int:
    """Create an MSISDN range and put all its numbers in the pool as available."""
    r = add_range(engine, "msisdn", first, last, name=name, actor=actor)
    rng = range_of(r)
    now = utcnow()
    with transaction(engine) as s:
        s.execute(
            MsisdnEntry.__table__.insert(),  # type: ignore[attr-defined]
            [{"msisdn": v, "range_id": r.id, "state": MsisdnState.AVAILABLE.value, "version": 1,
              "updated_at": now} for v in rng],
        )
        s.execute(update(NumberRange).where(col(NumberRange.id) == r.id)
                  .values(next_offset=len(rng)))
    return len(rng)


def _entry_for_update(s: Session, msisdn: str) -> MsisdnEntry:
    e: MsisdnEntry | None = s.execute(
        select(MsisdnEntry).where(col(MsisdnEntry.msisdn) == msisdn).with_for_update()
    ).scalar_one_or_none()
    if e is None:
        raise NotFound(f"MSISDN {msisdn} is not in the pool")
    return e


def assign_in_session(s: Session, iccid: str, msisdn: str, *, actor: str) -> str:
    """Assign `msisdn` (or "auto": the lowest available) to a SIM inside the caller's
    transaction; returns the number. The caller writes Sim.msisdn."""
    if msisdn == "auto":
        # The activation workflow's hot path: the lowest available picked and assigned in one
        # UPDATE … RETURNING (FOR UPDATE SKIP LOCKED), with the same records as below.
        got = claim_transition(s, MsisdnState.AVAILABLE, MsisdnState.ASSIGNED, actor=actor,
                               machine=MSISDN_LIFECYCLE, lowest=True,
                               changes={"iccid": iccid, "quarantine_until": None},
                               details={"iccid": iccid})
        if got is None:
            raise NotFound("no MSISDN available in the pool; add a range with "
                           "`simsmith msisdn add-range`")
        return str(got.msisdn)
    else:
        entry = _entry_for_update(s, Msisdn.parse(msisdn).digits)
        if entry.state != MsisdnState.AVAILABLE:
            raise Conflict(f"MSISDN {entry.msisdn} is {entry.state}, not available")
    apply_transition(s, entry, MsisdnState.ASSIGNED, actor=actor, machine=MSISDN_LIFECYCLE,
                     changes={"iccid": iccid, "quarantine_until": None},
                     details={"iccid": iccid})
    return entry.msisdn


def assign(engine: Engine, msisdn: str, iccid: str, *, actor: str) -> str:
    """Give a SIM that has none an MSISDN from the pool ("auto" for the next available)."""
    iccid = Iccid.parse(iccid).digits
    with transaction(engine) as s:
        sim = s.execute(select(Sim).where(col(Sim.iccid) == iccid).with_for_update()
                        ).scalar_one_or_none()
        if sim is None:
            raise NotFound(f"no SIM with ICCID {iccid}")
        if sim.msisdn:
            raise Conflict(f"sim {iccid} already has MSISDN {sim.msisdn}")
        if sim.state in ("terminated", "quarantine", "recycled"):
            raise Conflict(f"sim {iccid} is {sim.state}: no number can be assigned")
        number = assign_in_session(s, iccid, msisdn, actor=actor)
        s.execute(update(Sim).where(col(Sim.iccid) == iccid)
                  .values(msisdn=number, version=sim.version + 1, updated_at=utcnow()))
        return number


def release(engine: Engine, msisdn: str, *, actor: str, quarantine_days: int) -> MsisdnEntry:
    """assigned → quarantine: the number leaves its SIM and rests before reuse."""
    number = Msisdn.parse(msisdn).digits
    with transaction(engine) as s:
        entry = _entry_for_update(s, number)
        if entry.iccid:
            s.execute(update(Sim).where(col(Sim.iccid) == entry.iccid)
                      .values(msisdn=None, version=col(Sim.version) + 1, updated_at=utcnow()))
        return apply_transition(
            s, entry, MsisdnState.QUARANTINE, actor=actor, machine=MSISDN_LIFECYCLE,
            changes={"iccid": None,
                     "quarantine_until": utcnow() + timedelta(days=quarantine_days)},
            details={"from_iccid": entry.iccid},
        )


def recycle(
    engine: Engine, msisdn: str, *, actor: str, now: datetime | None = None
) -> MsisdnEntry:
    """quarantine → available once the quarantine is over."""
    number = Msisdn.parse(msisdn).digits
    now = now or utcnow()
    with transaction(engine) as s:
        entry = _entry_for_update(s, number)
        if (entry.state == MsisdnState.QUARANTINE and entry.quarantine_until is not None
                and entry.quarantine_until > now):
            raise QuarantineNotOver(
                f"MSISDN {number} is in quarantine until {entry.quarantine_until.isoformat()}"
            )
        return apply_transition(s, entry, MsisdnState.AVAILABLE, actor=actor,
                                machine=MSISDN_LIFECYCLE, changes={"quarantine_until": None})


def recycle_due_msisdns(engine: Engine, *, actor: str, now: datetime | None = None) -> int:
    now = now or utcnow()
    with read_session(engine) as s:
        due = list(s.execute(select(col(MsisdnEntry.msisdn)).where(
            col(MsisdnEntry.state) == MsisdnState.QUARANTINE,
            col(MsisdnEntry.quarantine_until) <= now)).scalars())
    for number in due:
        recycle(engine, number, actor=actor, now=now)
    return len(due)


def get(engine: Engine, msisdn: str) -> MsisdnEntry:
    number = Msisdn.parse(msisdn).digits
    with read_session(engine) as s:
        e = s.get(MsisdnEntry, number)
        if e is None:
            raise NotFound(f"MSISDN {number} is not in the pool")
        return e


def list_msisdns(engine: Engine, *, state: str | None = None, after: str | None = None,
                 limit: int = 100) -> list[MsisdnEntry]:
    if state is not None and state not in MSISDN_LIFECYCLE.states:
        raise InvalidInput("state", "unknown MSISDN state", value=state,
                           expected=", ".join(sorted(MSISDN_LIFECYCLE.states)))
    stmt = keyset_page(select(MsisdnEntry), col(MsisdnEntry.msisdn), after=after or None,
                       limit=limit, filters={col(MsisdnEntry.state): state or None})
    with read_session(engine) as s:
        return list(s.execute(stmt).scalars())


def counts(engine: Engine) -> dict[str, int]:
    with read_session(engine) as s:
        rows = s.execute(select(col(MsisdnEntry.state), func.count())
                         .group_by(col(MsisdnEntry.state))).all()
        return {state: int(n) for state, n in rows}
