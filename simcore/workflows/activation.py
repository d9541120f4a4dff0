"""Activation as one durable workflow (issue 18 item 1; design §1 "provisioning", §10):

    validate → reserve a SIM or eSIM profile → assign an MSISDN → HSM keys ready →
    provision the HLR → (eSIM) order at the SM-DP+ over ES2+ → mark active → notify

Compensations, in reverse on a permanent failure: SM-DP+ order cancelled (CancelOrder,
Available), HLR entry removed, MSISDN released (to quarantine, due at once: it never served a
subscriber), SIM back to stock. Store steps commit with their own record (exactly once); peer
steps are idempotent at the peer (simcore.workflows.steps).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, update
from sqlmodel import Session, col, select

from esim.activation_code import generate_matching_id
from simcore.db import core
from simcore.errors import Conflict, InvalidInput, NotFound
from simcore.identifiers import Eid, Iccid, Msisdn
from simcore.inventory import SIM_KINDS
from simcore.lifecycle import (
    MSISDN_LIFECYCLE,
    SIM_LIFECYCLE,
    MsisdnState,
    ProfileState,
    SimState,
    apply_transition,
    claim_transition,
    transition_if,
)
from simcore.models import Batch, MsisdnEntry, Sim, utcnow
from simcore.msisdn_pool import assign_in_session
from simcore.workflows.engine import REGISTRY, Definition, Run, Step, StepFailed
from simcore.workflows.steps import (
    TRANSIENT,
    hlr_provision,
    is_esim,
    keys_ready,
    locked_sim,
    notify,
    remember_locked,
    sim_for_update,
    smdp_order,
)

KIND = "activation"


def check_input(data: Mapping[str, Any]) -> dict[str, Any]:
    """The activation request, checked and normalised (digits only); InvalidInput names the
    field."""
    allowed = {"subscriber_ref", "kind", "iccid", "msisdn", "eid", "batch", "form_factor"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidInput(unknown[0], "unknown field", expected=", ".join(sorted(allowed)))
    ref = data.get("subscriber_ref")
    if not isinstance(ref, str) or not 1 <= len(ref) <= 128:
        raise InvalidInput("subscriber_ref", "empty, not text or longer than 128 characters",
                           expected="1..128 characters")
    kind = data.get("kind") or "physical"
    if kind not in SIM_KINDS:
        raise InvalidInput("kind", "unknown SIM kind", value=str(kind),
                           expected=" or ".join(SIM_KINDS))
    out: dict[str, Any] = {"subscriber_ref": ref, "kind": kind}
    if data.get("iccid"):
        out["iccid"] = Iccid.parse(str(data["iccid"])).digits
    msisdn = data.get("msisdn", "auto")
    if msisdn is not None:
        out["msisdn"] = "auto" if msisdn == "auto" else Msisdn.parse(str(msisdn)).digits
    else:
        out["msisdn"] = None
    if data.get("eid"):
        if kind != "esim":
            raise InvalidInput("eid", "an EID belongs to an eSIM activation", expected="kind esim")
        out["eid"] = Eid.parse(str(data["eid"])).digits
    for name in ("batch", "form_factor"):
        if data.get(name):
            if not isinstance(data[name], str) or len(data[name]) > 64:
                raise InvalidInput(name, "not text of at most 64 characters")
            out[name] = data[name]
    return out


def _validate(run: Run) -> Mapping[str, Any]:
    try:
        checked = check_input(run.input)
    except InvalidInput as e:
        raise StepFailed(str(e)) from e
    return {"kind": checked["kind"], "subscriber_ref": checked["subscriber_ref"]}


def _reserve(s: Session, run: Run) -> Mapping[str, Any]:
    """in_stock → allocated for the subscriber: the SIM asked for, or the next in stock (for an
    eSIM, one whose profile is available at the SM-DP+)."""
    inp, ref = run.input, run.input["subscriber_ref"]
    where: dict[str, Any] = {"kind": inp["kind"]}
    if inp["kind"] == "esim":
        where["profile_state"] = ProfileState.AVAILABLE.value
    details = {"subscriber_ref": ref, "workflow_id": run.id}
    if inp.get("iccid"):
        sim = sim_for_update(s, inp["iccid"])
        wrong = [k for k, v in where.items() if getattr(sim, k) != v]
        if sim.state != SimState.IN_STOCK or wrong:
            raise StepFailed(f"SIM {sim.iccid} is {sim.state} ({sim.kind}, profile "
                             f"{sim.profile_state}): not an in-stock {inp['kind']} SIM")
        apply_transition(s, sim, SimState.ALLOCATED, actor=run.actor,
                         changes={"subscriber_ref": ref}, details=details)  # sim updated too
    else:
        if inp.get("form_factor"):
            where["form_factor"] = inp["form_factor"]
        if inp.get("batch"):
            b = s.execute(select(Batch.id).where(col(Batch.name) == inp["batch"])).first()
            if b is None:
                raise StepFailed(f"no batch named {inp['batch']!r}")
            where["batch_id"] = b[0]
        sim = claim_transition(s, SimState.IN_STOCK, SimState.ALLOCATED, actor=run.actor,
                               where=where, changes={"subscriber_ref": ref}, details=details)
        if sim is None:
            raise StepFailed(f"no {inp['kind']} SIM in stock")
    remember_locked(s, sim)
    out = {"iccid": sim.iccid, "imsi": sim.imsi}
    if inp["kind"] == "esim":
        out["matching_id"] = generate_matching_id()
    return out


def _unreserve(s: Session, run: Run) -> None:
    sim = sim_for_update(s, run.data["iccid"])
    if sim.state == SimState.ALLOCATED and sim.subscriber_ref == run.input["subscriber_ref"]:
        apply_transition(s, sim, SimState.IN_STOCK, actor=run.actor,
                         changes={"subscriber_ref": None},
                         details={"workflow_id": run.id, "compensation": True})


def _assign_msisdn(s: Session, run: Run) -> Mapping[str, Any]:
    sim = locked_sim(s, run.data["iccid"])  # reserved in this transaction: not read again
    if sim.msisdn:
        return {"msisdn": sim.msisdn}
    try:
        number = assign_in_session(s, sim.iccid, run.input["msisdn"], actor=run.actor)
    except (InvalidInput, NotFound, Conflict) as e:
        raise StepFailed(str(e)) from e
    now = utcnow()
    core(s).execute(_SET_MSISDN, {"k": sim.iccid, "m": number, "v": sim.version + 1, "t": now})
    sim.msisdn, sim.version, sim.updated_at = number, sim.version + 1, now
    remember_locked(s, sim)
    return {"msisdn": number}


_SIM = Sim.__table__  # type: ignore[attr-defined]
_SET_MSISDN = (update(_SIM).where(_SIM.c.iccid == bindparam("k"))
               .values(msisdn=bindparam("m"), version=bindparam("v"), updated_at=bindparam("t")))


def release_msisdn(s: Session, run: Run, iccid: str, number: str | None) -> None:
    """The number leaves the SIM into quarantine that ends now: it never served anyone, so
    the pool may hand it out again at its next recycling (simcore.msisdn_pool)."""
    if not number:
        return
    entry = s.execute(select(MsisdnEntry).where(col(MsisdnEntry.msisdn) == number)
                      .with_for_update()).scalars().first()
    if entry is not None and entry.state == MsisdnState.ASSIGNED and entry.iccid == iccid:
        apply_transition(s, entry, MsisdnState.QUARANTINE, actor=run.actor,
                         machine=MSISDN_LIFECYCLE,
                         changes={"iccid": None, "quarantine_until": utcnow()},
                         details={"from_iccid": iccid, "workflow_id": run.id,
                                  "compensation": True})
    s.execute(update(Sim).where(col(Sim.iccid) == iccid, col(Sim.msisdn) == number)
              .values(msisdn=None, version=Sim.version + 1, updated_at=utcnow()))


def _unassign_msisdn(s: Session, run: Run) -> None:
    release_msisdn(s, run, run.data["iccid"], run.data.get("msisdn"))


def _mark_active(s: Session, run: Run) -> None:
    # One UPDATE that checks the state as it writes it (no read first).
    done = transition_if(s, SIM_LIFECYCLE, run.data["iccid"], SimState.ALLOCATED,
                         SimState.ACTIVE, actor=run.actor,
                         where={"subscriber_ref": run.input["subscriber_ref"]},
                         details=lambda sim: {"msisdn": sim.msisdn, "workflow_id": run.id})
    if done is None:
        sim = sim_for_update(s, run.data["iccid"])
        raise StepFailed(f"SIM {sim.iccid} is {sim.state}, no longer allocated to the "
                         "subscriber")


ACTIVATION = REGISTRY.add(Definition(KIND, (
    Step("validate", call=_validate),
    Step("reserve", commit=_reserve, undo_commit=_unreserve),
    Step("msisdn", commit=_assign_msisdn, undo_commit=_unassign_msisdn,
         when=lambda run: run.input.get("msisdn") is not None),
    keys_ready("iccid"),
    hlr_provision("iccid", with_msisdn=True),
    smdp_order("iccid", when=is_esim()),
    Step("activate", commit=_mark_active),
    notify("sim.activated", ("iccid", "msisdn", "subscriber_ref", "kind", "smdp_address",
                             "matching_id")),
), transient=TRANSIENT))
