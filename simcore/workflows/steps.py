"""Steps the workflows share: the SIM row under lock, HSM keys ready, the HLR and the SM-DP+
(ES2+ order and cancel), and the outbox notification.

Peer steps are idempotent at the peer: the HLR port's calls create-or-update, set, or delete
what may already be gone; the SM-DP+ steps read the mirrored profile state (sim.profile_state,
which the SmdpPort keeps) and call only what is still to do — DownloadOrder while the profile is
available, ConfirmOrder while it is allocated or linked, nothing once it is released.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, select, update
from sqlmodel import Session, col

from hsm_sim.hsm import Hsm
from simcore import events
from simcore.db import core, direct, read_session
from simcore.errors import NotFound
from simcore.keys import generate_keys
from simcore.lifecycle import PROFILE_LIFECYCLE, ProfileState, apply_transition
from simcore.models import Sim, from_row, utcnow
from simcore.models_api import EsimOrder
from simcore.ports.hlr import HlrPort, HlrSubscriber, HlrUnavailable
from simcore.smdp.port import SmdpPort, SmdpRefused, SmdpUnavailable
from simcore.workflows.engine import Run, Step, StepFailed

# Failures worth a retry in every workflow: the peers down or slow.
TRANSIENT: tuple[type[BaseException], ...] = (HlrUnavailable, SmdpUnavailable, TimeoutError)
SIM = Sim.__table__  # type: ignore[attr-defined]


@dataclass
class Deps:
    """The peers a workflow step talks to."""

    engine: Engine
    hlr: HlrPort
    smdp: SmdpPort | None = None
    # To make keys for a SIM that has none (HSM keys ready): the HSM, or how to open it.
    hsm: Hsm | Callable[[], Hsm] | None = None
    quarantine_days: int = 90

    def get_hsm(self) -> Hsm | None:
        if callable(self.hsm) and not isinstance(self.hsm, Hsm):
            self.hsm = self.hsm()
        return self.hsm


def sim_for_update(s: Session, iccid: str) -> Sim:
    # Core and a plain object (models.from_row): a third of the CPU of an ORM load.
    row = core(s).execute(_SIM_FOR_UPDATE, {"iccid": iccid}).first()
    if row is None:
        raise StepFailed(f"no SIM with ICCID {iccid}")
    return from_row(Sim, row._mapping)


# Session.info key: the SIM rows this transaction has locked and written, as now stored.
_LOCKED = "simsmith.locked_sims"


def remember_locked(s: Session, sim: Sim) -> None:
    """`sim` is locked by this transaction and holds its row as now stored: store steps
    chained after it in the same transaction read it from here (locked_sim), not again. Whoever
    writes the row later in the transaction updates the object (or remembers a new one)."""
    s.info.setdefault(_LOCKED, {})[sim.iccid] = sim


def locked_sim(s: Session, iccid: str) -> Sim:
    """The SIM as remembered by this transaction, else read under lock (sim_for_update)."""
    sim = s.info.get(_LOCKED, {}).get(iccid)
    return sim if sim is not None else sim_for_update(s, iccid)


def read_sim(engine: Engine, iccid: str) -> Sim:
    # One statement in autocommit (db.DirectStatement): a peer step's read, one round trip on
    # PostgreSQL instead of BEGIN, SELECT and COMMIT.
    rows = direct(engine, _SIM).rows(iccid=iccid)
    if not rows:
        raise StepFailed(f"no SIM with ICCID {iccid}")
    return from_row(Sim, dict(zip(_SIM_COLUMNS, rows[0], strict=True)))


_SIM = select(SIM).where(SIM.c.iccid == bindparam("iccid"))
_SIM_COLUMNS = tuple(_SIM.selected_columns.keys())
_SIM_FOR_UPDATE = _SIM.with_for_update()


# --- HSM keys ready ---------------------------------------------------------------------------


def keys_ready(key: str) -> Step:
    """The SIM `data[key]` has its Ki and OPc in the store as HSM references; made by the HSM
    if it has none (simcore.keys.generate_keys skips a SIM that has them)."""

    def call(run: Run) -> None:
        deps: Deps = run.deps
        iccid = run.data[key]
        sim = read_sim(deps.engine, iccid)
        if sim.ki_ref and sim.opc_ref:
            return
        hsm = deps.get_hsm()
        if hsm is None:
            raise StepFailed(f"SIM {iccid} has no Ki/OPc and no HSM is configured to make them")
        generate_keys(deps.engine, hsm, actor=run.actor, iccids=[iccid])
        sim = read_sim(deps.engine, iccid)
        if not (sim.ki_ref and sim.opc_ref):
            raise StepFailed(f"SIM {iccid}: the HSM made no Ki/OPc")

    def already(s: Session, run: Run) -> bool:
        r = s.info.get(_LOCKED, {}).get(run.data[key])  # reserved in this transaction
        if r is None:
            r = core(s).execute(_KEYS, {"iccid": run.data[key]}).first()
        return r is not None and bool(r.ki_ref and r.opc_ref)

    return Step(f"keys{_suffix(key)}", call=call, already=already)


_KEYS = select(SIM.c.ki_ref, SIM.c.opc_ref).where(SIM.c.iccid == bindparam("iccid"))


def _suffix(key: str) -> str:
    return "" if key == "iccid" else "_" + key.removesuffix("_iccid")


# --- HLR --------------------------------------------------------------------------------------


def hlr_subscriber(engine: Engine, iccid: str, msisdn: str | None, *,
                   allowed: bool = True) -> HlrSubscriber:
    sim = read_sim(engine, iccid)
    if not (sim.imsi and sim.ki_ref and sim.opc_ref):
        raise StepFailed(f"SIM {iccid} has no IMSI or keys to provision")
    return HlrSubscriber(sim.iccid, sim.imsi, msisdn, sim.ki_ref, sim.opc_ref, allowed)


def hlr_provision(key: str, *, with_msisdn: bool, name: str = "hlr",
                  allowed: Callable[[Run], bool] | None = None) -> Step:
    """Create (or update) the subscriber of SIM `data[key]`, with network access as
    `allowed(run)` says (default allowed; barred: provisioned barred, never a moment with
    access); undone by removing it."""

    def call(run: Run) -> Mapping[str, Any]:
        deps: Deps = run.deps
        msisdn = run.data.get("msisdn") if with_msisdn else None
        sub = hlr_subscriber(deps.engine, run.data[key], msisdn,
                             allowed=True if allowed is None else allowed(run))
        deps.hlr.provision(sub)
        return {f"{key.removesuffix('iccid')}imsi": sub.imsi}

    def undo(run: Run) -> None:
        imsi = run.data.get(f"{key.removesuffix('iccid')}imsi")
        if imsi:
            run.deps.hlr.remove(imsi)

    return Step(name, call=call, undo=undo)


# --- SM-DP+ (ES2+) ----------------------------------------------------------------------------

# CancelOrder refusals that mean the SM-DP+ holds no order for the profile (unknown, or in a
# state with nothing to cancel): the compensation has nothing left to do.
NOTHING_TO_CANCEL = frozenset({"3.9", "3.5"})
_ORDERED = frozenset({ProfileState.ALLOCATED, ProfileState.LINKED})
_CANCELLABLE = frozenset({ProfileState.ALLOCATED, ProfileState.LINKED, ProfileState.CONFIRMED,
                          ProfileState.RELEASED})


def _smdp(run: Run) -> SmdpPort:
    port = run.deps.smdp
    if port is None:
        raise StepFailed("no SM-DP+ configured for eSIM workflows")
    return port  # type: ignore[no-any-return]


def smdp_order(key: str, *, name: str = "smdp_order",
               when: Callable[[Run], bool] | None = None) -> Step:
    """ES2+ DownloadOrder + ConfirmOrder (release) for the profile `data[key]`, with the
    Matching ID drawn when it was reserved (`data['matching_id']`). The order row is written
    with the step's record; undone by CancelOrder (Available) and the order marked failed."""

    def call(run: Run) -> Mapping[str, Any]:
        port, deps = _smdp(run), run.deps
        iccid, eid = run.data[key], run.input.get("eid")
        state = read_sim(deps.engine, iccid).profile_state
        if state == ProfileState.AVAILABLE:
            try:
                port.download_order(iccid=iccid, eid=eid)
            except SmdpRefused as e:
                # The profile is no longer available at the SM-DP+: this run's own earlier
                # DownloadOrder (killed before the mirror was written) or someone else's.
                if run.attempt == 1 or e.reason_code != "3.8":
                    raise StepFailed(str(e)) from e
            state = read_sim(deps.engine, iccid).profile_state
        address, matching_id = port.smdp_address, run.data["matching_id"]
        if state in _ORDERED or state == ProfileState.AVAILABLE:
            try:
                r = port.confirm_order(iccid=iccid, matching_id=matching_id, eid=eid,
                                       release=True)
            except SmdpRefused as e:
                raise StepFailed(str(e)) from e
            except SmdpUnavailable as e:
                # The SM-DP+ holds the order placed by DownloadOrder: whatever became of
                # ConfirmOrder, the step has had an effect there (undone by CancelOrder).
                raise SmdpUnavailable(str(e), maybe_executed=True) from e
            address, matching_id = r.smdp_address, r.matching_id
        return {"smdp_address": address, "matching_id": matching_id}

    def commit(s: Session, run: Run) -> None:
        now = utcnow()
        s.add(EsimOrder(iccid=run.data[key], external_ref=run.data.get("subscriber_ref") or "-",
                        eid=run.input.get("eid"), matching_id=run.data["matching_id"],
                        smdp_address=run.data["smdp_address"], status="active",
                        created_at=now, updated_at=now))

    def undo(run: Run) -> None:
        cancel_profile(run, run.data[key], run.data.get("matching_id"), "available")

    def undo_commit(s: Session, run: Run) -> None:
        s.execute(update(EsimOrder).where(col(EsimOrder.iccid) == run.data[key],
                                          col(EsimOrder.status) == "active")
                  .values(status="failed", updated_at=utcnow()))

    return Step(name, call=call, commit=commit, undo=undo, undo_commit=undo_commit, when=when)


