"""The activation's siblings on the same engine (issue 18 item 1; design §10):

- suspend:     check active → HLR access barred → mark suspended → notify
- resume:      check suspended → HLR access allowed → mark active → notify
- termination: check → HLR entry removed → (eSIM) profile retired at the SM-DP+ (an open
               order cancelled, Unavailable; a downloaded profile marked unavailable — it stays
               on the device until the user deletes it, and the run says so) → terminated
               (MSISDN to quarantine) → SIM to quarantine → notify
- swap:        check, new SIM reserved → its keys ready → new SIM in the HLR → (eSIM) new
               profile ordered → MSISDN moved at the HLR → old SIM removed from the HLR →
               (eSIM) old profile cancelled → store swap (old terminated, new active with the
               MSISDN) → notify

The subscription's state moves with a swap: the new SIM of a suspended SIM is provisioned
barred at the HLR (barred before it holds keys: never a moment it could attach) and takes over
suspended, with the suspension's reason — unless the request asks to resume with the swap
(`resume`: then it is provisioned allowed and takes over active; recorded in the run's input,
the swap's audit record and the new SIM's transition).

Barring and allowing undo each other; termination and a swap past the old SIM's removal go
forward only (a removed subscriber is not put back: the retries carry them through).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from esim.activation_code import generate_matching_id
from simcore import audit
from simcore.lifecycle import (
    MSISDN_LIFECYCLE,
    SIM_SWAP_TAKEOVER,
    MsisdnState,
    ProfileState,
    SimState,
    apply_transition,
)
from simcore.models import MsisdnEntry, Sim, utcnow
from simcore.workflows.engine import REGISTRY, Definition, Run, Step, StepFailed
from simcore.workflows.steps import (
    TRANSIENT,
    Deps,
    hlr_provision,
    keys_ready,
    notify,
    sim_for_update,
    smdp_order,
    smdp_retire,
)

LIVE = (SimState.ACTIVE, SimState.SUSPENDED)


def _check(states: tuple[str, ...]) -> Step:
    def commit(s: Session, run: Run) -> Mapping[str, Any]:
        sim = sim_for_update(s, run.input["iccid"])
        if sim.state not in states:
            raise StepFailed(f"SIM {sim.iccid} is {sim.state}, not {' or '.join(states)}")
        if not sim.imsi:
            raise StepFailed(f"SIM {sim.iccid} has no IMSI")
        return {"iccid": sim.iccid, "imsi": sim.imsi, "kind": sim.kind, "msisdn": sim.msisdn,
                "subscriber_ref": sim.subscriber_ref}
    return Step("check", commit=commit)


def _access(allowed: bool) -> Step:
    def call(run: Run) -> None:
        run.deps.hlr.set_access(run.data["imsi"], allowed=allowed)

    def undo(run: Run) -> None:
        run.deps.hlr.set_access(run.data["imsi"], allowed=not allowed)

    return Step("hlr_allow" if allowed else "hlr_bar", call=call, undo=undo)


def _mark(target: str, *, reason: bool) -> Step:
    def commit(s: Session, run: Run) -> None:
        sim = sim_for_update(s, run.data["iccid"])
        apply_transition(s, sim, target, actor=run.actor,
                         reason=run.input.get("reason") if reason else None,
                         changes={} if reason else {"reason": None},
                         details={"workflow_id": run.id})
    return Step(str(target), commit=commit)


SUSPEND = REGISTRY.add(Definition("suspend", (
    _check((SimState.ACTIVE,)), _access(False), _mark(SimState.SUSPENDED, reason=True),
    notify("sim.suspended", ("iccid", "msisdn", "subscriber_ref")),
), transient=TRANSIENT))

RESUME = REGISTRY.add(Definition("resume", (
    _check((SimState.SUSPENDED,)), _access(True), _mark(SimState.ACTIVE, reason=False),
    notify("sim.resumed", ("iccid", "msisdn", "subscriber_ref")),
), transient=TRANSIENT))


# --- termination ------------------------------------------------------------------------------


def _hlr_remove(key: str, name: str) -> Step:
    def call(run: Run) -> None:
        run.deps.hlr.remove(run.data[key])
    return Step(name, call=call)


def _release_number(s: Session, run: Run, sim: Sim) -> None:
    if not sim.msisdn:
        return
    deps: Deps = run.deps
    entry = s.execute(select(MsisdnEntry).where(col(MsisdnEntry.msisdn) == sim.msisdn)
                      .with_for_update()).scalars().first()
    if entry is not None and entry.state == MsisdnState.ASSIGNED:
        apply_transition(s, entry, MsisdnState.QUARANTINE, actor=run.actor,
                         machine=MSISDN_LIFECYCLE,
                         changes={"iccid": None, "quarantine_until":
                                  utcnow() + timedelta(days=deps.quarantine_days)},
                         details={"from_iccid": sim.iccid, "workflow_id": run.id})


def _terminate(s: Session, run: Run) -> None:
    sim = sim_for_update(s, run.data["iccid"])
    if sim.state == SimState.TERMINATED:
        return
    _release_number(s, run, sim)
    s.flush()
    apply_transition(s, sim, SimState.TERMINATED, actor=run.actor,
                     reason=run.input.get("reason") or "terminated", changes={"msisdn": None},
                     details={"workflow_id": run.id})


def _quarantine(s: Session, run: Run) -> None:
    sim = sim_for_update(s, run.data["iccid"])
    apply_transition(s, sim, SimState.QUARANTINE, actor=run.actor,
                     changes={"quarantine_until":
                              utcnow() + timedelta(days=run.deps.quarantine_days)},
                     details={"workflow_id": run.id})


TERMINATION = REGISTRY.add(Definition("termination", (
    _check((SimState.ACTIVE, SimState.SUSPENDED, SimState.ALLOCATED)),
    _hlr_remove("imsi", "hlr_remove"),
    smdp_retire("iccid", "smdp_cancel"),
    Step("terminate", commit=_terminate),
    Step("quarantine", commit=_quarantine),
    notify("sim.terminated", ("iccid", "msisdn", "subscriber_ref")),
), transient=TRANSIENT, cancellable=False))


# --- swap -------------------------------------------------------------------------------------


def _swap_check(s: Session, run: Run) -> Mapping[str, Any]:
    old = sim_for_update(s, run.input["iccid"])
    if old.state not in LIVE:
        raise StepFailed(f"SIM {old.iccid} is {old.state}: only an active or suspended SIM "
                         "is swapped")
    if not old.imsi:
        raise StepFailed(f"SIM {old.iccid} has no IMSI")
    if run.input.get("new_iccid"):
        new = sim_for_update(s, run.input["new_iccid"])
        if new.iccid == old.iccid:
            raise StepFailed("the new SIM is the old one")
    else:
        stmt = select(Sim).where(col(Sim.state) == SimState.IN_STOCK, col(Sim.kind) == old.kind)
        if old.kind == "esim":
            stmt = stmt.where(col(Sim.profile_state) == ProfileState.AVAILABLE)
        found = s.execute(stmt.order_by(col(Sim.iccid)).limit(1)
                          .with_for_update(skip_locked=True)).scalars().first()
        if found is None:
            raise StepFailed(f"no {old.kind} SIM in stock to swap to")
        new = found
    if new.state != SimState.IN_STOCK:
        raise StepFailed(f"SIM {new.iccid} is {new.state}, not in stock")
    apply_transition(s, new, SimState.ALLOCATED, actor=run.actor,
                     changes={"subscriber_ref": old.subscriber_ref},
                     details={"swapped_from": old.iccid, "workflow_id": run.id})
    suspended = old.state == SimState.SUSPENDED
    resumed = suspended and bool(run.input.get("resume"))
    out = {"old_iccid": old.iccid, "old_imsi": old.imsi, "old_kind": old.kind,
           "msisdn": old.msisdn, "subscriber_ref": old.subscriber_ref,
           "new_iccid": new.iccid, "new_kind": new.kind, "iccid": old.iccid,
           # What the new SIM takes over as: the subscription's state, unless resumed.
           "new_state": str(SimState.SUSPENDED if suspended and not resumed
                            else SimState.ACTIVE),
           "resumed": resumed, "suspension_reason": old.reason if suspended else None}
    if new.kind == "esim":
        out["matching_id"] = generate_matching_id()
    return out


def _swap_unreserve(s: Session, run: Run) -> None:
    new = sim_for_update(s, run.data["new_iccid"])
    if new.state == SimState.ALLOCATED:
        apply_transition(s, new, SimState.IN_STOCK, actor=run.actor,
                         changes={"subscriber_ref": None},
                         details={"workflow_id": run.id, "compensation": True})


def _move_number(run: Run, src: str, dst: str) -> None:
    msisdn = run.data.get("msisdn")
    if not msisdn:
        return
    hlr = run.deps.hlr
    hlr.set_msisdn(src, None)  # osmo-hlr keeps an MSISDN unique: off the old one first
    hlr.set_msisdn(dst, msisdn)


def _hlr_move(run: Run) -> None:
    _move_number(run, run.data["old_imsi"], run.data["new_imsi"])


def _hlr_move_back(run: Run) -> None:
    _move_number(run, run.data["new_imsi"], run.data["old_imsi"])


def _swap_commit(s: Session, run: Run) -> None:
    old = sim_for_update(s, run.data["old_iccid"])
    new = sim_for_update(s, run.data["new_iccid"])
    msisdn, ref = run.data.get("msisdn"), run.data.get("subscriber_ref")
    if old.state != SimState.TERMINATED:
        apply_transition(s, old, SimState.TERMINATED, actor=run.actor, reason="swapped",
                         changes={"msisdn": None},
                         details={"swapped_to": new.iccid, "workflow_id": run.id})
        s.flush()
    target, resumed = run.data.get("new_state", SimState.ACTIVE), bool(run.data.get("resumed"))
    changes: dict[str, Any] = {"msisdn": msisdn}
    if target == SimState.SUSPENDED:
        changes["reason"] = run.data.get("suspension_reason")
    apply_transition(s, new, target, actor=run.actor, machine=SIM_SWAP_TAKEOVER,
                     changes=changes,
                     details={"swapped_from": old.iccid, "workflow_id": run.id,
                              **({"resumed_with_swap": True} if resumed else {})})
    if msisdn:
        s.execute(update(MsisdnEntry).where(col(MsisdnEntry.msisdn) == msisdn)
                  .values(iccid=new.iccid, version=MsisdnEntry.version + 1))
    record = {"old": old.iccid, "new": new.iccid, "subscriber_ref": ref, "msisdn": msisdn,
              "workflow_id": run.id, "new_state": str(target), "resumed": resumed}
    audit.append(s, actor=run.actor, action="sim.swap", subject_type="sim",
                 subject_id=old.iccid, details=record,
                 outbox=audit.Outbox("sim.swapped", "sim", old.iccid, record))


def _new_kind(run: Run) -> bool:
    return bool(run.data.get("new_kind") == "esim")


SWAP = REGISTRY.add(Definition("swap", (
    Step("check", commit=_swap_check, undo_commit=_swap_unreserve),
    keys_ready("new_iccid"),
    hlr_provision("new_iccid", with_msisdn=False, name="hlr_new",
                  allowed=lambda run: run.data.get("new_state") != SimState.SUSPENDED),
    smdp_order("new_iccid", name="smdp_order_new", when=_new_kind),
    Step("hlr_move_msisdn", call=_hlr_move, undo=_hlr_move_back),
    _hlr_remove("old_imsi", "hlr_remove_old"),
    smdp_retire("old_iccid", "smdp_cancel_old"),
    Step("swap", commit=_swap_commit),
    notify("sim.swapped", ("old_iccid", "new_iccid", "msisdn", "subscriber_ref", "new_state",
                           "resumed")),
), transient=TRANSIENT))
