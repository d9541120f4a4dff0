"""eSIM orders: give a customer an eSIM profile and everything needed to install it.

`order` is a small saga (design §1, provisioning):

1. one transaction: claim the next eSIM profile in stock whose SM-DP+ state is `available`
   (SIM state in_stock → allocated for the external reference), draw a matching ID (and a
   confirmation code if asked for, stored as SHA256(CC) only), record the order;
2. ES2+.DownloadOrder and ES2+.ConfirmOrder (releaseFlag) through the `SmdpPort`: the profile
   goes available → allocated | linked → released;
3. the SM-DP+'s ConfirmOrder answer is the truth: its Matching ID, SM-DP+ address and EID
   become the order's (checked: they must make a usable activation code);
4. compensation, on any failure after the claim — a refusal, a timeout, a bad answer, simsmith's
   own fault: unless the SM-DP+ refused the very first call, CancelOrder
   (finalProfileStatusIndicator Available: the activation code never left simsmith) and, in
   the transaction that records the profile's cancelled state, the SIM back to stock and the
   order `failed`; then the error is raised. If CancelOrder itself fails, the order is
   `cancel_failed` and its SIM stays allocated (never handed out again while the SM-DP+ holds
   the profile) until `cancel` settles it; a request with an Idempotency-Key then keeps its
   key (the retry gets the same failure, not a second profile).

The answer (`EsimProfile`) holds the ICCID, SM-DP+ address, matching ID and activation code
(SGP.22 §4.1); the confirmation code itself only in the answer to the order that created it.
QR codes and install links are derived from the activation code by the caller (esim.qr).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlmodel import Session, col

from esim.activation_code import ActivationCode, generate_matching_id
from esim.confirmation_code import generate_confirmation_code, hash_confirmation_code
from esim.errors import ActivationCodeError
from simcore import audit
from simcore.db import connection_transaction, read_session, transaction
from simcore.errors import Conflict, InvalidInput, NotFound
from simcore.idempotency import Claim, record_pending
from simcore.identifiers import Eid, Iccid
from simcore.inventory import NoSimAvailable, batch_id
from simcore.lifecycle import (
    PROFILE_LIFECYCLE,
    ProfileState,
    SimState,
    apply_transition,
    check_transition,
    claim_transition,
)
from simcore.models import OutboxEvent, Sim, utcnow
from simcore.models_api import EsimOrder
from simcore.paging import keyset_page
from simcore.records import canonical_json, check_no_secrets
from simcore.smdp.es9plus_models import SmdpDownloadCounter
from simcore.smdp.in_process import InProcessSmdp
from simcore.smdp.order_validity import record_confirmed, valid_until
from simcore.smdp.port import (
    ConfirmOrderResult,
    FinalStatus,
    SmdpAnswerInvalid,
    SmdpError,
    SmdpPort,
    SmdpRefused,
    SmdpUnavailable,
)

# Stocking the SM-DP+ is the SM-DP+ package's (simcore.smdp.stock); kept here for callers.
from simcore.smdp.stock import stock_profiles as stock_profiles

ORDER_ACTIVE, ORDER_CANCELLED, ORDER_FAILED = "active", "cancelled", "failed"
# The order failed after the SM-DP+ executed a call, and CancelOrder did not go through: the
# SM-DP+ still holds the profile; `cancel` settles it.
ORDER_CANCEL_FAILED = "cancel_failed"


class OrderNotCancellable(Conflict):
    """The profile's order cannot be cancelled in its current state."""


@dataclass(frozen=True)
class EsimProfile:
    """An eSIM profile as its order sees it."""

    order_id: int
    iccid: str
    external_ref: str
    eid: str | None
    smdp_address: str
    matching_id: str
    activation_code: ActivationCode
    order_status: str
    profile_state: str | None
    sim_state: str
    created_at: datetime
    updated_at: datetime
    confirmation_code: str | None = None  # only right after the order
    # When the SM-DP+ stops taking the download order (SIMSMITH_SMDP_ORDER_VALIDITY at
    # simsmith's own SM-DP+, simcore.smdp.order_validity); None: never, or not known here.
    download_expires_at: datetime | None = None

    @property
    def confirmation_code_required(self) -> bool:
        return self.activation_code.confirmation_code_required


