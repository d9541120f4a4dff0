"""Inventory services: SIM generation, allocation, the service lifecycle
(activate, suspend, resume, terminate), SIM swap, quarantine and recycling.

Every function is one transaction: it changes state through simcore.lifecycle (audit + outbox
included) or changes nothing. Allocation is safe under concurrency: on PostgreSQL a SIM is picked
with `SELECT … FOR UPDATE SKIP LOCKED`; on SQLite writers are serialised (BEGIN IMMEDIATE).
Number ranges live in simcore.ranges, MSISDN pool operations in simcore.msisdn_pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table, bindparam, delete, func, select, update
from sqlmodel import Session, col

from simcore import audit
from simcore.db import (
    Tx,
    connection_transaction,
    is_sqlite,
    read_connection,
    read_session,
    transaction,
)
from simcore.errors import Conflict, InvalidInput, NotFound
from simcore.identifiers import Iccid, Imsi, Msisdn
from simcore.lifecycle import (
    MSISDN_LIFECYCLE,
    SIM_LIFECYCLE,
    SIM_SWAP_TAKEOVER,
    MsisdnState,
    QuarantineNotOver,
    SimState,
    StaleVersion,
    apply_transition,
    check_transition,
    claim_transition,
)
from simcore.log import get_logger
from simcore.models import (
    Batch,
    FreeImsi,
    MsisdnEntry,
    NumberRange,
    Sim,
    SimStateCount,
    UtcDateTime,
    from_row,
    utcnow,
)
from simcore.msisdn_pool import assign_in_session, counts, recycle_due_msisdns
from simcore.ranges import RangeExhausted, default_range, get_range, range_of, take_from_range

log = get_logger(__name__)

SIM_KINDS = ("physical", "esim")
SIM_TABLE: Table = Sim.__table__  # type: ignore[attr-defined]


class NoSimAvailable(NotFound):
    """No SIM in stock matches an allocation request."""


# --- generation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerateResult:
    batch: str
    count: int
    first_iccid: str
    last_iccid: str


GENERATE_CHUNK = 50_000  # SIMs taken from the ranges and written per step of generate_sims

SIM_COLUMNS = ("iccid", "imsi", "kind", "form_factor", "batch_id", "state", "version",
               "created_at", "updated_at")


def _bulk_insert_sims(session: Session, rows: Sequence[tuple[Any, ...]],
                      progress: Callable[[int], None] | None = None) -> None:
    """Insert many SIM rows fast: COPY on PostgreSQL, executemany on SQLite; `progress` gets the
    number of rows written so far after each chunk."""
    conn = session.connection()
    raw = conn.connection.driver_connection
    cols = ", ".join(SIM_COLUMNS)
    step = 50_000
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY sim ({cols}) FROM STDIN") as copy:  # type: ignore[union-attr]
            for i in range(0, len(rows), step):
                for row in rows[i : i + step]:
                    copy.write_row(row)
                if progress:
                    progress(min(i + step, len(rows)))
        return
    marks = ", ".join("?" * len(SIM_COLUMNS))
    cur = raw.cursor()  # type: ignore[union-attr]
    try:
        for i in range(0, len(rows), step):
            cur.executemany(f"INSERT INTO sim ({cols}) VALUES ({marks})", rows[i : i + step])
            if progress:
                progress(min(i + step, len(rows)))
    finally:
        cur.close()


def generate_sims(
    engine: Engine,
    count: int,
    *,
    batch: str,
    actor: str,
    kind: str = "physical",
    form_factor: str | None = None,
    iccid_range: str | None = None,
    imsi_range: str | None = None,
    state: str = SimState.IN_STOCK,
    progress: Callable[[int], None] | None = None,
) -> GenerateResult:
    """Create `count` SIM records with the next free ICCIDs and IMSIs of the given ranges (or
    the first ranges with room), under a new batch. One audit and one outbox event for the batch.
    Recycled IMSIs (quarantine over) are used once the IMSI range is exhausted."""
    if count < 1:
        raise InvalidInput("count", "too small", value=str(count), expected="at least 1")
    if kind not in SIM_KINDS:
        raise InvalidInput("kind", "unknown SIM kind", value=kind, expected=" or ".join(SIM_KINDS))
    if state not in (SimState.BLANK, SimState.PERSONALISED, SimState.IN_STOCK):
        raise InvalidInput("state", "not an initial state", value=state,
                           expected="blank, personalised or in_stock")
    with transaction(engine) as s:
        if s.execute(select(col(Batch.id)).where(col(Batch.name) == batch)).first():
            raise Conflict(f"batch {batch!r} already exists")
        ir = get_range(s, iccid_range, "iccid") if iccid_range else default_range(s, "iccid")
        room = len(range_of(ir)) - ir.next_offset
        if room < count:  # checked whole before the chunks, so the message gives the real numbers
            raise RangeExhausted(f"{ir.kind} range {ir.name!r} has {max(room, 0)} free members "
                                 f"left, {count} asked for")
        b = Batch(name=batch, source="generated", kind=kind, form_factor=form_factor,
                  row_count=count, status="complete")
        s.add(b)
        s.flush()
        now = utcnow()
        if is_sqlite(engine):
            # Raw inserts bypass the ORM: store timestamps exactly as the column type would.
            stamp: Any = UtcDateTime().dialect_impl(s.get_bind().dialect).bind_processor(
                s.get_bind().dialect)(now)  # type: ignore[misc]
        else:
            stamp = now
        # Streamed in chunks inside the one transaction: memory stays bounded whatever the
        # count (10M SIMs held as rows took ~2.7 GiB), and the batch still lands whole or not
        # at all.
        first = last = ""
        done = 0
        while done < count:
            n = min(GENERATE_CHUNK, count - done)
            iccids = take_from_range(s, ir, n, col(Sim.iccid))
            imsis = _take_imsis(s, imsi_range, n)
            rows = [(iccid, imsi, kind, form_factor, b.id, str(state), 1, stamp, stamp)
                    for iccid, imsi in zip(iccids, imsis, strict=True)]
            _bulk_insert_sims(s, rows, _offset_progress(progress, done))
            first = first or iccids[0]
            last = iccids[-1]
            done += n
            del rows, iccids, imsis
        details = {"batch": batch, "count": count, "first_iccid": first,
                   "last_iccid": last, "kind": kind, "state": str(state)}
        audit.append(s, actor=actor, action="inventory.generate", subject_type="batch",
                     subject_id=batch, details=details,
                     outbox=audit.Outbox("batch.created", "batch", batch, details))
    log.info("sims.generated", batch=batch, count=count, first_iccid=first,
             last_iccid=last, kind=kind)
    return GenerateResult(batch, count, first, last)


def _offset_progress(progress: Callable[[int], None] | None,
                     base: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    return lambda k: progress(base + k)


def _take_imsis(s: Session, imsi_range: str | None, count: int) -> list[str]:
    r: NumberRange | None
    if imsi_range:
        r = get_range(s, imsi_range, "imsi")
    else:
        try:
            r = default_range(s, "imsi")
        except (RangeExhausted, NotFound):
            r = None
    out: list[str] = []
    if r is not None:
        free = len(range_of(r)) - r.next_offset
        out = take_from_range(s, r, min(count, free), col(Sim.imsi)) if free > 0 else []
        if out:
            # A recycled IMSI the cursor now hands out must not stay in the free pool as well.
            s.execute(delete(FreeImsi).where(col(FreeImsi.imsi) >= out[0],
                                             col(FreeImsi.imsi) <= out[-1],
                                             func.length(FreeImsi.imsi) == len(out[0])))
    if len(out) < count:
        need = count - len(out)
        recycled = list(s.execute(
            select(col(FreeImsi.imsi)).order_by(col(FreeImsi.imsi)).limit(need)
            .with_for_update(skip_locked=True)
        ).scalars())
        if len(recycled) < need:
            raise RangeExhausted(
                f"not enough IMSIs: {len(out)} from the range and {len(recycled)} recycled, "
                f"{count} asked for"
            )
        s.execute(delete(FreeImsi).where(col(FreeImsi.imsi).in_(recycled)))
        out.extend(recycled)
    return out


# --- lookups ----------------------------------------------------------------------------------


def batch_id(s: Tx, name: str) -> int:
    b = s.execute(select(col(Batch.id)).where(col(Batch.name) == name)).scalar_one_or_none()
    if b is None:
        raise NotFound(f"no batch named {name!r}")
    return int(b)


def _sim_for_update(s: Session, iccid: str) -> Sim:
    stmt = select(Sim).where(col(Sim.iccid) == iccid).with_for_update()
    sim: Sim | None = s.execute(stmt).scalar_one_or_none()
    if sim is None:
        raise NotFound(f"no SIM with ICCID {iccid}")
    return sim


def get_sim(engine: Engine, iccid: str) -> Sim:
    iccid = Iccid.parse(iccid).digits
    # Core and a plain object (the lookup route's whole database work): a third of an ORM get.
    with read_connection(engine) as conn:
        row = conn.execute(_GET_SIM, {"iccid": iccid}).first()
    if row is None:
        raise NotFound(f"no SIM with ICCID {iccid}")
    return from_row(Sim, row._mapping)


_GET_SIM = select(SIM_TABLE).where(SIM_TABLE.c.iccid == bindparam("iccid"))


def find_sim(engine: Engine, *, imsi: str | None = None, msisdn: str | None = None) -> Sim:
    with read_session(engine) as s:
        if imsi is not None:
            stmt = select(Sim).where(col(Sim.imsi) == Imsi.parse(imsi).digits)
            what = f"IMSI {imsi}"
        elif msisdn is not None:
            stmt = select(Sim).where(col(Sim.msisdn) == Msisdn.parse(msisdn).digits)
            what = f"MSISDN {msisdn}"
        else:
            raise InvalidInput("lookup", "nothing to look up", expected="imsi or msisdn")
        sim: Sim | None = s.execute(stmt).scalar_one_or_none()
        if sim is None:
            raise NotFound(f"no SIM with {what}")
        return sim


def list_sims(
    engine: Engine, *, state: str | None = None, kind: str | None = None,
    batch: str | None = None, after: str | None = None, limit: int = 100,
) -> list[Sim]:
    if state is not None and state not in SIM_LIFECYCLE.states:
        raise InvalidInput("state", "unknown SIM state", value=state,
                           expected=", ".join(sorted(SIM_LIFECYCLE.states)))
    # Each equality filter is written as a closed range (`x >= v AND x <= v`) and the page is
    # ordered by the filtered columns, then the ICCID. Why: PostgreSQL drops a column fixed by
    # `=` from the sort order, so ORDER BY state, iccid becomes ORDER BY iccid, which the
    # primary key also yields; assuming matching rows are spread evenly, it then prices a
    # primary-key walk with a filter as cheap, and walks past millions of sold or other-kind
    # SIMs that sit together. A range keeps the column in the order, which only the index
    # that starts with it (ix_sim_state_iccid, ix_sim_kind_iccid, ix_sim_state_kind_iccid,
    # ix_sim_batch_iccid) can yield; the keyset bound on iccid still positions the scan (a
    # B-tree scan starts at (v, after) when the bound before it is inclusive). SQLite plans
    # '=' with ORDER BY on the same index correctly, and a range would stop it using the ICCID
    # bound, so it keeps '='.
    # With a batch, the batch's index leads and state and kind are plain filters within it.
    stmt = select(Sim)
    filters: list[tuple[Any, str | int]] = []
    with read_session(engine) as s:
        if batch:
            filters.append((col(Sim.batch_id), batch_id(s, batch)))
        for column, wanted in ((col(Sim.state), state), (col(Sim.kind), kind)):
            if wanted and batch:
                stmt = stmt.where(column == wanted)
            elif wanted:
                filters.append((column, wanted))
        for column, value in filters:
            if is_sqlite(engine):  # SQLite bounds an index scan by one range only: keep '='
                stmt = stmt.where(column == value)
            else:
                stmt = stmt.where(column >= value, column <= value)
        if after:
            stmt = stmt.where(col(Sim.iccid) > after)
        order = [column for column, _ in filters]
        return list(s.execute(stmt.order_by(*order, col(Sim.iccid)).limit(limit)).scalars())


@dataclass(frozen=True)
class Summary:
    total: int
    by_kind_state: dict[tuple[str, str], int]
    batches: int
    ranges: list[tuple[str, str, int, int]]  # name, kind, used, size
    msisdns: dict[str, int]


def summary(engine: Engine) -> Summary:
    """SIMs by kind and state, batches, range use and the MSISDN pool. On PostgreSQL the SIM
    counts come from `sim_state_count`, kept exact by triggers in every transaction that writes
    `sim` (migration 0020), so this reads a few hundred rows whatever the inventory's size; on
    SQLite they are counted from the (state, kind, iccid) index."""
    with read_session(engine) as s:
        if is_sqlite(engine):
            rows = s.execute(select(col(Sim.kind), col(Sim.state), func.count())
                             .group_by(col(Sim.kind), col(Sim.state))).all()
        else:
            total = func.sum(col(SimStateCount.n))
            rows = s.execute(select(col(SimStateCount.kind), col(SimStateCount.state), total)
                             .group_by(col(SimStateCount.kind), col(SimStateCount.state))
                             .having(total != 0)).all()
        batches = s.execute(select(func.count()).select_from(Batch)).scalar_one()
        ranges = [(r.name, r.kind, r.next_offset, len(range_of(r)))
                  for r in s.execute(select(NumberRange).order_by(col(NumberRange.id))).scalars()]
    by = {(k, st): int(n) for k, st, n in rows}
    return Summary(sum(by.values()), by, int(batches), ranges, counts(engine))


# --- lifecycle operations -----------------------------------------------------------------------


def allocate(
    engine: Engine, subscriber_ref: str, *, actor: str, kind: str = "physical",
    form_factor: str | None = None, batch: str | None = None,
) -> Sim:
    """Hand the next in-stock SIM (optionally of a form factor or batch) to `subscriber_ref`.
    Safe under concurrency: no SIM is handed out twice."""
    if not subscriber_ref or len(subscriber_ref) > 128:
        raise InvalidInput("subscriber_ref", "empty or longer than 128 characters",
                           expected="1..128 characters")
    with connection_transaction(engine) as s:
        where: dict[str, Any] = {"kind": kind}
        if form_factor:
            where["form_factor"] = form_factor
        if batch:
            where["batch_id"] = batch_id(s, batch)
        sim = claim_transition(s, SimState.IN_STOCK, SimState.ALLOCATED, actor=actor,
                               where=where, changes={"subscriber_ref": subscriber_ref},
                               details={"subscriber_ref": subscriber_ref})
        if sim is None:
            wanted = " ".join(x for x in (kind, form_factor or "", f"batch {batch}" if batch
                                          else "") if x)
            log.info("sim.allocate.none_in_stock", kind=kind, form_factor=form_factor,
                        batch=batch)
            raise NoSimAvailable(f"no {wanted} SIM in stock")
    log.info("sim.allocated", iccid=sim.iccid, subscriber_ref=subscriber_ref)
    return sim  # type: ignore[no-any-return]


def _transition(engine: Engine, iccid: str, target: str, *, actor: str,
                reason: str | None = None, expected_version: int | None = None,
                **changes: Any) -> Sim:
    iccid = Iccid.parse(iccid).digits
    with transaction(engine) as s:
        sim = _sim_for_update(s, iccid)
        _check_version(sim, expected_version)
        return apply_transition(s, sim, target, actor=actor, reason=reason, changes=changes)


def _check_version(sim: Sim, expected: int | None) -> None:
    if expected is not None and sim.version != expected:
        raise StaleVersion(f"sim {sim.iccid}: version is {sim.version}, not {expected}")


def activate(engine: Engine, iccid: str, *, actor: str, msisdn: str | None = None,
             expected_version: int | None = None) -> Sim:
    """allocated → active; with `msisdn` ("auto" for the next available) the number is
    assigned in the same transaction."""
    iccid = Iccid.parse(iccid).digits
    with transaction(engine) as s:
        sim = _sim_for_update(s, iccid)
        _check_version(sim, expected_version)
        check_transition(SIM_LIFECYCLE, iccid, sim.state, SimState.ACTIVE)
        changes: dict[str, Any] = {}
        if msisdn is not None:
            if sim.msisdn:
                raise Conflict(f"sim {iccid} already has MSISDN {sim.msisdn}")
            changes["msisdn"] = assign_in_session(s, sim.iccid, msisdn, actor=actor)
        return apply_transition(s, sim, SimState.ACTIVE, actor=actor, changes=changes,
                                details={"msisdn": changes["msisdn"]} if changes else None)


def suspend(engine: Engine, iccid: str, *, actor: str, reason: str | None = None,
            expected_version: int | None = None) -> Sim:
    return _transition(engine, iccid, SimState.SUSPENDED, actor=actor, reason=reason,
                       expected_version=expected_version)


def resume(engine: Engine, iccid: str, *, actor: str,
           expected_version: int | None = None) -> Sim:
    iccid = Iccid.parse(iccid).digits
    with transaction(engine) as s:
        sim = _sim_for_update(s, iccid)
        _check_version(sim, expected_version)
        # The suspension's reason no longer applies.
        return apply_transition(s, sim, SimState.ACTIVE, actor=actor, changes={"reason": None})


def release(engine: Engine, iccid: str, *, actor: str) -> Sim:
    """allocated → in_stock: an allocation not activated is handed back."""
    return _transition(engine, iccid, SimState.IN_STOCK, actor=actor, subscriber_ref=None)


def _release_msisdn(s: Session, sim: Sim, *, actor: str, quarantine_days: int) -> None:
    if not sim.msisdn:
        return
    entry = s.execute(select(MsisdnEntry).where(col(MsisdnEntry.msisdn) == sim.msisdn)
                      .with_for_update()).scalar_one_or_none()
    if entry is not None and entry.state == MsisdnState.ASSIGNED:
        apply_transition(s, entry, MsisdnState.QUARANTINE, actor=actor, machine=MSISDN_LIFECYCLE,
                         changes={"iccid": None, "quarantine_until":
                                  utcnow() + timedelta(days=quarantine_days)},
                         details={"from_iccid": sim.iccid})


def terminate(engine: Engine, iccid: str, *, actor: str, reason: str,
              quarantine_days: int = 90, expected_version: int | None = None) -> Sim:
    """End the SIM's service. Its MSISDN goes to quarantine; the SIM keeps its IMSI until it
    is quarantined and recycled."""
    if not reason:
        raise InvalidInput("reason", "empty", expected="why the SIM is terminated")
    iccid = Iccid.parse(iccid).digits
    with transaction(engine) as s:
        sim = _sim_for_update(s, iccid)
        _check_version(sim, expected_version)
        check_transition(SIM_LIFECYCLE, iccid, sim.state, SimState.TERMINATED)
        _release_msisdn(s, sim, actor=actor, quarantine_days=quarantine_days)
        return apply_transition(s, sim, SimState.TERMINATED, actor=actor, reason=reason,
                                changes={"msisdn": None})


def swap(engine: Engine, old_iccid: str, *, actor: str, new_iccid: str | None = None,
         reason: str = "swapped", expected_version: int | None = None,
         resume: bool = False) -> tuple[Sim, Sim]:
    """SIM swap in one transaction: the new SIM (given, or the next in stock of the old one's
    kind) takes over the subscriber reference and the MSISDN, and the subscription's state —
    active, or suspended (with its reason) when the old SIM was, unless `resume` resumes it
    with the swap (recorded); the old one is terminated with reason `swapped`.
    `expected_version` is the old SIM's."""
    old_iccid = Iccid.parse(old_iccid).digits
    with transaction(engine) as s:
        old = _sim_for_update(s, old_iccid)
        _check_version(old, expected_version)
        if old.state not in (SimState.ACTIVE, SimState.SUSPENDED, SimState.ALLOCATED):
            raise Conflict(f"sim {old_iccid} is {old.state}: only an allocated, active or "
                           "suspended SIM can be swapped")
        if new_iccid is not None:
            new = _sim_for_update(s, Iccid.parse(new_iccid).digits)
            if new.iccid == old.iccid:
                raise InvalidInput("new_iccid", "is the old SIM itself", value=new_iccid)
        else:
            found = s.execute(
                select(Sim).where(col(Sim.state) == SimState.IN_STOCK, col(Sim.kind) == old.kind)
                .order_by(col(Sim.iccid)).limit(1).with_for_update(skip_locked=True)
            ).scalar_one_or_none()
            if found is None:
                raise NoSimAvailable(f"no {old.kind} SIM in stock to swap to")
            new = found
        check_transition(SIM_LIFECYCLE, new.iccid, new.state, SimState.ALLOCATED)
        msisdn, ref = old.msisdn, old.subscriber_ref
        suspended, suspension = old.state == SimState.SUSPENDED, old.reason
        takeover = SimState.SUSPENDED if suspended and not resume else SimState.ACTIVE
        apply_transition(s, old, SimState.TERMINATED, actor=actor, reason=reason,
                         changes={"msisdn": None}, details={"swapped_to": new.iccid})
        s.flush()
        apply_transition(s, new, SimState.ALLOCATED, actor=actor,
                         changes={"subscriber_ref": ref}, details={"swapped_from": old.iccid})
        changes: dict[str, Any] = {"msisdn": msisdn}
        if takeover == SimState.SUSPENDED:
            changes["reason"] = suspension
        resumed = suspended and resume
        apply_transition(s, new, takeover, actor=actor, machine=SIM_SWAP_TAKEOVER,
                         changes=changes,
                         details={"swapped_from": old.iccid,
                                  **({"resumed_with_swap": True} if resumed else {})})
        if msisdn:
            s.execute(update(MsisdnEntry).where(col(MsisdnEntry.msisdn) == msisdn)
                      .values(iccid=new.iccid, version=MsisdnEntry.version + 1))
        record = {"old": old.iccid, "new": new.iccid, "subscriber_ref": ref, "msisdn": msisdn,
                  "new_state": str(takeover), "resumed": resumed}
        audit.append(s, actor=actor, action="sim.swap", subject_type="sim", subject_id=old.iccid,
                     details=record, outbox=audit.Outbox("sim.swapped", "sim", old.iccid, record))
    log.info("sim.swapped", old=old.iccid, new=new.iccid, subscriber_ref=ref)
    return old, new


