"""simsmith's own ES2+ endpoint logic (GSMA SGP.22 v2.5 §5.3), backed by the inventory.

Two roles, one entry point (`Es2PlusEndpoint.handle`):

- **SM-DP+ side** (operator → simsmith): DownloadOrder, ConfirmOrder, CancelOrder and
  ReleaseProfile on the inventory's eSIM profiles (`sim.kind == "esim"`), moving
  `sim.profile_state` along SGP.22's machine (simcore.lifecycle.PROFILE_LIFECYCLE):

      DownloadOrder   available → allocated (no EID) | linked (EID)
      ConfirmOrder    allocated | linked → confirmed, or → released with releaseFlag
      CancelOrder     allocated | linked | confirmed | released → available | unavailable
      ReleaseProfile  confirmed → released

  Each refusal is a Failed answer with SGP.22's subject and reason codes (esim.es2plus.codes):
  unknown ICCID 8.2.1/3.9, another requester's order 8.2.1/1.2, a state that does not allow
  the function 8.2.1/3.5, not available 8.2.1/3.7, unknown or exhausted Profile Type 8.2.5/3.9
  and 3.7, EID malformed 8.1.1/2.1 or not the linked one 8.1.1/3.10, Matching ID malformed
  8.2.6/2.1 or already in use 8.2.6/3.3 or not the order's 8.2.6/3.10, SM-DS requested
  8.9/5.1 (simsmith has no SM-DS connection).

- **Operator side** (an SM-DP+ → simsmith): HandleDownloadProgressInfo (§5.3.5) mirrors the
  download progress into the inventory: BPP download done → downloaded, BPP installation done
  → installed, any failure → error (the reason, subject and reason codes in the audit and
  outbox records). A notification that would move the state backwards or to where it already
  is changes nothing.

Every call received is recorded by (functionRequesterIdentifier, functionCallIdentifier) with
the answer given, in the transaction of its effect: a repeated call gets the same answer and
changes nothing. State changes go through simcore.lifecycle (state + audit + outbox, or none).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col

from esim.activation_code import generate_matching_id
from esim.confirmation_code import hash_confirmation_code
from esim.es2plus import codes
from esim.es2plus.codes import FunctionExecutionStatus, StatusCode
from esim.es2plus.messages import (
    FUNCTIONS,
    CancelOrderRequest,
    CancelOrderResponse,
    ConfirmOrderRequest,
    ConfirmOrderResponse,
    DownloadOrderRequest,
    DownloadOrderResponse,
    HandleDownloadProgressInfoRequest,
    HandleDownloadProgressInfoResponse,
    NotificationPoint,
    ReleaseProfileRequest,
    ReleaseProfileResponse,
    Response,
    failed_header,
    success_header,
)
from simcore import audit
from simcore.db import read_session, transaction
from simcore.errors import SimsmithError
from simcore.es2plus_stock import batches_open_to, stock_owner
from simcore.identifiers import Eid, InvalidIdentifier
from simcore.lifecycle import (
    PROFILE_LIFECYCLE,
    ProfileState,
    StaleVersion,
    TransitionNotAllowed,
    apply_transition,
    claim_transition,
)
from simcore.models import Batch, Sim, utcnow
from simcore.models_es2plus import Es2PlusCall, Es2PlusOrder

log = logging.getLogger(__name__)
P = ProfileState
_MATCHING_ID = re.compile(r"[0-9A-Z-]{1,255}\Z")
MAX_IDENTIFIER = 128  # the store's limit for requester and call identifiers
ORDERED = frozenset({P.ALLOCATED, P.LINKED, P.CONFIRMED, P.RELEASED})


class Es2PlusRefused(SimsmithError):
    """A function refused with an SGP.22 status code; becomes a Failed answer."""

    def __init__(self, code: StatusCode, message: str,
                 subject_identifier: str | None = None) -> None:
        self.code = code
        self.message = message
        self.subject_identifier = subject_identifier
        super().__init__(f"{code}: {message}")

    def answer(self, model: type[Response] = Response) -> Response:
        return model(header=failed_header(self.code, self.message, self.subject_identifier))


def same_identity(principal: str, requester: str) -> bool:
    """Default policy: a client may act as the requester its certificate (or credential) names."""
    return principal == requester


@dataclass(frozen=True)
class Es2PlusEndpoint:
    """The ES2+ functions on one store. `smdp_address` goes into ConfirmOrder answers;
    `authorize(principal, requester)` decides whether an authenticated client may use a
    functionRequesterIdentifier."""

    engine: Engine
    smdp_address: str
    actor_prefix: str = "es2plus"
    authorize: Callable[[str, str], bool] = same_identity

    # --- entry point ---------------------------------------------------------------------------

    def handle(self, function: str, body: Any, *, principal: str) -> Response:
        """Run one ES2+ function for an authenticated client; always an answer, never raises
        for a refusal (those are Failed answers)."""
        _, request_model, response_model = FUNCTIONS[function]
        try:
            req = request_model.model_validate(body)
        except ValidationError as exc:
            return _invalid(exc).answer(response_model)
        requester = req.header.function_requester_identifier
        call_id = req.header.function_call_identifier
        for name, value in (("functionRequesterIdentifier", requester),
                            ("functionCallIdentifier", call_id)):
            if len(value) > MAX_IDENTIFIER:
                return Es2PlusRefused(codes.FUNCTION_INVALID,
                                      f"header.{name}: at most {MAX_IDENTIFIER} characters",
                                      f"header.{name}").answer(response_model)
        if not self.authorize(principal, requester):
            return Es2PlusRefused(
                codes.REQUESTER_NOT_ALLOWED,
                f"client {principal!r} may not act as requester {requester!r}").answer(
                    response_model)
        stored = self._stored(requester, call_id)
        if stored is not None:
            return self._replay(stored, function, response_model)
        iccid = _iccid(getattr(req, "iccid", None))
        if iccid and len(iccid) > 20:
            return Es2PlusRefused(codes.ICCID_UNKNOWN, "an ICCID has at most 20 digits",
                                  "iccid").answer(response_model)
        try:
            with transaction(self.engine) as s:
                answer = getattr(self, _HANDLERS[function])(s, req, requester)
                self._record(s, requester, call_id, function, iccid, answer)
            return answer
        except Es2PlusRefused as refusal:
            answer = refusal.answer(response_model)
        except (TransitionNotAllowed, StaleVersion) as exc:
            answer = Es2PlusRefused(codes.ICCID_INVALID_TRANSITION, str(exc), iccid).answer(
                response_model)
        except IntegrityError:
            # A concurrent call with the same identifier (or Matching ID) committed first.
            stored = self._stored(requester, call_id)
            if stored is not None:
                return self._replay(stored, function, response_model)
            answer = Es2PlusRefused(codes.MATCHING_ID_ALREADY_IN_USE,
                                    "the Matching ID was taken meanwhile").answer(response_model)
        except OperationalError:
            # The store cannot serve now (locked, connection lost): Busy, not recorded, so the
            # same call may be retried with its functionCallIdentifier.
            log.exception("es2plus %s: store unavailable (call %s)", function, call_id)
            return Es2PlusRefused(codes.PROVIDER_BUSY, "the SM-DP+ store is busy: retry"
                                  ).answer(response_model)
        except Exception:
            log.exception("es2plus %s failed (call %s)", function, call_id)
            return Es2PlusRefused(codes.PROVIDER_EXECUTION_ERROR, "internal error"
                                  ).answer(response_model)
        scd = answer.header.function_execution_status.status_code_data
        log.info("es2plus %s refused: requester=%s call=%s iccid=%s code=%s", function,
                 requester, call_id, iccid, scd.code if scd else None)
        try:
            with transaction(self.engine) as s:
                self._record(s, requester, call_id, function, iccid, answer)
        except IntegrityError:
            stored = self._stored(requester, call_id)
            if stored is not None:
                return self._replay(stored, function, response_model)
        return answer

    def _stored(self, requester: str, call_id: str) -> Es2PlusCall | None:
        with read_session(self.engine) as s:
            return s.get(Es2PlusCall, (requester, call_id))

    @staticmethod
    def _replay(stored: Es2PlusCall, function: str, model: type[Response]) -> Response:
        if stored.function != function:
            return Es2PlusRefused(
                codes.FUNCTION_INVALID,
                f"functionCallIdentifier {stored.call_id!r} was already used for "
                f"{stored.function}").answer(model)
        return model.model_validate_json(stored.response)

    @staticmethod
    def _record(s: Session, requester: str, call_id: str, function: str, iccid: str | None,
                answer: Response) -> None:
        s.add(Es2PlusCall(requester=requester, call_id=call_id, function=function,
                          iccid=iccid, response=answer.model_dump_json(by_alias=True,
                                                                       exclude_none=True)))
        s.flush()

    def _actor(self, requester: str) -> str:
        return f"{self.actor_prefix}:{requester}"[:128]

    # --- SM-DP+ side ---------------------------------------------------------------------------

    def _download_order(self, s: Session, req: DownloadOrderRequest,
                        requester: str) -> DownloadOrderResponse:
        eid = _eid(req.eid)
        target = P.LINKED if eid else P.ALLOCATED
        changes = {"eid": eid} if eid else None
        details = {"function": "DownloadOrder", "requester": requester}
        iccid = _iccid(req.iccid)
        if iccid:
            sim = _profile(s, iccid)
            _check_stock_owner(s, sim, requester)
            profile_type = _profile_type(s, sim)
            if req.profile_type and profile_type and req.profile_type != profile_type:
                raise Es2PlusRefused(codes.PROFILE_TYPE_REFUSED,
                                     f"profile {iccid} is of type {profile_type}, not "
                                     f"{req.profile_type}", req.profile_type)
            if sim.profile_state != P.AVAILABLE:
                raise Es2PlusRefused(codes.ICCID_UNAVAILABLE,
                                     f"profile {iccid} is {sim.profile_state}, not available",
                                     iccid)
            apply_transition(s, sim, target, actor=self._actor(requester),
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
                    s, P.AVAILABLE, target, actor=self._actor(requester),
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

    def _confirm_order(self, s: Session, req: ConfirmOrderRequest,
                       requester: str) -> ConfirmOrderResponse:
        iccid = _iccid(req.iccid) or ""
        sim = _profile(s, iccid)
        order = _order(s, sim, requester)
        if sim.profile_state not in (P.ALLOCATED, P.LINKED):
            raise Es2PlusRefused(codes.ICCID_INVALID_TRANSITION,
                                 f"profile {iccid} is {sim.profile_state}; ConfirmOrder needs "
                                 "allocated or linked", iccid)
        eid = _eid(req.eid)
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
        apply_transition(s, sim, target, actor=self._actor(requester), machine=PROFILE_LIFECYCLE,
                         changes=changes, details={
                             "function": "ConfirmOrder", "requester": requester,
                             "matching_id": matching_id,
                             "confirmation_code_required": cc_hash is not None})
        order.matching_id = matching_id
        order.cc_hash = cc_hash
        order.updated_at = utcnow()
        s.add(order)
        return ConfirmOrderResponse(header=success_header(), eid=sim.eid,
                                    matching_id=matching_id, smdp_address=self.smdp_address)

    def _cancel_order(self, s: Session, req: CancelOrderRequest,
                      requester: str) -> CancelOrderResponse:
        iccid = _iccid(req.iccid) or ""
        sim = _profile(s, iccid)
        order = _order(s, sim, requester)
        if sim.profile_state not in ORDERED:
            raise Es2PlusRefused(codes.ICCID_INVALID_TRANSITION,
                                 f"profile {iccid} is {sim.profile_state}; nothing to cancel",
                                 iccid)
        eid = _eid(req.eid)
        if eid and sim.eid != eid:
            raise Es2PlusRefused(codes.EID_INVALID_ASSOCIATION,
                                 f"profile {iccid} is not linked to that EID", eid)
        if req.matching_id and order.matching_id and order.matching_id != req.matching_id:
            raise Es2PlusRefused(codes.MATCHING_ID_INVALID_ASSOCIATION,
                                 f"the Matching ID is not the one of profile {iccid}",
                                 req.matching_id)
        available = req.final_profile_status_indicator == "Available"
        target = P.AVAILABLE if available else P.UNAVAILABLE
        apply_transition(s, sim, target, actor=self._actor(requester), machine=PROFILE_LIFECYCLE,
                         changes={"eid": None} if available else None,
                         details={"function": "CancelOrder", "requester": requester,
                                  "final_profile_status": req.final_profile_status_indicator})
        s.delete(order)
        return CancelOrderResponse(header=success_header())

    def _release_profile(self, s: Session, req: ReleaseProfileRequest,
                         requester: str) -> ReleaseProfileResponse:
        iccid = _iccid(req.iccid) or ""
        sim = _profile(s, iccid)
        _order(s, sim, requester)
        if sim.profile_state != P.CONFIRMED:
            raise Es2PlusRefused(codes.ICCID_INVALID_TRANSITION,
                                 f"profile {iccid} is {sim.profile_state}; ReleaseProfile needs "
                                 "confirmed", iccid)
        apply_transition(s, sim, P.RELEASED, actor=self._actor(requester),
                         machine=PROFILE_LIFECYCLE,
                         details={"function": "ReleaseProfile", "requester": requester})
        return ReleaseProfileResponse(header=success_header())

    # --- operator side -------------------------------------------------------------------------

    def _handle_download_progress_info(
        self, s: Session, req: HandleDownloadProgressInfoRequest, requester: str,
    ) -> HandleDownloadProgressInfoResponse:
        iccid = _iccid(req.iccid) or ""
        sim = _profile(s, iccid)
        status = req.notification_point_status
        scd = status.status_code_data
        point = req.notification_point_id
        details: dict[str, Any] = {
            "function": "HandleDownloadProgressInfo", "smdp": requester,
            "notification_point": point, "notification_point_name": _POINT_NAMES.get(point),
            "status": str(status.status), "timestamp": req.timestamp,
        }
        if req.eid:
            details["eid"] = req.eid
        if scd is not None:
            details.update(subject_code=scd.subject_code, reason_code=scd.reason_code)
        target: str | None = None
        reason: str | None = None
        if not status.status.executed:
            target = P.ERROR
            what = _POINT_NAMES.get(point, f"notification point {point}")
            reason = f"{what} {status.status}"
            if scd is not None:
                reason += f" {scd.subject_code}/{scd.reason_code} ({scd.code.description})"
                if scd.message:
                    reason += f": {scd.message}"
        elif point == NotificationPoint.BPP_DOWNLOAD:
            target = P.DOWNLOADED
        elif point == NotificationPoint.BPP_INSTALLATION:
            target = P.INSTALLED
        current = sim.profile_state
        if target is not None and current != target and current is not None \
                and target in PROFILE_LIFECYCLE.allowed(current):
            apply_transition(s, sim, target, actor=self._actor(requester),
                             machine=PROFILE_LIFECYCLE, reason=reason, details=details)
        elif target is None or current != target:
            # Progress that moves nothing (eligibility checked, a late "downloaded" after
            # "installed"): recorded, with its event, so nothing the SM-DP+ said is lost.
            details.update(profile_state=current, applied=False)
            if reason:
                details["reason"] = reason
            audit.append(s, actor=self._actor(requester), action="esim_profile.download_progress",
                         subject_type="esim_profile", subject_id=iccid, details=details,
                         outbox=audit.Outbox("esim_profile.download_progress", "esim_profile",
                                             iccid, details))
        return HandleDownloadProgressInfoResponse(header=success_header())


_HANDLERS = {
    "DownloadOrder": "_download_order", "ConfirmOrder": "_confirm_order",
    "CancelOrder": "_cancel_order", "ReleaseProfile": "_release_profile",
    "HandleDownloadProgressInfo": "_handle_download_progress_info",
}

_POINT_NAMES = {
    NotificationPoint.ELIGIBILITY_AND_RETRY_LIMIT_CHECK: "eligibility and retry limit check",
    NotificationPoint.CONFIRMATION_FAILURE: "confirmation failure",
    NotificationPoint.BPP_DOWNLOAD: "BPP download",
    NotificationPoint.BPP_INSTALLATION: "BPP installation",
}


def _invalid(exc: ValidationError) -> Es2PlusRefused:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    missing = err["type"] == "missing"
    if where == "iccid" and missing:
        code = codes.ICCID_MISSING
    else:
        code = codes.FUNCTION_MISSING_ELEMENT if missing else codes.FUNCTION_INVALID
    return Es2PlusRefused(code, f"{where}: {err['msg']}", where)


def _iccid(value: str | None) -> str | None:
    """ES2+ ICCIDs are 19 or 20 digits, a 19-digit one possibly padded with F."""
    if not value:
        return None
    return value[:-1] if value[-1] in "Ff" else value


def _eid(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return Eid.parse(value).digits
    except InvalidIdentifier as e:
        raise Es2PlusRefused(codes.EID_INVALID, str(e), value) from None


def _profile(s: Session, iccid: str) -> Sim:
    sim = s.execute(select(Sim).where(col(Sim.iccid) == iccid).with_for_update()
                    ).scalar_one_or_none()
    if sim is None or sim.kind != "esim":
        raise Es2PlusRefused(codes.ICCID_UNKNOWN, f"no eSIM profile with ICCID {iccid}", iccid)
    return sim


def _profile_type(s: Session, sim: Sim) -> str | None:
    if sim.batch_id is None:
        return None
    return s.execute(select(col(Batch.profile)).where(col(Batch.id) == sim.batch_id)
                     ).scalar_one_or_none()


def _check_stock_owner(s: Session, sim: Sim, requester: str) -> None:
    """A profile stocked for another operator (simcore.es2plus_access) is not this one's."""
    owner = stock_owner(s, sim.batch_id)
    if owner is not None and owner != requester:
        raise Es2PlusRefused(codes.ICCID_NOT_ALLOWED,
                             f"profile {sim.iccid} is stocked for another operator", sim.iccid)


