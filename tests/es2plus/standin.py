"""An SM-DP+ stand-in for the eSIM order saga's tests: its state is the store's profile state
(as simsmith's own SM-DP+ keeps it) and it fails at the step it is told to, the way it is told
to (a refusal, a timeout after executing, an answer simsmith cannot use, a CancelOrder that
fails)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Engine

from simcore.smdp.in_process import InProcessSmdp
from simcore.smdp.port import (
    ConfirmOrderResult,
    DownloadOrderResult,
    FinalStatus,
    Settle,
    SmdpRefused,
    SmdpUnavailable,
)

ADDRESS = "smdp.example.com"


@dataclass
class StandIn:
    """An SM-DP+ whose state is the store's profile state (as simsmith's own is) and which fails
    as told: `fail` names the step and the way."""

    engine: Engine
    fail: str = ""
    cancel_fails: bool = False
    answer: dict[str, Any] = field(default_factory=dict)  # ConfirmOrder answer overrides
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.inner = InProcessSmdp(self.engine, ADDRESS)

    @property
    def smdp_address(self) -> str:
        return ADDRESS

    def download_order(self, *, iccid: str, eid: str | None = None,
                       profile_type: str | None = None) -> DownloadOrderResult:
        self.calls.append(("DownloadOrder", {"iccid": iccid}))
        if self.fail == "download-refused":
            raise SmdpRefused("DownloadOrder", "8.2.1", "3.7", "not available")
        result = self.inner.download_order(iccid=iccid, eid=eid)
        if self.fail == "download-timeout":  # executed, the answer lost
            raise SmdpUnavailable("DownloadOrder: read timeout")
        return result

    def confirm_order(self, *, iccid: str, matching_id: str, eid: str | None = None,
                      confirmation_code: str | None = None,
                      release: bool = True) -> ConfirmOrderResult:
        self.calls.append(("ConfirmOrder", {"iccid": iccid, "matching_id": matching_id}))
        if self.fail == "confirm-refused":
            raise SmdpRefused("ConfirmOrder", "8.2.6", "3.3", "matching ID already in use")
        result = self.inner.confirm_order(iccid=iccid, matching_id=matching_id, eid=eid,
                                          release=release)
        if self.fail == "confirm-timeout":
            raise SmdpUnavailable("ConfirmOrder: read timeout")
        return replace(result, **self.answer)

    def cancel_order(self, *, iccid: str, matching_id: str | None = None,
                     eid: str | None = None, final_status: FinalStatus = "available",
                     settle: Settle | None = None) -> None:
        self.calls.append(("CancelOrder", {"iccid": iccid, "final_status": final_status}))
        if self.cancel_fails:
            raise SmdpUnavailable("CancelOrder: connection refused")
        self.inner.cancel_order(iccid=iccid, final_status=final_status, settle=settle)

    def release_profile(self, *, iccid: str) -> None:
        self.inner.release_profile(iccid=iccid)