def quarantine(engine: Engine, iccid: str, *, actor: str, days: int = 90) -> Sim:
    """terminated → quarantine: the IMSI rests for `days` before it can be recycled."""
    return _transition(engine, iccid, SimState.QUARANTINE, actor=actor,
                       quarantine_until=utcnow() + timedelta(days=days))


def recycle(engine: Engine, iccid: str, *, actor: str, now: datetime | None = None) -> Sim:
    """quarantine → recycled once the quarantine is over: the IMSI joins the free pool. The card
    itself is never reused."""
    iccid = Iccid.parse(iccid).digits
    now = now or utcnow()
    with transaction(engine) as s:
        sim = _sim_for_update(s, iccid)
        check_transition(SIM_LIFECYCLE, iccid, sim.state, SimState.RECYCLED)
        if sim.quarantine_until is not None and sim.quarantine_until > now:
            raise QuarantineNotOver(
                f"sim {iccid} is in quarantine until {sim.quarantine_until.isoformat()}"
            )
        imsi = sim.imsi
        apply_transition(s, sim, SimState.RECYCLED, actor=actor,
                         changes={"imsi": None, "former_imsi": imsi},
                         details={"imsi_released": imsi})
        if imsi:
            s.flush()
            s.add(FreeImsi(imsi=imsi, released_at=now))
        return sim


def recycle_due(engine: Engine, *, actor: str, now: datetime | None = None) -> int:
    """Recycle every SIM and MSISDN whose quarantine is over; returns how many were recycled."""
    now = now or utcnow()
    with read_session(engine) as s:
        due = list(s.execute(select(col(Sim.iccid)).where(
            col(Sim.state) == SimState.QUARANTINE, col(Sim.quarantine_until) <= now)).scalars())
    for iccid in due:
        recycle(engine, iccid, actor=actor, now=now)
    return len(due) + recycle_due_msisdns(engine, actor=actor, now=now)
