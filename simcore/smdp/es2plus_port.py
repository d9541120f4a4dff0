"""The SM-DP+ port over ES2+ (simcore.smdp.port.SmdpPort → GSMA SGP.22 §5.3 over HTTPS with mutual
TLS): how simsmith drives a commercial SM-DP+ (or its own ES2+ endpoint on another host).

Configured from the environment:

    SIMSMITH_SMDP_URL           https://smdp.example.com (base URL; the ES2+ paths are appended)
    SIMSMITH_SMDP_CERT / _KEY   our client certificate and key (PEM) for mutual TLS
    SIMSMITH_SMDP_CA            CA bundle that signs the SM-DP+'s server certificate
    SIMSMITH_SMDP_REQUESTER_ID  our functionRequesterIdentifier, as agreed with the SM-DP+
    SIMSMITH_SMDP_TIMEOUT       seconds per call (default 10)
    SIMSMITH_SMDP_ADDRESS       the SM-DP+ FQDN for activation codes when its ConfirmOrder answer
                                names none (default: the URL's host)

Each call first checks that the inventory's profile state allows the move (so simsmith never
asks the SM-DP+ for what its own records refuse), then calls the SM-DP+, then mirrors the new
state into `sim.profile_state` (simcore.lifecycle: state, audit, outbox). A refusal raises
`SmdpRefused` with the SM-DP+'s subject and reason codes; no answer, a timeout or an answer that
is not ES2+ raises `SmdpUnavailable`. In both cases the inventory is left as it was. (A timeout
leaves open whether the SM-DP+ executed the call; the order service's CancelOrder settles it.)
When the SM-DP+ is simsmith's own endpoint on the same store, it has already moved the state:
the mirror sees the target state and writes nothing more.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Engine, select
from sqlmodel import col

from esim.es2plus import Es2PlusClient, Es2PlusError, Es2PlusFunctionFailed
from esim.es2plus.errors import Es2PlusTransportError
from simcore import audit
from simcore.config import DEFAULT_REQUESTER_ID, Settings, get_settings
from simcore.db import read_session, transaction
from simcore.errors import InvalidInput
from simcore.lifecycle import (
    PROFILE_LIFECYCLE,
    ProfileState,
    StaleVersion,
    TransitionNotAllowed,
    apply_transition,
)
from simcore.models import Sim
from simcore.smdp.address import check_matching_id, check_smdp_address
from simcore.smdp.in_process import InProcessSmdp
from simcore.smdp.port import (
    ConfirmOrderResult,
    DownloadOrderResult,
    FinalStatus,
    Settle,
    SmdpAnswerInvalid,
    SmdpError,
    SmdpPort,
    SmdpRefused,
    SmdpUnavailable,
)

log = logging.getLogger(__name__)
P = ProfileState
_PROFILE_ICCID = "8.2.1"


class SmdpSettings(BaseModel):
    """The external SM-DP+ (SIMSMITH_SMDP_*), a view of the settings tree (simcore.config).
    Without a URL simsmith uses its embedded one."""

    url: str | None = None
    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    requester_id: str = DEFAULT_REQUESTER_ID
    timeout: float = Field(default=10.0, gt=0)
    address: str | None = None  # SIMSMITH_SMDP_ADDRESS when set, else the URL's host
    allow_lab_address: bool = False

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SmdpSettings:
        """From `settings`, or the environment now."""
        return cls(**cls._values(settings if settings is not None else get_settings()))

    @staticmethod
    def _values(s: Settings) -> dict[str, Any]:
        return dict(url=s.smdp_url, cert=s.smdp_cert, key=s.smdp_key, ca=s.smdp_ca,
                    requester_id=s.smdp_requester_id, timeout=s.smdp_timeout,
                    address=s.smdp_address if "smdp_address" in s.model_fields_set else None,
                    allow_lab_address=s.smdp_allow_lab_address)

    @model_validator(mode="before")
    @classmethod
    def _environment_fills_the_rest(cls, data: Any) -> Any:
        # Built with some fields only (SmdpSettings(url=…)): the rest from the environment, as
        # the settings class this view replaced did.
        if isinstance(data, dict) and not cls.model_fields.keys() <= data.keys():
            return {**cls._values(get_settings()), **data}
        return data


class Es2PlusSmdp:
    """SmdpPort over an `Es2PlusClient`, mirroring each executed call into the inventory."""

    def __init__(self, engine: Engine, client: Es2PlusClient, smdp_address: str, *,
                 actor: str = "smdp-es2plus", shared_store: bool = False,
                 allow_lab_address: bool = False) -> None:
        self._engine = engine
        self._client = client
        self._address = smdp_address
        self._actor = actor
        self._allow_lab_address = allow_lab_address
        # The SM-DP+ is simsmith's own endpoint on this very store (the embedded default): it
        # checks and moves the profile state itself, in the transaction of each call, so the
        # check before and the mirror after would only read and lock the same row again.
        self._shared_store = shared_store

    def __repr__(self) -> str:
        return f"Es2PlusSmdp({self._client!r}, address={self._address!r})"

    @property
    def smdp_address(self) -> str:
        return self._address

    @property
    def shared_store(self) -> bool:
        """The SM-DP+ is simsmith's own, on this very store: what the store says of a profile
        is what the SM-DP+ holds."""
        return self._shared_store

    def close(self) -> None:
        self._client.close()

    # --- SmdpPort ------------------------------------------------------------------------------

    def download_order(self, *, iccid: str, eid: str | None = None,
                       profile_type: str | None = None) -> DownloadOrderResult:
        target = P.LINKED if eid else P.ALLOCATED
        self._check("DownloadOrder", iccid, target, only_from={P.AVAILABLE})
        try:
            result = self._client.download_order(iccid=iccid, eid=eid, profile_type=profile_type)
        except Es2PlusError as e:
            raise _port_error(e) from e
        reserved = result.response.iccid
        if reserved and reserved.rstrip("Ff") != iccid:
            self._release_foreign_reservation(iccid, reserved[:20], eid)
        self._mirror("DownloadOrder", iccid, target, eid=eid, call_id=result.call_id)
        return DownloadOrderResult(iccid)

    def _release_foreign_reservation(self, asked: str, reserved: str, eid: str | None) -> None:
        """DownloadOrder reserved another profile than the one asked for: CancelOrder it at
        once (it was available before), record what happened, and refuse the answer. Never a
        reservation left dangling, and never reported as an SM-DP+ that cannot be reached."""
        cancelled = True
        try:
            self._client.cancel_order(iccid=reserved, eid=eid,
                                      final_profile_status="Available")
        except Es2PlusError as e:
            cancelled = False
            log.error("DownloadOrder for %s: the SM-DP+ reserved %s instead, and cancelling "
                      "that reservation failed: %s", asked, reserved, e)
        details = {"function": "DownloadOrder", "asked_iccid": asked, "reserved_iccid": reserved,
                   "cancelled": cancelled}
        with transaction(self._engine) as s:
            audit.append(s, actor=self._actor, action="esim_profile.foreign_reservation",
                         subject_type="esim_profile", subject_id=reserved, details=details,
                         outbox=audit.Outbox("esim_profile.foreign_reservation", "esim_profile",
                                             reserved, details))
        raise SmdpAnswerInvalid(
            f"DownloadOrder for {asked}: the SM-DP+ reserved {reserved} instead; that "
            + ("reservation was cancelled (CancelOrder, Available)" if cancelled else
               "reservation could not be cancelled and is recorded "
               "(event esim_profile.foreign_reservation)"))

    def confirm_order(self, *, iccid: str, matching_id: str, eid: str | None = None,
                      confirmation_code: str | None = None,
                      release: bool = True) -> ConfirmOrderResult:
        target = P.RELEASED if release else P.CONFIRMED
        self._check("ConfirmOrder", iccid, target, only_from={P.ALLOCATED, P.LINKED})
        try:
            result = self._client.confirm_order(
                iccid=iccid, eid=eid, matching_id=matching_id,
                confirmation_code=confirmation_code, release_flag=release)
        except Es2PlusError as e:
            raise _port_error(e) from e
        answer = result.response
        linked = answer.eid or eid
        # The SM-DP+'s answer is the truth: its Matching ID and address go into the activation
        # code (ours only fill what it leaves out), so check they can.
        try:
            got_matching_id = check_matching_id(answer.matching_id or matching_id)
            address = check_smdp_address(answer.smdp_address or self._address,
                                         field="ConfirmOrder smdpAddress",
                                         allow_lab=self._allow_lab_address)
        except InvalidInput as e:
            raise SmdpAnswerInvalid(f"ConfirmOrder for {iccid}: unusable answer: {e}") from e
        self._mirror("ConfirmOrder", iccid, target, eid=linked, call_id=result.call_id)
        return ConfirmOrderResult(iccid, got_matching_id, address, linked)

    def cancel_order(self, *, iccid: str, matching_id: str | None = None,
                     eid: str | None = None, final_status: FinalStatus = "available",
                     settle: Settle | None = None) -> None:
        target = P.UNAVAILABLE if final_status == "unavailable" else P.AVAILABLE
        # Only that the profile is ours: CancelOrder also settles doubt — after a timeout the
        # SM-DP+ may hold a reservation the inventory never mirrored.
        self._check("CancelOrder", iccid, target, exists_only=True)
        try:
            result = self._client.cancel_order(
                iccid=iccid, eid=eid, matching_id=matching_id,
                final_profile_status="Unavailable" if final_status == "unavailable"
                else "Available")
        except Es2PlusError as e:
            raise _port_error(e) from e
        self._mirror("CancelOrder", iccid, target, call_id=result.call_id,
                     unlink=target == P.AVAILABLE, settle=settle)

    def release_profile(self, *, iccid: str) -> None:
        self._check("ReleaseProfile", iccid, P.RELEASED, only_from={P.CONFIRMED})
        try:
            result = self._client.release_profile(iccid=iccid)
        except Es2PlusError as e:
            raise _port_error(e) from e
        self._mirror("ReleaseProfile", iccid, P.RELEASED, call_id=result.call_id)

    # --- the inventory side --------------------------------------------------------------------

    def _check(self, function: str, iccid: str, target: str,
               only_from: set[str] | None = None, exists_only: bool = False) -> None:
        """Refuse before calling out when the inventory's own state does not allow the move."""
        if self._shared_store:
            return
        with read_session(self._engine) as s:
            sim = s.execute(select(Sim).where(col(Sim.iccid) == iccid)).scalar_one_or_none()
        if sim is None or sim.kind != "esim":
            raise SmdpRefused(function, _PROFILE_ICCID, "3.9", f"unknown profile ICCID {iccid}")
        if exists_only:
            return
        current = sim.profile_state
        if (only_from is not None and current not in only_from) or current is None \
                or target not in PROFILE_LIFECYCLE.allowed(current):
            raise SmdpRefused(function, _PROFILE_ICCID, "3.5",
                              f"profile {iccid} is {current}; {function} cannot move it to "
                              f"{target}")

    def _mirror(self, function: str, iccid: str, target: str, *, call_id: str,
                eid: str | None = None, unlink: bool = False,
                settle: Settle | None = None) -> None:
        if self._shared_store:
            # The endpoint moved the state in this store, in the call's transaction.
            if settle is not None:
                with transaction(self._engine) as s:
                    settle(s)
            return
        with transaction(self._engine) as s:
            sim = s.execute(select(Sim).where(col(Sim.iccid) == iccid).with_for_update()
                            ).scalar_one()
            if settle is not None:
                settle(s)
            if sim.profile_state == target:
                return  # the SM-DP+ shares this store (simsmith's own endpoint): already done
            changes: dict[str, str | None] = {}
            if eid and sim.eid != eid:
                changes["eid"] = eid
            if unlink and sim.eid:
                changes["eid"] = None
            try:
                apply_transition(s, sim, target, actor=self._actor, machine=PROFILE_LIFECYCLE,
                                 changes=changes or None,
                                 details={"function": function, "es2plus_call": call_id})
            except (TransitionNotAllowed, StaleVersion) as e:
                raise SmdpError(f"{function} for {iccid} executed by the SM-DP+ but not "
                                f"mirrored: {e}") from e