def cancel_profile(run: Run, iccid: str, matching_id: str | None, final: str) -> bool:
    """ES2+ CancelOrder for a profile the SM-DP+ holds an order for; False when there was
    nothing to cancel (still available, or past download: ES2+ cannot take it back)."""
    port = _smdp(run)
    state = read_sim(run.deps.engine, iccid).profile_state
    if state not in _CANCELLABLE:
        return False
    try:
        port.cancel_order(iccid=iccid, matching_id=matching_id, eid=run.input.get("eid"),
                          final_status=final)  # type: ignore[arg-type]
    except SmdpRefused as e:
        if e.reason_code not in NOTHING_TO_CANCEL:
            raise StepFailed(str(e)) from e
        return False
    return True


# Where a profile ends when its subscription does. Past download (downloaded, installed,
# enabled, disabled) it may be on a device: ES2+ cannot cancel it there (SGP.22 v2 §5.3.3
# CancelOrder ends an order before the download) and no ES2+ function deletes it from the
# eUICC (deletion is the user's, on the device, ES10c; the SM-DP+ only hears of it afterwards
# through the delete notification). So the SM-DP+ retires it (unavailable: never ordered or
# served again) and the profile stays on the device until the user deletes it.
_ON_DEVICE = frozenset({ProfileState.DOWNLOADED, ProfileState.INSTALLED, ProfileState.ENABLED,
                        ProfileState.DISABLED})
