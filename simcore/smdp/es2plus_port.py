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

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine, select
from sqlmodel import col

from esim.es2plus import Es2PlusClient, Es2PlusError, Es2PlusFunctionFailed
from esim.pki import DEFAULT_CLIENT
from simcore.db import read_session, transaction
from simcore.lifecycle import (
    PROFILE_LIFECYCLE,
    ProfileState,
    StaleVersion,
    TransitionNotAllowed,
    apply_transition,
)
from simcore.models import Sim
from simcore.smdp.in_process import InProcessSmdp
from simcore.smdp.port import (
    ConfirmOrderResult,
    DownloadOrderResult,
    FinalStatus,
    SmdpError,
    SmdpPort,
    SmdpRefused,
    SmdpUnavailable,
)

P = ProfileState
_PROFILE_ICCID = "8.2.1"


class SmdpSettings(BaseSettings):
    """The external SM-DP+ (SIMSMITH_SMDP_*). Without a URL simsmith uses its embedded one."""

    model_config = SettingsConfigDict(env_prefix="SIMSMITH_SMDP_", extra="ignore")

    url: str | None = Field(default=None, description="ES2+ base URL of the SM-DP+")
    cert: Path | None = Field(default=None, description="Client certificate (PEM)")
    key: Path | None = Field(default=None, description="Client private key (PEM)")
    ca: Path | None = Field(default=None, description="CA bundle for the SM-DP+ certificate")
    requester_id: str = Field(default=DEFAULT_CLIENT,
                              description="functionRequesterIdentifier")
    timeout: float = Field(default=10.0, gt=0, description="Seconds per ES2+ call")
    address: str | None = Field(default=None, description="SM-DP+ FQDN for activation codes")


class Es2PlusSmdp:
    """SmdpPort over an `Es2PlusClient`, mirroring each executed call into the inventory."""

    def __init__(self, engine: Engine, client: Es2PlusClient, smdp_address: str, *,
                 actor: str = "smdp-es2plus", shared_store: bool = False) -> None:
        self._engine = engine
        self._client = client
        self._address = smdp_address
        self._actor = actor
        # The SM-DP+ is simsmith's own endpoint on this very store (the embedded default): it
        # checks and moves the profile state itself, in the transaction of each call, so the
        # check before and the mirror after would only read and lock the same row again.
        self._shared_store = shared_store

    def __repr__(self) -> str:
        return f"Es2PlusSmdp({self._client!r}, address={self._address!r})"

    @property
    def smdp_address(self) -> str:
        return self._address

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
        if result.response.iccid and result.response.iccid.rstrip("Ff") != iccid:
            raise SmdpUnavailable(f"DownloadOrder for {iccid}: the SM-DP+ reserved "
                                  f"{result.response.iccid} instead")
        self._mirror("DownloadOrder", iccid, target, eid=eid, call_id=result.call_id)
        return DownloadOrderResult(iccid)

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
        self._mirror("ConfirmOrder", iccid, target, eid=linked, call_id=result.call_id)
        return ConfirmOrderResult(iccid, answer.matching_id or matching_id,
                                  answer.smdp_address or self._address, linked)

    def cancel_order(self, *, iccid: str, matching_id: str | None = None,
                     eid: str | None = None, final_status: FinalStatus = "available") -> None:
        target = P.UNAVAILABLE if final_status == "unavailable" else P.AVAILABLE
        self._check("CancelOrder", iccid, target)
        try:
            result = self._client.cancel_order(
                iccid=iccid, eid=eid, matching_id=matching_id,
                final_profile_status="Unavailable" if final_status == "unavailable"
                else "Available")
        except Es2PlusError as e:
            raise _port_error(e) from e
        self._mirror("CancelOrder", iccid, target, call_id=result.call_id,
                     unlink=target == P.AVAILABLE)

    def release_profile(self, *, iccid: str) -> None:
        self._check("ReleaseProfile", iccid, P.RELEASED, only_from={P.CONFIRMED})
        try:
            result = self._client.release_profile(iccid=iccid)
        except Es2PlusError as e:
            raise _port_error(e) from e
        self._mirror("ReleaseProfile", iccid, P.RELEASED, call_id=result.call_id)

    # --- the inventory side --------------------------------------------------------------------

    def _check(self, function: str, iccid: str, target: str,
               only_from: set[str] | None = None) -> None:
        """Refuse before calling out when the inventory's own state does not allow the move."""
        if self._shared_store:
            return
        with read_session(self._engine) as s:
            sim = s.execute(select(Sim).where(col(Sim.iccid) == iccid)).scalar_one_or_none()
        if sim is None or sim.kind != "esim":
            raise SmdpRefused(function, _PROFILE_ICCID, "3.9", f"unknown profile ICCID {iccid}")
        current = sim.profile_state
        if (only_from is not None and current not in only_from) or current is None \
                or target not in PROFILE_LIFECYCLE.allowed(current):
            raise SmdpRefused(function, _PROFILE_ICCID, "3.5",
                              f"profile {iccid} is {current}; {function} cannot move it to "
                              f"{target}")

    def _mirror(self, function: str, iccid: str, target: str, *, call_id: str,
                eid: str | None = None, unlink: bool = False) -> None:
        if self._shared_store:
            return  # the endpoint moved the state in this store, in the call's transaction
        with transaction(self._engine) as s:
            sim = s.execute(select(Sim).where(col(Sim.iccid) == iccid).with_for_update()
                            ).scalar_one()
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
    return SmdpUnavailable(str(e))


def es2plus_smdp(engine: Engine, settings: SmdpSettings, *, shared_store: bool = False,
                 keepalive_expiry: float = 5.0) -> Es2PlusSmdp:
    """The port for the SM-DP+ `settings` describe (settings.url must be set). `shared_store`:
    the SM-DP+ is simsmith's own endpoint on `engine`'s store (no check or mirror around
    calls)."""
    if not settings.url:
        raise ValueError("SIMSMITH_SMDP_URL is not set")
    if bool(settings.cert) != bool(settings.key):
        raise ValueError("SIMSMITH_SMDP_CERT and SIMSMITH_SMDP_KEY go together")
    client = Es2PlusClient(settings.url, settings.requester_id, ca=settings.ca,
                           cert=settings.cert, key=settings.key, timeout=settings.timeout,
                           keepalive_expiry=keepalive_expiry)
    address = settings.address or urlsplit(settings.url).hostname or ""
    return Es2PlusSmdp(engine, client, address, shared_store=shared_store)


def configured_smdp(engine: Engine, smdp_address: str) -> SmdpPort:
    """The SM-DP+ the environment configures: ES2+ to SIMSMITH_SMDP_URL when set (activation
    codes name SIMSMITH_SMDP_ADDRESS, the SM-DP+'s own answer, or the URL's host), else the
    embedded in-process one with `smdp_address`."""
    settings = SmdpSettings()
    if settings.url:
        return es2plus_smdp(engine, settings)
    return InProcessSmdp(engine, smdp_address)
