"""The SM-DP+ port: how simsmith's eSIM order service drives an SM-DP+ (GSMA SGP.22 §5.3, ES2+).

`SmdpPort` is the whole contract, four calls shaped like the ES2+ functions:

- `download_order`  ES2+.DownloadOrder  (§5.3.1): reserve the profile `iccid`, linked to `eid` if
  given. Profile state available → allocated (no EID) or linked (EID).
- `confirm_order`   ES2+.ConfirmOrder   (§5.3.2): fix the matching ID (and the confirmation code,
  if any); with `release=True` the profile is released for download at once. allocated | linked
  → confirmed, or → released.
- `cancel_order`    ES2+.CancelOrder    (§5.3.3): undo an order; the profile goes back to
  available, or to unavailable when `final_status` says so (finalProfileStatusIndicator).
- `release_profile` ES2+.ReleaseProfile (§5.3.4): confirmed → released.

simsmith always names the ICCID: the inventory, not the SM-DP+, picks which profile a customer
gets. An implementation owns the mirrored `sim.profile_state`: when a call returns, the inventory's
profile state reflects the SM-DP+'s (through simcore.lifecycle, so with an audit and an outbox
event). A refusal raises `SmdpRefused` carrying the ES2+ subject and reason codes; a peer that
cannot be reached or answers nonsense raises `SmdpUnavailable`. Either way the implementation
leaves nothing half-written on its side.

`InProcessSmdp` is the embedded default: the SM-DP+'s state is the inventory itself, so each
call is one transaction on the store. `simcore.smdp_es2plus` (ES2+ over HTTPS with mutual TLS)
implements the same Protocol for a commercial SM-DP+.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from sqlalchemy import Engine, select
from sqlmodel import col

from simcore.db import transaction
from simcore.errors import SimsmithError
from simcore.lifecycle import (
    PROFILE_LIFECYCLE,
    ProfileState,
    TransitionNotAllowed,
    apply_transition,
)
from simcore.models import Sim

FinalStatus = Literal["available", "unavailable"]


class SmdpError(SimsmithError):
    """The SM-DP+ did not do what was asked."""


class SmdpRefused(SmdpError):
    """The SM-DP+ refused a call: ES2+ `subject_code` / `reason_code` (SGP.22 §5.3 and the
    table of subject and reason codes), e.g. 8.2.6 / 3.3 "matching ID already in use"."""

    def __init__(self, function: str, subject_code: str, reason_code: str, message: str) -> None:
        self.function = function
        self.subject_code = subject_code
        self.reason_code = reason_code
        super().__init__(f"{function} refused ({subject_code} / {reason_code}): {message}")


class SmdpUnavailable(SmdpError):
    """The SM-DP+ could not be reached, timed out or answered something that is not ES2+."""


@dataclass(frozen=True)
class DownloadOrderResult:
    iccid: str


@dataclass(frozen=True)
class ConfirmOrderResult:
    iccid: str
    matching_id: str
    smdp_address: str
    eid: str | None = None


@runtime_checkable
class SmdpPort(Protocol):
    """An SM-DP+ as simsmith's eSIM order service sees it (ES2+ functions, SGP.22 §5.3)."""

    @property
    def smdp_address(self) -> str:
        """The SM-DP+'s FQDN, as it goes into activation codes."""
        ...

    def download_order(self, *, iccid: str, eid: str | None = None,
                       profile_type: str | None = None) -> DownloadOrderResult: ...

    def confirm_order(self, *, iccid: str, matching_id: str, eid: str | None = None,
                      confirmation_code: str | None = None,
                      release: bool = True) -> ConfirmOrderResult: ...

    def cancel_order(self, *, iccid: str, matching_id: str | None = None,
                     eid: str | None = None,
                     final_status: FinalStatus = "available") -> None: ...

    def release_profile(self, *, iccid: str) -> None: ...


# ES2+ subject code 8.2.1 = Profile ICCID; reason codes 3.8 = refused, 1.2 = not allowed,
# 3.9 = unknown (SGP.22 §5.3 error tables).
_PROFILE = "8.2.1"


class InProcessSmdp:
    """The embedded SM-DP+: profile state lives in the inventory (`sim.profile_state`).

    Matching IDs and confirmation codes are kept by the order service (`esim_order`), which is
    this SM-DP+'s own order book; the calls below move the profile state machine only.
    """

    def __init__(self, engine: Engine, smdp_address: str, *, actor: str = "smdp") -> None:
        self._engine = engine
        self._address = smdp_address
        self._actor = actor

    @property
    def smdp_address(self) -> str:
        return self._address

    def _move(self, function: str, iccid: str, target: str, *, eid: str | None = None,
              only_from: frozenset[str] | None = None) -> None:
        with transaction(self._engine) as s:
            sim = s.execute(select(Sim).where(col(Sim.iccid) == iccid).with_for_update()
                            ).scalar_one_or_none()
            if sim is None or sim.kind != "esim":
                raise SmdpRefused(function, _PROFILE, "3.9", f"unknown profile ICCID {iccid}")
            if only_from is not None and sim.profile_state not in only_from:
                raise SmdpRefused(function, _PROFILE, "3.8",
                                  f"profile {iccid} is {sim.profile_state}")
            changes = {"eid": eid} if eid else None
            try:
                apply_transition(s, sim, target, actor=self._actor, machine=PROFILE_LIFECYCLE,
                                 changes=changes, details={"function": function})
            except TransitionNotAllowed as e:
                raise SmdpRefused(function, _PROFILE, "3.8", str(e)) from e

    def download_order(self, *, iccid: str, eid: str | None = None,
                       profile_type: str | None = None) -> DownloadOrderResult:
        target = ProfileState.LINKED if eid else ProfileState.ALLOCATED
        self._move("DownloadOrder", iccid, target, eid=eid,
                   only_from=frozenset({ProfileState.AVAILABLE}))
        return DownloadOrderResult(iccid)

    def confirm_order(self, *, iccid: str, matching_id: str, eid: str | None = None,
                      confirmation_code: str | None = None,
                      release: bool = True) -> ConfirmOrderResult:
        target = ProfileState.RELEASED if release else ProfileState.CONFIRMED
        self._move("ConfirmOrder", iccid, target, eid=eid,
                   only_from=frozenset({ProfileState.ALLOCATED, ProfileState.LINKED}))
        return ConfirmOrderResult(iccid, matching_id, self._address, eid)

    def cancel_order(self, *, iccid: str, matching_id: str | None = None,
                     eid: str | None = None, final_status: FinalStatus = "available") -> None:
        target = (ProfileState.UNAVAILABLE if final_status == "unavailable"
                  else ProfileState.AVAILABLE)
        self._move("CancelOrder", iccid, target)

    def release_profile(self, *, iccid: str) -> None:
        self._move("ReleaseProfile", iccid, ProfileState.RELEASED,
                   only_from=frozenset({ProfileState.CONFIRMED}))