_RETIRE = frozenset({ProfileState.AVAILABLE, ProfileState.ERROR, *_ON_DEVICE})


def _smdp_is_ours(port: SmdpPort | None) -> bool:
    """Is the SM-DP+ simsmith's own on this store (in process, or its ES2+ endpoint on the same
    store)? Then retiring the profile in the store retires it at the SM-DP+."""
    from simcore.smdp.in_process import InProcessSmdp

    return isinstance(port, InProcessSmdp) or bool(getattr(port, "shared_store", False))


def _order_matching_id(engine: Engine, iccid: str) -> str | None:
    with read_session(engine) as s:
        return s.execute(select(col(EsimOrder.matching_id)).where(col(EsimOrder.iccid) == iccid)
                         .order_by(col(EsimOrder.id).desc()).limit(1)).scalars().first()


def smdp_retire(key: str, name: str) -> Step:
    """End the eSIM profile `data[key]` at the SM-DP+ for good: an open order is cancelled
    over ES2+ (CancelOrder, Unavailable); a profile past download — perhaps on a device — or
    never ordered is marked unavailable, so it is never ordered or downloaded again, and its
    order closed. The result says plainly when the profile remains on the device (the
    device's delete notification later moves it to deleted). Forward only."""

    def call(run: Run) -> Mapping[str, Any]:
        iccid = run.data[key]
        matching_id = _order_matching_id(run.deps.engine, iccid)
        return {f"{name}_cancelled": cancel_profile(run, iccid, matching_id, "unavailable")}

    def commit(s: Session, run: Run) -> Mapping[str, Any]:
        sim = sim_for_update(s, run.data[key])
        before = sim.profile_state
        on_device = before in _ON_DEVICE
        if before in _RETIRE:
            apply_transition(s, sim, ProfileState.UNAVAILABLE, actor=run.actor,
                             machine=PROFILE_LIFECYCLE,
                             details={"retired": True, "workflow_id": run.id,
                                      "remains_on_device": on_device, "eid": sim.eid})
        s.execute(update(EsimOrder).where(col(EsimOrder.iccid) == sim.iccid,
                                          col(EsimOrder.status).in_(("active", "released",
                                                                     "pending")))
                  .values(status="cancelled", updated_at=utcnow()))
        out: dict[str, Any] = {f"{name}_profile_state": before,
                               f"{name}_remains_on_device": on_device}
        if on_device:
            where = f"the device (EID {sim.eid})" if sim.eid else "the device"
            notice = (f"The eSIM profile {sim.iccid} remains on {where} until the user deletes "
                      "it: SGP.22 v2 gives the SM-DP+ no way to delete a downloaded profile. It "
                      "can no longer attach (removed from the HLR) and will never be "
                      "downloaded again (unavailable at the SM-DP+); the device's delete "
                      "notification will mark it deleted.")
            if not _smdp_is_ours(run.deps.smdp):
                notice += (" The external SM-DP+ was not told (ES2+ has no function for a "
                           "downloaded profile): retire it there too.")
            out["notice"] = notice
        return out

    return Step(name, call=call, commit=commit, when=is_esim(key))


def is_esim(key: str = "iccid") -> Callable[[Run], bool]:
    def check(run: Run) -> bool:
        return bool(run.data.get(f"{key.removesuffix('iccid')}kind") == "esim")
    return check


# --- notify -----------------------------------------------------------------------------------


def notify(topic: str, fields: tuple[str, ...]) -> Step:
    """The outcome on the outbox (webhooks, NATS), committed with the step's record."""

    def commit(s: Session, run: Run) -> None:
        payload = {"workflow_id": run.id, **{f: run.data.get(f) for f in fields}}
        subject = str(run.data.get("iccid") or run.data.get("new_iccid") or run.id)
        events.emit(s, topic, "sim", subject, payload)

    return Step("notify", commit=commit)


def latest_order_status(engine: Engine, iccid: str) -> str:
    with read_session(engine) as s:
        st = s.execute(select(col(EsimOrder.status)).where(col(EsimOrder.iccid) == iccid)
                       .order_by(col(EsimOrder.id).desc()).limit(1)).scalar_one_or_none()
    if st is None:
        raise NotFound(f"no eSIM order for {iccid}")
    return str(st)
