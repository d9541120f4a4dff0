"""eSIM orders: give a customer an eSIM profile and everything needed to install it.

`order` is a small saga (design §1, provisioning):

1. one transaction: claim the next eSIM profile in stock whose SM-DP+ state is `available`
   (SIM state in_stock → allocated for the external reference), draw a matching ID (and a
   confirmation code if asked for, stored as SHA256(CC) only), record the order;
2. ES2+.DownloadOrder and ES2+.ConfirmOrder (releaseFlag) through the `SmdpPort`: the profile
   goes available → allocated | linked → released;
3. if the SM-DP+ refuses or fails: CancelOrder (when DownloadOrder had succeeded), the SIM back
   to stock, the order marked failed — then the error is raised.

The answer (`EsimProfile`) holds the ICCID, SM-DP+ address, matching ID and activation code
(SGP.22 §4.1); the confirmation code itself only in the answer to the order that created it.
QR codes and install links are derived from the activation code by the caller (esim.qr).
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlmodel import col

from esim.activation_code import ActivationCode, generate_matching_id
from esim.confirmation_code import generate_confirmation_code, hash_confirmation_code
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
from simcore.smdp.in_process import InProcessSmdp
from simcore.smdp.port import FinalStatus, SmdpError, SmdpPort

# Stocking the SM-DP+ is the SM-DP+ package's (simcore.smdp.stock); kept here for callers.
from simcore.smdp.stock import stock_profiles as stock_profiles

ORDER_ACTIVE, ORDER_CANCELLED, ORDER_FAILED = "active", "cancelled", "failed"


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

    @property
    def confirmation_code_required(self) -> bool:
        return self.activation_code.confirmation_code_required


def _profile(order: EsimOrder | Any, sim: Sim, confirmation_code: str | None = None
             ) -> EsimProfile:
    """`order`: an EsimOrder, or anything with its attributes (a row just inserted)."""
    code = ActivationCode(order.smdp_address, order.matching_id,
                          confirmation_code_required=order.confirmation_code_hash is not None)
    return EsimProfile(
        order_id=int(order.id or 0), iccid=order.iccid, external_ref=order.external_ref,
        eid=order.eid, smdp_address=order.smdp_address, matching_id=order.matching_id,
        activation_code=code, order_status=order.status, profile_state=sim.profile_state,
        sim_state=sim.state, created_at=order.created_at, updated_at=order.updated_at,
        confirmation_code=confirmation_code)


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
    downloaded = False
    try:
        port.download_order(iccid=sim.iccid, eid=eid_digits)
        downloaded = True
        port.confirm_order(iccid=sim.iccid, matching_id=matching_id, eid=eid_digits,
                           confirmation_code=cc, release=True)
    except BaseException:
        _undo(engine, port, row, downloaded, actor=actor)
        raise
    return get(engine, sim.iccid, confirmation_code=cc)


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
    if idempotency is not None:
        idempotency.committed = True
    return _profile(SimpleNamespace(id=order_id, **values), sim, cc)


def _batch_id(conn: Any, name: str) -> int:
    from simcore.models import Batch

    b = conn.execute(select(col(Batch.id)).where(col(Batch.name) == name)).scalar_one_or_none()
    if b is None:
        raise NotFound(f"no batch named {name!r}")
    return int(b)


_INSERT_ORDER = insert(EsimOrder).returning(col(EsimOrder.id))
_INSERT_OUTBOX = insert(OutboxEvent)


def _undo(engine: Engine, port: SmdpPort, row: EsimOrder, downloaded: bool, *,
          actor: str) -> None:
    if downloaded:
        # If this fails too, the profile stays where the SM-DP+ left it; the order says failed.
        with contextlib.suppress(SmdpError):
            port.cancel_order(iccid=row.iccid, matching_id=row.matching_id, eid=row.eid)
    _end_order(engine, row.iccid, int(row.id or 0), ORDER_FAILED, actor=actor)


def _end_order(engine: Engine, iccid: str, order_id: int, status: str, *, actor: str) -> None:
    """One transaction: the SIM back to stock if still allocated, the order marked `status`."""
    with transaction(engine) as s:
        sim = s.execute(select(Sim).where(col(Sim.iccid) == iccid).with_for_update()
                        ).scalar_one()
        if sim.state == SimState.ALLOCATED:
            apply_transition(s, sim, SimState.IN_STOCK, actor=actor,
                             changes={"subscriber_ref": None}, details={"esim_order": status})
        s.execute(update(EsimOrder).where(col(EsimOrder.id) == order_id)
                  .values(status=status, updated_at=utcnow()))


_LATEST = (select(EsimOrder, Sim).join(Sim, col(Sim.iccid) == col(EsimOrder.iccid)))


def get(engine: Engine, iccid: str, *, confirmation_code: str | None = None) -> EsimProfile:
    """The profile `iccid` as its latest order sees it; NotFound if it was never ordered."""
    iccid = Iccid.parse(iccid).digits
    with read_session(engine) as s:
        found = s.execute(_LATEST.where(col(EsimOrder.iccid) == iccid)
                          .order_by(col(EsimOrder.id).desc()).limit(1)).first()
    if found is None:
        raise NotFound(f"no eSIM order for ICCID {iccid}")
    return _profile(found[0], found[1], confirmation_code)


def list_orders(engine: Engine, *, external_ref: str | None = None, status: str | None = None,
                after: int | None = None, limit: int = 100) -> list[EsimProfile]:
    """Orders, newest last (id order), from after `after` (an order id, for paging)."""
    stmt = keyset_page(_LATEST, col(EsimOrder.id), after=after, limit=limit,
                       filters={col(EsimOrder.external_ref): external_ref,
                                col(EsimOrder.status): status})
    with read_session(engine) as s:
        rows = s.execute(stmt).all()
    return [_profile(o, sim) for o, sim in rows]


def cancel(engine: Engine, port: SmdpPort, iccid: str, *, actor: str,
           final_status: FinalStatus = "available") -> EsimProfile:
    """ES2+.CancelOrder for the profile's active order; the SIM goes back to stock."""
    current = get(engine, iccid)
    if current.order_status != ORDER_ACTIVE:
        raise OrderNotCancellable(f"eSIM order for {current.iccid} is {current.order_status}")
    if current.sim_state != SimState.ALLOCATED:
        raise OrderNotCancellable(f"eSIM {current.iccid} is {current.sim_state}: only an "
                                  "allocated profile's order can be cancelled")
    port.cancel_order(iccid=current.iccid, matching_id=current.matching_id, eid=current.eid,
                      final_status=final_status)
    _end_order(engine, current.iccid, current.order_id, ORDER_CANCELLED, actor=actor)
    return get(engine, current.iccid)


def available_count(engine: Engine) -> int:
    with read_session(engine) as s:
        return int(s.execute(select(func.count()).select_from(Sim).where(
            col(Sim.kind) == "esim", col(Sim.state) == SimState.IN_STOCK,
            col(Sim.profile_state) == ProfileState.AVAILABLE)).scalar_one())