def _profile(order: EsimOrder | Any, sim: Sim, confirmation_code: str | None = None,
             expires_at: datetime | None = None) -> EsimProfile:
    """`order`: an EsimOrder, or anything with its attributes (a row just inserted)."""
    # lab: the address passed simcore.smdp.address's start-up check (host:port only when
    # SIMSMITH_SMDP_ALLOW_LAB_ADDRESS allowed it) or the SM-DP+'s ConfirmOrder answer's.
    code = ActivationCode(order.smdp_address, order.matching_id,
                          confirmation_code_required=order.confirmation_code_hash is not None,
                          lab=True)
    return EsimProfile(
        order_id=int(order.id or 0), iccid=order.iccid, external_ref=order.external_ref,
        eid=order.eid, smdp_address=order.smdp_address, matching_id=order.matching_id,
        activation_code=code, order_status=order.status, profile_state=sim.profile_state,
        sim_state=sim.state, created_at=order.created_at, updated_at=order.updated_at,
        confirmation_code=confirmation_code, download_expires_at=expires_at)


def order(
    engine: Engine, port: SmdpPort, external_ref: str, *, actor: str, eid: str | None = None,
    confirmation_code: bool = False, batch: str | None = None,
    idempotency: Claim | None = None,
) -> EsimProfile:
    """Order an eSIM profile for `external_ref` (and `eid`, if the device is known).

    `idempotency`: the caller's Idempotency-Key, recorded as pending in the transaction that
    claims the profile (simcore.idempotency.record_pending): ClaimTaken, with nothing claimed,
    if another request recorded it first."""
    if not external_ref or len(external_ref) > 128:
        raise InvalidInput("external_ref", "empty or longer than 128 characters",
                           expected="1..128 characters")
    eid_digits = Eid.parse(eid).digits if eid else None
    cc = generate_confirmation_code() if confirmation_code else None
    matching_id = generate_matching_id()
    if isinstance(port, InProcessSmdp):
        return _order_in_store(engine, port, external_ref, actor=actor, eid=eid_digits, cc=cc,
                               matching_id=matching_id, batch=batch, idempotency=idempotency)
    smdp_address = port.smdp_address
    with transaction(engine) as s:
        if idempotency is not None:
            record_pending(s, idempotency)
        where: dict[str, Any] = {"kind": "esim", "profile_state": ProfileState.AVAILABLE.value}
        if batch:
            where["batch_id"] = batch_id(s, batch)
        sim = claim_transition(s, SimState.IN_STOCK, SimState.ALLOCATED, actor=actor,
                               where=where, changes={"subscriber_ref": external_ref},
                               details={"subscriber_ref": external_ref, "esim_order": True})
        if sim is None:
            raise NoSimAvailable("no eSIM profile available"
                                 + (f" in batch {batch}" if batch else ""))
        row = EsimOrder(iccid=sim.iccid, external_ref=external_ref, eid=eid_digits,
                        matching_id=matching_id, smdp_address=smdp_address,
                        confirmation_code_hash=hash_confirmation_code(cc).hex() if cc else None,
                        status=ORDER_ACTIVE)
        s.add(row)
    if idempotency is not None:
        idempotency.committed = True
    step = "DownloadOrder"
    sent_matching_id: str | None = None  # what CancelOrder names: the SM-DP+'s, once known
    try:
        port.download_order(iccid=sim.iccid, eid=eid_digits)
        step = "ConfirmOrder"
        sent_matching_id = matching_id
        result = port.confirm_order(iccid=sim.iccid, matching_id=matching_id, eid=eid_digits,
                                    confirmation_code=cc, release=True)
        step = "answer"
        sent_matching_id = result.matching_id
        _record_confirmation(engine, row, result)
    except BaseException as e:
        # Compensate whenever the SM-DP+ may hold something: anything but a refusal of the
        # first call (a timeout or a bad answer may follow an execution).
        executed = not (step == "DownloadOrder" and (
            isinstance(e, SmdpRefused)
            or (isinstance(e, SmdpUnavailable) and not e.maybe_executed)))
        held = _compensate(engine, port, row, executed, sent_matching_id, actor=actor)
        if held and idempotency is not None:
            idempotency.keep = True  # a retry must not take a second profile
        raise
    return get(engine, sim.iccid, confirmation_code=cc)