def _order(s: Session, sim: Sim, requester: str) -> Es2PlusOrder:
    """The ES2+ order of a profile; refused when another requester placed it. A profile
    ordered some other way (the embedded port) gets its order record now."""
    order = s.get(Es2PlusOrder, sim.iccid)
    if order is None:
        _check_stock_owner(s, sim, requester)
        order = Es2PlusOrder(iccid=sim.iccid, requester=requester,
                             profile_type=_profile_type(s, sim))
        s.add(order)
        s.flush()
        return order
    if order.requester != requester:
        raise Es2PlusRefused(codes.ICCID_NOT_ALLOWED,
                             f"profile {sim.iccid} was ordered by another requester", sim.iccid)
    return order


class Es2PlusEndpointSettings(BaseSettings):
    """Who may call simsmith's ES2+ endpoint, from the environment (SIMSMITH_ES2PLUS_*)."""

    model_config = SettingsConfigDict(env_prefix="SIMSMITH_ES2PLUS_", extra="ignore")

    credentials: SecretStr | None = Field(
        default=None, description="name=secret;… accepted as HTTP Basic credentials (for use "
        "behind a TLS-terminating proxy); mutual TLS needs none")
    requesters: str | None = Field(
        default=None, description="client=requester1|requester2;…: the functionRequester"
        "Identifiers a client (certificate CN or credential name) may use besides its own name")

    def credential_map(self) -> dict[str, str]:
        return _pairs(self.credentials.get_secret_value() if self.credentials else "")

    def requester_map(self) -> dict[str, frozenset[str]]:
        return {k: frozenset(filter(None, v.split("|")))
                for k, v in _pairs(self.requesters or "").items()}


