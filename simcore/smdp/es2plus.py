"""simsmith's own ES2+ endpoint (GSMA SGP.22 v2.5 §5.3; §6.5.1 header and status), backed by the
inventory: one entry point for every function, the call log, who may act as which requester.

Two roles, one entry point (`Es2PlusEndpoint.handle`):

- **SM-DP+ side** (operator → simsmith): DownloadOrder, ConfirmOrder, CancelOrder and
  ReleaseProfile on the inventory's eSIM profiles (`sim.kind == "esim"`), moving
  `sim.profile_state` along SGP.22's machine (simcore.lifecycle.PROFILE_LIFECYCLE):

      DownloadOrder   available → allocated (no EID) | linked (EID)
      ConfirmOrder    allocated | linked → confirmed, or → released with releaseFlag
      CancelOrder     allocated | linked | confirmed | released → available | unavailable
      ReleaseProfile  confirmed → released

  Each refusal is a Failed answer with SGP.22's subject and reason codes (esim.es2plus.codes):
  simcore.smdp.orders lists them.

- **Operator side** (an SM-DP+ → simsmith): HandleDownloadProgressInfo (§5.3.5) mirrors the
  download progress into the inventory (simcore.smdp.download_progress).

Every call received is recorded by (functionRequesterIdentifier, functionCallIdentifier) with
the answer given, in the transaction of its effect: a repeated call gets the same answer and
changes nothing. State changes go through simcore.lifecycle (state + audit + outbox, or none).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col

from esim.es2plus import codes
from esim.es2plus.codes import FunctionExecutionStatus
from esim.es2plus.messages import FUNCTIONS, Request, Response
from simcore.config import DEFAULT_CALL_WINDOW_HOURS, Settings, get_settings
from simcore.db import read_session, transaction
from simcore.lifecycle import ProfileState, StaleVersion, TransitionNotAllowed
from simcore.models import utcnow
from simcore.smdp import orders
from simcore.smdp.download_progress import (
    DEFAULT_RECEIVED_POINTS,
    RECEIVED_POINTS,
    handle_download_progress_info,
    parse_received_points,
)
from simcore.smdp.models import Es2PlusCall
from simcore.smdp.profiles import Es2PlusRefused, iccid_digits

log = logging.getLogger(__name__)
MAX_IDENTIFIER = 128  # the store's limit for requester and call identifiers


def request_digest(req: Request) -> str:
    """SHA-256 over a call's request without its header, as canonical JSON (sorted keys): the
    same request re-sent, whatever its member order, has the same digest. The header is not in
    it: requester and call identifier are the record's key. (A confirmation code enters only
    through this one-way digest, as it does the order's SHA256(CC).)"""
    body = req.model_dump(mode="json", by_alias=True, exclude={"header"}, exclude_none=True)
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


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
    # How long a functionCallIdentifier stays bound to its call (SGP.22 §6.5.1.3 asks it to be
    # unique per requester; real clients build it from seconds + a counter, so it recurs).
    call_window: timedelta = timedelta(hours=DEFAULT_CALL_WINDOW_HOURS)
    # How long a released download order stays valid (SIMSMITH_SMDP_ORDER_VALIDITY); None: ever.
    order_validity: timedelta | None = None
    # Which of an SM-DP+'s own HandleDownloadProgressInfo points move the profile to deleted,
    # enabled or disabled (SIMSMITH_ES2PLUS_RECEIVE_OTHER_POINTS; simcore.smdp.download_progress)
    received_points: Mapping[int, ProfileState] = field(default_factory=lambda: RECEIVED_POINTS)

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
        try:
            iccid = iccid_digits(getattr(req, "iccid", None))
        except Es2PlusRefused as refusal:
            return refusal.answer(response_model)  # nothing looked up, nothing recorded
        digest = request_digest(req)
        stored = self._stored(requester, call_id)
        if stored is not None:
            return self._replay(stored, function, digest, response_model)
        try:
            with transaction(self.engine) as s:
                options: dict[str, Any] = {}
                if function in _RELEASING:
                    options["order_validity"] = self.order_validity
                elif function == "HandleDownloadProgressInfo":
                    options["received_points"] = self.received_points
                answer = _HANDLERS[function](s, req, requester, actor=self._actor(requester),
                                             smdp_address=self.smdp_address, **options)
                self._record(s, requester, call_id, function, digest, iccid, answer)
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
                return self._replay(stored, function, digest, response_model)
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
                self._record(s, requester, call_id, function, digest, iccid, answer)
        except IntegrityError:
            stored = self._stored(requester, call_id)
            if stored is not None:
                return self._replay(stored, function, digest, response_model)
        return answer

    def _stored(self, requester: str, call_id: str) -> Es2PlusCall | None:
        """The call recorded under this requester's identifier within the window, if any."""
        with read_session(self.engine) as s:
            return s.execute(select(Es2PlusCall).where(
                col(Es2PlusCall.requester) == requester, col(Es2PlusCall.call_id) == call_id,
                col(Es2PlusCall.created_at) >= utcnow() - self.call_window)).scalar_one_or_none()

    @staticmethod
    def _replay(stored: Es2PlusCall, function: str, digest: str,
                model: type[Response]) -> Response:
        """The recorded answer, when the call is the same one again: same function and the
        same request body (by digest). Anything else under a used identifier is refused —
        never answered with another call's result."""
        if stored.function != function:
            return Es2PlusRefused(
                codes.FUNCTION_INVALID,
                f"functionCallIdentifier {stored.call_id!r} was already used for "
                f"{stored.function}", "header.functionCallIdentifier").answer(model)
        # A record from before digests were kept (None) is trusted as before.
        if stored.body_digest is not None and stored.body_digest != digest:
            return Es2PlusRefused(
                codes.FUNCTION_INVALID,
                f"functionCallIdentifier {stored.call_id!r} was already used for another "
                f"{function} request; use a new identifier for a new call",
                "header.functionCallIdentifier").answer(model)
        return model.model_validate_json(stored.response)

    def _record(self, s: Session, requester: str, call_id: str, function: str, digest: str,
                iccid: str | None, answer: Response) -> None:
        # An expired record under the same identifier makes way for this call.
        s.execute(delete(Es2PlusCall).where(
            col(Es2PlusCall.requester) == requester, col(Es2PlusCall.call_id) == call_id,
            col(Es2PlusCall.created_at) < utcnow() - self.call_window))
        s.add(Es2PlusCall(requester=requester, call_id=call_id, function=function,
                          body_digest=digest, iccid=iccid,
                          response=answer.model_dump_json(by_alias=True, exclude_none=True)))
        s.flush()

    def _actor(self, requester: str) -> str:
        return f"{self.actor_prefix}:{requester}"[:128]