def _record_confirmation(engine: Engine, row: EsimOrder, result: ConfirmOrderResult) -> None:
    """The SM-DP+'s answer is the truth: its Matching ID, address and EID become the order's
    (the activation code is built from them), once they are checked."""
    if result.iccid != row.iccid:
        raise SmdpAnswerInvalid(f"ConfirmOrder for {row.iccid} answered for {result.iccid}")
    try:
        # lab: the port checked the address with the lab policy (simcore.smdp.address)
        ActivationCode(result.smdp_address, result.matching_id, lab=True)
    except ActivationCodeError as e:
        raise SmdpAnswerInvalid(f"ConfirmOrder for {row.iccid}: its answer makes no "
                                f"activation code: {e}") from e
    with transaction(engine) as s:
        s.execute(update(EsimOrder).where(col(EsimOrder.id) == row.id).values(
            matching_id=result.matching_id, smdp_address=result.smdp_address,
            eid=result.eid or row.eid, updated_at=utcnow()))


def _order_in_store(engine: Engine, port: InProcessSmdp, external_ref: str, *, actor: str,
                    eid: str | None, cc: str | None, matching_id: str,
                    batch: str | None, idempotency: Claim | None) -> EsimProfile:
    """The embedded SM-DP+ keeps its profile state in this store, so DownloadOrder and
    ConfirmOrder (release) are the same row change as the allocation: one transaction claims the
    SIM (in_stock → allocated) with its profile (available → allocated | linked → released), one
    audit event records both moves, and the outbox gets the SIM's and the profile's events."""
    path = [ProfileState.AVAILABLE, ProfileState.LINKED if eid else ProfileState.ALLOCATED,
            ProfileState.RELEASED]
    for a, b in itertools.pairwise(path):
        check_transition(PROFILE_LIFECYCLE, "(next)", a, b)
    now = utcnow()
    with connection_transaction(engine) as conn:
        if idempotency is not None:
            record_pending(conn, idempotency)  # first: a duplicate fails before any claim
        where: dict[str, Any] = {"kind": "esim", "profile_state": ProfileState.AVAILABLE.value}
        if batch:
            where["batch_id"] = _batch_id(conn, batch)
        changes: dict[str, Any] = {"subscriber_ref": external_ref,
                                   "profile_state": ProfileState.RELEASED.value}
        if eid:
            changes["eid"] = eid
        profile = {"from": path[0].value, "to": path[-1].value, "via": path[1].value,
                   "smdp": "in-process DownloadOrder + ConfirmOrder"}
        sim = claim_transition(conn, SimState.IN_STOCK, SimState.ALLOCATED, actor=actor,
                               where=where, changes=changes,
                               details={"subscriber_ref": external_ref, "esim_order": True,
                                        "profile_state": profile})
        if sim is None:
            raise NoSimAvailable("no eSIM profile available"
                                 + (f" in batch {batch}" if batch else ""))
        payload = {**profile, "eid": eid}
        check_no_secrets(payload, "payload")
        # simcore.events.emit's row, through a statement built once (this is the hot path).
        conn.execute(_INSERT_OUTBOX, {"created_at": now, "topic": "esim_profile.state_changed",
                                      "subject_type": "esim_profile", "subject_id": sim.iccid,
                                      "payload": canonical_json(payload), "attempts": 0})
        values = {"iccid": sim.iccid, "external_ref": external_ref, "eid": eid,
                  "matching_id": matching_id, "smdp_address": port.smdp_address,
                  "confirmation_code_hash": hash_confirmation_code(cc).hex() if cc else None,
                  "status": ORDER_ACTIVE, "created_at": now, "updated_at": now}
        order_id = conn.execute(_INSERT_ORDER, values).scalar_one()
        # The SM-DP+'s side of the release: the download order's validity starts now.
        expires_at = valid_until(port.order_validity, now)
        record_confirmed(conn, sim.iccid, matching_id, expires_at)
    if idempotency is not None:
        idempotency.committed = True
    return _profile(SimpleNamespace(id=order_id, **values), sim, cc, expires_at)