def _port_error(e: Es2PlusError) -> SmdpError:
    if isinstance(e, Es2PlusFunctionFailed) and e.code is not None:
        return SmdpRefused(e.function, e.code.subject, e.code.reason,
                           e.peer_message or e.code.description)
    return SmdpUnavailable(str(e), maybe_executed=not (
        isinstance(e, Es2PlusTransportError) and not e.request_sent))


def es2plus_smdp(engine: Engine, settings: SmdpSettings, *, shared_store: bool = False,
                 keepalive_expiry: float = 5.0) -> Es2PlusSmdp:
    """The port for the SM-DP+ `settings` describe (settings.url must be set). `shared_store`:
    the SM-DP+ is simsmith's own endpoint on `engine`'s store (no check or mirror around
    calls)."""
    if not settings.url:
        raise ValueError("SIMSMITH_SMDP_URL is not set")
    if bool(settings.cert) != bool(settings.key):
        raise ValueError("SIMSMITH_SMDP_CERT and SIMSMITH_SMDP_KEY go together")
    address = check_smdp_settings("", settings)
    client = Es2PlusClient(settings.url, settings.requester_id, ca=settings.ca,
                           cert=settings.cert, key=settings.key, timeout=settings.timeout,
                           keepalive_expiry=keepalive_expiry)
    return Es2PlusSmdp(engine, client, address, shared_store=shared_store,
                       allow_lab_address=settings.allow_lab_address)


