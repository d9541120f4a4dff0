"""The SM-DP+ functions of ES2+ on the inventory's eSIM profiles (GSMA SGP.22 v2.5 §5.3.1–§5.3.4),
moving `sim.profile_state` along SGP.22's machine (simcore.lifecycle.PROFILE_LIFECYCLE):

    DownloadOrder   available → allocated (no EID) | linked (EID)
    ConfirmOrder    allocated | linked → confirmed, or → released with releaseFlag
    CancelOrder     allocated | linked | confirmed | released → available | unavailable
    ReleaseProfile  confirmed → released

A release starts the download order's validity (simcore.smdp.order_validity: now +
`order_validity`, SIMSMITH_SMDP_ORDER_VALIDITY; None: it never expires).

Each function runs in the caller's transaction (simcore.smdp.es2plus.Es2PlusEndpoint) and
either returns the Executed-Success answer or raises `Es2PlusRefused` with SGP.22's subject and
reason codes: unknown ICCID 8.2.1/3.9, another requester's order 8.2.1/1.2, a state that does
not allow the function 8.2.1/3.5, not available 8.2.1/3.7, unknown or exhausted Profile Type
8.2.5/3.9 and 3.7, EID malformed 8.1.1/2.1 or not the linked one 8.1.1/3.10, Matching ID
malformed 8.2.6/2.1 or already in use 8.2.6/3.3 or not the order's 8.2.6/3.10, SM-DS requested
8.9/5.1 (simsmith has no SM-DS connection).
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import delete, select
from sqlmodel import Session, col

from esim.activation_code import generate_matching_id
from esim.confirmation_code import hash_confirmation_code
from esim.es2plus import codes
from esim.es2plus.messages import (
    CancelOrderRequest,
    CancelOrderResponse,
    ConfirmOrderRequest,
    ConfirmOrderResponse,
    DownloadOrderRequest,
    DownloadOrderResponse,
    ReleaseProfileRequest,
    ReleaseProfileResponse,
    success_header,
)
from simcore.lifecycle import (
    PROFILE_LIFECYCLE,
    ProfileState,
    apply_transition,
    claim_transition,
)
from simcore.models import Batch, utcnow
from simcore.smdp.models import Es2PlusOrder
from simcore.smdp.order_validity import record_confirmed, record_released, valid_until
from simcore.smdp.profiles import (
    Es2PlusRefused,
    check_stock_owner,
    eid_digits,
    iccid_digits,
    locked_profile,
    order_of,
    profile_type_of,
)
from simcore.smdp.stock import batches_open_to

P = ProfileState
_MATCHING_ID = re.compile(r"[0-9A-Z-]{1,255}\Z")
ORDERED = frozenset({P.ALLOCATED, P.LINKED, P.CONFIRMED, P.RELEASED})


def download_order(s: Session, req: DownloadOrderRequest, requester: str, *, actor: str,
                   smdp_address: str) -> DownloadOrderResponse:
    eid = eid_digits(req.eid)
    target = P.LINKED if eid else P.ALLOCATED
    changes = {"eid": eid} if eid else None
    details = {"function": "DownloadOrder", "requester": requester}
    iccid = iccid_digits(req.iccid)
    if iccid:
        sim = locked_profile(s, iccid)
        check_stock_owner(s, sim, requester)
        profile_type = profile_type_of(s, sim)
        if req.profile_type and profile_type and req.profile_type != profile_type:
            raise Es2PlusRefused(codes.PROFILE_TYPE_REFUSED,
                                 f"profile {iccid} is of type {profile_type}, not "
                                 f"{req.profile_type}", req.profile_type)
        if sim.profile_state != P.AVAILABLE:
            raise Es2PlusRefused(codes.ICCID_UNAVAILABLE,
                                 f"profile {iccid} is {sim.profile_state}, not available",
                                 iccid)
        apply_transition(s, sim, target, actor=actor,
                         machine=PROFILE_LIFECYCLE, changes=changes, details=details)
    elif req.profile_type:
        profile_type = req.profile_type
        batches = list(s.execute(
            select(col(Batch.id)).where(col(Batch.profile) == profile_type,
                                        col(Batch.kind) == "esim")
            .order_by(col(Batch.id))).scalars())
        batches = batches_open_to(s, batches, requester)  # another operator's: unseen
        if not batches:
            raise Es2PlusRefused(codes.PROFILE_TYPE_UNKNOWN,
                                 f"no Profile Type {profile_type!r}", profile_type)
        sim = None
        for batch_id in batches:
            # Only profiles not yet handed out by the inventory (service state in_stock).
            sim = claim_transition(
                s, P.AVAILABLE, target, actor=actor,
                where={"kind": "esim", "batch_id": batch_id, "state": "in_stock"},
                machine=PROFILE_LIFECYCLE, changes=changes,
                details={**details, "profile_type": profile_type})
            if sim is not None:
                break
        if sim is None:
            raise Es2PlusRefused(codes.PROFILE_TYPE_UNAVAILABLE,
                                 f"no available profile of type {profile_type!r}",
                                 profile_type)
        iccid = sim.iccid
    else:
        raise Es2PlusRefused(codes.PROFILE_TYPE_MISSING,
                             "DownloadOrder needs an iccid or a profileType")
    s.execute(delete(Es2PlusOrder).where(col(Es2PlusOrder.iccid) == iccid))
    s.add(Es2PlusOrder(iccid=iccid, requester=requester, profile_type=profile_type))
    return DownloadOrderResponse(header=success_header(), iccid=iccid)


def confirm_order(s: Session, req: ConfirmOrderRequest, requester: str, *, actor: str,
                  smdp_address: str,
                  order_validity: timedelta | None = None) -> ConfirmOrderResponse:
    iccid = iccid_digits(req.iccid) or ""
    sim = locked_profile(s, iccid)
    order = order_of(s, sim, requester)
    if sim.profile_state not in (P.ALLOCATED, P.LINKED):
        raise Es2PlusRefused(codes.ICCID_INVALID_TRANSITION,
                             f"profile {iccid} is {sim.profile_state}; ConfirmOrder needs "
                             "allocated or linked", iccid)
    eid = eid_digits(req.eid)
    if eid and sim.eid and eid != sim.eid:
        raise Es2PlusRefused(codes.EID_INVALID_ASSOCIATION,
                             f"profile {iccid} is linked to another EID", eid)
    if req.smds_address:
        raise Es2PlusRefused(codes.SMDS_INACCESSIBLE,
                             "this SM-DP+ has no SM-DS connection; omit smdsAddress",
                             req.smds_address)
    matching_id = req.matching_id
    if matching_id:
        if not _MATCHING_ID.match(matching_id):
            raise Es2PlusRefused(codes.MATCHING_ID_INVALID,
                                 "a Matching ID has 1 to 255 characters of 0-9, A-Z and '-'")
        taken = s.execute(select(col(Es2PlusOrder.iccid)).where(
            col(Es2PlusOrder.matching_id) == matching_id,
            col(Es2PlusOrder.iccid) != iccid)).first()
        if taken:
            raise Es2PlusRefused(codes.MATCHING_ID_ALREADY_IN_USE,
                                 "the Matching ID is already used by another order",
                                 matching_id)
    else:
        def exists(m: str) -> bool:
            return s.execute(select(col(Es2PlusOrder.iccid)).where(
                col(Es2PlusOrder.matching_id) == m)).first() is not None
        matching_id = generate_matching_id(exists)
    cc_hash = None
    if req.confirmation_code is not None:
        if not req.confirmation_code:
            raise Es2PlusRefused(codes.CONFIRMATION_CODE_INVALID,
                                 "the confirmation code is empty")
        cc_hash = hash_confirmation_code(req.confirmation_code).hex()
    target = P.RELEASED if req.release_flag else P.CONFIRMED
    changes = {"eid": eid} if eid and not sim.eid else None
    apply_transition(s, sim, target, actor=actor, machine=PROFILE_LIFECYCLE,
                     changes=changes, details={
                         "function": "ConfirmOrder", "requester": requester,
                         "matching_id": matching_id,
                         "confirmation_code_required": cc_hash is not None})
    order.matching_id = matching_id
    order.cc_hash = cc_hash
    order.updated_at = utcnow()
    s.add(order)
    record_confirmed(s, iccid, matching_id,
                     valid_until(order_validity) if req.release_flag else None)
    return ConfirmOrderResponse(header=success_header(), eid=sim.eid,
                                matching_id=matching_id, smdp_address=smdp_address)


def cancel_order(s: Session, req: CancelOrderRequest, requester: str, *, actor: str,
                 smdp_address: str) -> CancelOrderResponse:
    iccid = iccid_digits(req.iccid) or ""
    sim = locked_profile(s, iccid)
    order = order_of(s, sim, requester)
    if sim.profile_state not in ORDERED:
        raise Es2PlusRefused(codes.ICCID_INVALID_TRANSITION,
                             f"profile {iccid} is {sim.profile_state}; nothing to cancel",
                             iccid)
    eid = eid_digits(req.eid)
    if eid and sim.eid != eid:
        raise Es2PlusRefused(codes.EID_INVALID_ASSOCIATION,
                             f"profile {iccid} is not linked to that EID", eid)
    if req.matching_id and order.matching_id and order.matching_id != req.matching_id:
        raise Es2PlusRefused(codes.MATCHING_ID_INVALID_ASSOCIATION,
                             f"the Matching ID is not the one of profile {iccid}",
                             req.matching_id)
    available = req.final_profile_status_indicator == "Available"
    target = P.AVAILABLE if available else P.UNAVAILABLE
    apply_transition(s, sim, target, actor=actor, machine=PROFILE_LIFECYCLE,
                     changes={"eid": None} if available else None,
                     details={"function": "CancelOrder", "requester": requester,
                              "final_profile_status": req.final_profile_status_indicator})
    s.delete(order)
    return CancelOrderResponse(header=success_header())


def release_profile(s: Session, req: ReleaseProfileRequest, requester: str, *, actor: str,
                    smdp_address: str,
                    order_validity: timedelta | None = None) -> ReleaseProfileResponse:
    iccid = iccid_digits(req.iccid) or ""
    sim = locked_profile(s, iccid)
    order_of(s, sim, requester)
    if sim.profile_state != P.CONFIRMED:
        raise Es2PlusRefused(codes.ICCID_INVALID_TRANSITION,
                             f"profile {iccid} is {sim.profile_state}; ReleaseProfile needs "
                             "confirmed", iccid)
    apply_transition(s, sim, P.RELEASED, actor=actor,
                     machine=PROFILE_LIFECYCLE,
                     details={"function": "ReleaseProfile", "requester": requester})
    record_released(s, iccid, valid_until(order_validity))
    return ReleaseProfileResponse(header=success_header())