def _batch_id(conn: Any, name: str) -> int:
    from simcore.models import Batch

    b = conn.execute(select(col(Batch.id)).where(col(Batch.name) == name)).scalar_one_or_none()
    if b is None:
        raise NotFound(f"no batch named {name!r}")
    return int(b)


_INSERT_ORDER = insert(EsimOrder).returning(col(EsimOrder.id))
_INSERT_OUTBOX = insert(OutboxEvent)


# Refusals of CancelOrder that mean the SM-DP+ holds nothing for the profile: unknown (3.9), or
# a state with no order to cancel (3.5, e.g. still available).
_NOTHING_TO_CANCEL = frozenset({"3.9", "3.5"})


def _compensate(engine: Engine, port: SmdpPort, row: EsimOrder, executed: bool,
                matching_id: str | None, *, actor: str) -> bool:
    """Undo an order that failed after its claim. When the SM-DP+ may have executed a call:
    CancelOrder with finalProfileStatusIndicator Available (the activation code never left
    simsmith, so the profile is as good as new), and in the transaction that records the
    cancelled profile state, the SIM back to stock and the order `failed`. Returns True when
    the SM-DP+ still holds the profile (CancelOrder failed): the order is then
    `cancel_failed`, the SIM out of stock, until `cancel` goes through."""
    order_id = int(row.id or 0)
    if executed:
        try:
            port.cancel_order(iccid=row.iccid, matching_id=matching_id, eid=row.eid,
                              final_status="available",
                              settle=lambda s: _settle(s, row.iccid, order_id, ORDER_FAILED,
                                                       actor=actor))
            return False
        except SmdpRefused as e:
            if e.reason_code not in _NOTHING_TO_CANCEL:
                _hold(engine, row.iccid, order_id, str(e), actor=actor)
                return True
        except SmdpError as e:
            _hold(engine, row.iccid, order_id, str(e), actor=actor)
            return True
    _end_order(engine, row.iccid, order_id, ORDER_FAILED, actor=actor)
    return False


def _hold(engine: Engine, iccid: str, order_id: int, why: str, *, actor: str) -> None:
    """CancelOrder did not go through: record it, never leave the profile dangling unnoticed.
    The SIM stays allocated (it cannot be handed out while the SM-DP+ holds its profile)."""
    with transaction(engine) as s:
        s.execute(update(EsimOrder).where(col(EsimOrder.id) == order_id)
                  .values(status=ORDER_CANCEL_FAILED, updated_at=utcnow()))
        details = {"order_id": order_id, "error": why[:500]}
        audit.append(s, actor=actor, action="esim_order.cancel_failed",
                     subject_type="esim_profile", subject_id=iccid, details=details,
                     outbox=audit.Outbox("esim_order.cancel_failed", "esim_profile", iccid,
                                         details))