_HANDLERS: dict[str, Callable[..., Response]] = {
    "DownloadOrder": orders.download_order, "ConfirmOrder": orders.confirm_order,
    "CancelOrder": orders.cancel_order, "ReleaseProfile": orders.release_profile,
    "HandleDownloadProgressInfo": handle_download_progress_info,
}


# The functions that may release an order (its validity starts).
_RELEASING = frozenset({"ConfirmOrder", "ReleaseProfile"})


def _invalid(exc: ValidationError) -> Es2PlusRefused:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    missing = err["type"] == "missing"
    if where == "iccid" and missing:
        code = codes.ICCID_MISSING
    else:
        code = codes.FUNCTION_MISSING_ELEMENT if missing else codes.FUNCTION_INVALID
    return Es2PlusRefused(code, f"{where}: {err['msg']}", where)


class Es2PlusEndpointSettings(BaseModel):
    """Who may call simsmith's ES2+ endpoint (SIMSMITH_ES2PLUS_CREDENTIALS, _REQUESTERS,
    _CALL_WINDOW_HOURS) and how long the orders it releases stay valid
    (SIMSMITH_SMDP_ORDER_VALIDITY), a view of the settings tree (simcore.config)."""

    credentials: SecretStr | None = None
    requesters: str | None = None
    call_window_hours: float = Field(default=DEFAULT_CALL_WINDOW_HOURS, gt=0)
    order_validity: timedelta | None = None  # SIMSMITH_SMDP_ORDER_VALIDITY
    receive_other_points: str = DEFAULT_RECEIVED_POINTS  # SIMSMITH_ES2PLUS_RECEIVE_OTHER_POINTS

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Es2PlusEndpointSettings:
        """From `settings`, or the environment now."""
        return cls(**cls._values(settings if settings is not None else get_settings()))

    @staticmethod
    def _values(s: Settings) -> dict[str, Any]:
        return dict(credentials=s.es2plus_credentials, requesters=s.es2plus_requesters,
                    call_window_hours=s.es2plus_call_window_hours,
                    order_validity=s.smdp_order_validity,
                    receive_other_points=s.es2plus_receive_other_points)

    @model_validator(mode="before")
    @classmethod
    def _environment_fills_the_rest(cls, data: Any) -> Any:
        # Fields not given come from the environment, as with the settings class it replaced.
        if isinstance(data, dict) and not cls.model_fields.keys() <= data.keys():
            return {**cls._values(get_settings()), **data}
        return data

    @property
    def call_window(self) -> timedelta:
        return timedelta(hours=self.call_window_hours)

    def received_points(self) -> dict[int, ProfileState]:
        return parse_received_points(self.receive_other_points)

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