def check_smdp_settings(smdp_address: str, settings: SmdpSettings | None = None) -> str:
    """Start-up check of the SM-DP+ settings: the address activation codes will name must be
    one an LPA can use (simcore.smdp.address). With SIMSMITH_SMDP_URL that is
    SIMSMITH_SMDP_ADDRESS or the URL's host; else `smdp_address` (the embedded SM-DP+'s).
    Returns the address; SmdpAddressInvalid (an InvalidInput naming the setting) if not."""
    settings = settings or SmdpSettings.from_settings()
    if settings.url:
        return check_smdp_address(
            settings.address or urlsplit(settings.url).hostname or "",
            field="SIMSMITH_SMDP_ADDRESS" if settings.address else "SIMSMITH_SMDP_URL's host",
            allow_lab=settings.allow_lab_address)
    return check_smdp_address(smdp_address, allow_lab=settings.allow_lab_address)


def configured_smdp(engine: Engine, smdp_address: str) -> SmdpPort:
    """The SM-DP+ the environment configures: ES2+ to SIMSMITH_SMDP_URL when set (activation
    codes name SIMSMITH_SMDP_ADDRESS, the SM-DP+'s own answer, or the URL's host), else the
    embedded in-process one with `smdp_address`."""
    settings = SmdpSettings.from_settings()
    if settings.url:
        return es2plus_smdp(engine, settings)
    return InProcessSmdp(engine, check_smdp_settings(smdp_address, settings),
                         order_validity=get_settings().smdp_order_validity)