def _settle(s: Session, iccid: str, order_id: int, status: str, *, actor: str) -> None:
    """In the caller's transaction: the SIM back to stock if still allocated, the order marked
    `status`."""
    sim = s.execute(select(Sim).where(col(Sim.iccid) == iccid).with_for_update()).scalar_one()
    if sim.state == SimState.ALLOCATED:
        apply_transition(s, sim, SimState.IN_STOCK, actor=actor,
                         changes={"subscriber_ref": None}, details={"esim_order": status})
    s.execute(update(EsimOrder).where(col(EsimOrder.id) == order_id)
              .values(status=status, updated_at=utcnow()))


def _end_order(engine: Engine, iccid: str, order_id: int, status: str, *, actor: str) -> None:
    """One transaction: the SIM back to stock if still allocated, the order marked `status`."""
    with transaction(engine) as s:
        _settle(s, iccid, order_id, status, actor=actor)


# With the SM-DP+'s end of validity for the order, when simsmith's own SM-DP+ holds it.
_LATEST = (select(EsimOrder, Sim, col(SmdpDownloadCounter.expires_at))
           .join(Sim, col(Sim.iccid) == col(EsimOrder.iccid))
           .outerjoin(SmdpDownloadCounter, (col(SmdpDownloadCounter.iccid) == col(EsimOrder.iccid))
                      & (col(SmdpDownloadCounter.matching_id) == col(EsimOrder.matching_id))))


def get(engine: Engine, iccid: str, *, confirmation_code: str | None = None) -> EsimProfile:
    """The profile `iccid` as its latest order sees it; NotFound if it was never ordered."""
    iccid = Iccid.parse(iccid).digits
    with read_session(engine) as s:
        found = s.execute(_LATEST.where(col(EsimOrder.iccid) == iccid)
                          .order_by(col(EsimOrder.id).desc()).limit(1)).first()
    if found is None:
        raise NotFound(f"no eSIM order for ICCID {iccid}")
    return _profile(found[0], found[1], confirmation_code, found[2])


def list_orders(engine: Engine, *, external_ref: str | None = None, status: str | None = None,
                after: int | None = None, limit: int = 100) -> list[EsimProfile]:
    """Orders, newest last (id order), from after `after` (an order id, for paging)."""
    stmt = keyset_page(_LATEST, col(EsimOrder.id), after=after, limit=limit,
                       filters={col(EsimOrder.external_ref): external_ref,
                                col(EsimOrder.status): status})
    with read_session(engine) as s:
        rows = s.execute(stmt).all()
    return [_profile(o, sim, expires_at=expires_at) for o, sim, expires_at in rows]


def cancel(engine: Engine, port: SmdpPort, iccid: str, *, actor: str,
           final_status: FinalStatus = "available") -> EsimProfile:
    """ES2+.CancelOrder for the profile's active order; the SIM goes back to stock."""
    current = get(engine, iccid)
    if current.order_status not in (ORDER_ACTIVE, ORDER_CANCEL_FAILED):
        raise OrderNotCancellable(f"eSIM order for {current.iccid} is {current.order_status}")
    if current.sim_state != SimState.ALLOCATED:
        raise OrderNotCancellable(f"eSIM {current.iccid} is {current.sim_state}: only an "
                                  "allocated profile's order can be cancelled")
    # A failed order's compensation retried: it ends `failed`, as it would have.
    status = ORDER_CANCELLED if current.order_status == ORDER_ACTIVE else ORDER_FAILED
    port.cancel_order(iccid=current.iccid, matching_id=current.matching_id, eid=current.eid,
                      final_status=final_status,
                      settle=lambda s: _settle(s, current.iccid, current.order_id, status,
                                               actor=actor))
    return get(engine, current.iccid)


def available_count(engine: Engine) -> int:
    with read_session(engine) as s:
        return int(s.execute(select(func.count()).select_from(Sim).where(
            col(Sim.kind) == "esim", col(Sim.state) == SimState.IN_STOCK,
            col(Sim.profile_state) == ProfileState.AVAILABLE)).scalar_one())