def _pairs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for n, item in enumerate(filter(None, (part.strip() for part in text.split(";"))), 1):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            # Never echo the entry: it may be a secret.
            raise ValueError(f"entry {n} is not name=value")
        out[name.strip()] = value.strip()
    return out


def purge_calls(engine: Engine, older_than: timedelta) -> int:
    """Forget received calls older than `older_than` (a repeat after that executes anew).
    Returns how many records went."""
    cutoff = utcnow() - older_than
    with transaction(engine) as s:
        result = s.execute(delete(Es2PlusCall).where(col(Es2PlusCall.created_at) < cutoff))
        return int(result.rowcount)  # type: ignore[attr-defined]


def endpoint_for(engine: Engine, smdp_address: str,
                 requesters: Mapping[str, frozenset[str]] | None = None) -> Es2PlusEndpoint:
    """An endpoint whose clients may act as the requesters `requesters` maps them to (by
    certificate CN or credential name), or only as themselves when a client is not listed."""
    if not requesters:
        return Es2PlusEndpoint(engine, smdp_address)
    table = dict(requesters)

    def authorize(principal: str, requester: str) -> bool:
        return requester == principal or requester in table.get(principal, frozenset())

    return Es2PlusEndpoint(engine, smdp_address, authorize=authorize)


__all__ = ["Es2PlusEndpoint", "Es2PlusRefused", "FunctionExecutionStatus", "endpoint_for",
           "same_identity"]
