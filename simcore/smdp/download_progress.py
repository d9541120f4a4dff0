"""The operator side of ES2+: HandleDownloadProgressInfo (GSMA SGP.22 v2.5 §5.3.5), an SM-DP+
telling simsmith how a profile's download goes, mirrored into the inventory: BPP download done →
downloaded, BPP installation done → installed, any failure → error (the reason, subject and
reason codes in the audit and outbox records). SGP.22 numbers points 1-4 only; deletion (5),
enabled (101) and disabled (102) are how one commercial SM-DP+ (and simsmith's by default)
forwards the eUICC's other notifications, and move the profile too. Any other point is recorded
and moves nothing, as does a notification that would move the state backwards or to where it
already is.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from esim.es2plus.messages import (
    HandleDownloadProgressInfoRequest,
    HandleDownloadProgressInfoResponse,
    NotificationPoint,
    success_header,
)
from simcore import audit
from simcore.lifecycle import PROFILE_LIFECYCLE, ProfileState, apply_transition
from simcore.smdp.profiles import iccid_digits, locked_profile

P = ProfileState

_POINT_NAMES = {
    NotificationPoint.ELIGIBILITY_AND_RETRY_LIMIT_CHECK: "eligibility and retry limit check",
    NotificationPoint.CONFIRMATION_FAILURE: "confirmation failure",
    NotificationPoint.BPP_DOWNLOAD: "BPP download",
    NotificationPoint.BPP_INSTALLATION: "BPP installation",
    5: "deletion",
    101: "profile enabled",
    102: "profile disabled",
}
# Executed points that move the profile: SGP.22's 3 and 4, and 5/101/102, which a commercial
# SM-DP+ (and simsmith's by default, simcore.smdp.progress_notify) sends for delete/enable/disable.
_EXECUTED_TARGETS = {NotificationPoint.BPP_DOWNLOAD: P.DOWNLOADED,
                     NotificationPoint.BPP_INSTALLATION: P.INSTALLED,
                     5: P.DELETED, 101: P.ENABLED, 102: P.DISABLED}


def handle_download_progress_info(
    s: Session, req: HandleDownloadProgressInfoRequest, requester: str, *, actor: str,
    smdp_address: str,
) -> HandleDownloadProgressInfoResponse:
    iccid = iccid_digits(req.iccid) or ""
    sim = locked_profile(s, iccid)
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
    else:
        target = _EXECUTED_TARGETS.get(point)
    current = sim.profile_state
    if target is not None and current != target and current is not None \
            and target in PROFILE_LIFECYCLE.allowed(current):
        apply_transition(s, sim, target, actor=actor,
                         machine=PROFILE_LIFECYCLE, reason=reason, details=details)
    elif target is None or current != target:
        # Progress that moves nothing (eligibility checked, a late "downloaded" after
        # "installed"): recorded, with its event, so nothing the SM-DP+ said is lost.
        details.update(profile_state=current, applied=False)
        if reason:
            details["reason"] = reason
        audit.append(s, actor=actor, action="esim_profile.download_progress",
                     subject_type="esim_profile", subject_id=iccid, details=details,
                     outbox=audit.Outbox("esim_profile.download_progress", "esim_profile",
                                         iccid, details))
    return HandleDownloadProgressInfoResponse(header=success_header())
