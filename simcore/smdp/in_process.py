"""The embedded SM-DP+ behind simsmith's SmdpPort (simcore.smdp.port; GSMA SGP.22 §5.3 ES2+
functions): profile state lives in the inventory (`sim.profile_state`), each call is one
transaction on the store.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select
from sqlmodel import col

from simcore.db import transaction
from simcore.lifecycle import (
    PROFILE_LIFECYCLE,
    ProfileState,
    TransitionNotAllowed,
    apply_transition,
)
from simcore.models import Sim
from simcore.smdp.order_validity import record_confirmed, record_released, valid_until
from simcore.smdp.port import (
    ConfirmOrderResult,
    DownloadOrderResult,
    FinalStatus,
    Settle,
    SmdpRefused,
)

# ES2+ subject code 8.2.1 = Profile ICCID; reason codes 3.8 = refused, 1.2 = not allowed,
# 3.9 = unknown (SGP.22 §5.3 error tables).
_PROFILE = "8.2.1"


class InProcessSmdp:
    """The embedded SM-DP+: profile state lives in the inventory (`sim.profile_state`).

    Matching IDs and confirmation codes are kept by the order service (`esim_order`), which is
    this SM-DP+'s own order book; the calls below move the profile state machine only.
    """

    def __init__(self, engine: Engine, smdp_address: str, *, actor: str = "smdp",
                 order_validity: timedelta | None = None) -> None:
        self._engine = engine
        self._address = smdp_address
        self._actor = actor
        # How long a released order stays valid (SIMSMITH_SMDP_ORDER_VALIDITY); None: ever.
        self.order_validity = order_validity

    @property
    def smdp_address(self) -> str:
        return self._address

    def _move(self, function: str, iccid: str, target: str, *, eid: str | None = None,
              only_from: frozenset[str] | None = None, settle: Settle | None = None) -> None:
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
            if settle is not None:
                settle(s)

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
        expires_at = valid_until(self.order_validity) if release else None
        self._move("ConfirmOrder", iccid, target, eid=eid,
                   only_from=frozenset({ProfileState.ALLOCATED, ProfileState.LINKED}),
                   settle=lambda s: record_confirmed(s, iccid, matching_id, expires_at))
        return ConfirmOrderResult(iccid, matching_id, self._address, eid)

    def cancel_order(self, *, iccid: str, matching_id: str | None = None,
                     eid: str | None = None, final_status: FinalStatus = "available",
                     settle: Settle | None = None) -> None:
        target = (ProfileState.UNAVAILABLE if final_status == "unavailable"
                  else ProfileState.AVAILABLE)
        self._move("CancelOrder", iccid, target, settle=settle)

    def release_profile(self, *, iccid: str) -> None:
        expires_at = valid_until(self.order_validity)
        self._move("ReleaseProfile", iccid, ProfileState.RELEASED,
                   only_from=frozenset({ProfileState.CONFIRMED}),
                   settle=lambda s: record_released(s, iccid, expires_at))
