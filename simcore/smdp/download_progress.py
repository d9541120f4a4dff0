"""The operator side of ES2+: HandleDownloadProgressInfo (GSMA SGP.22 v2.5 §5.3.5), an SM-DP+
telling simsmith how a profile's download goes, mirrored into the inventory: BPP download done →
downloaded, BPP installation done → installed, any failure → error (the reason, subject and
reason codes in the audit and outbox records). SGP.22 numbers points 1-4 only; SM-DP+s forward
the eUICC's other notifications (delete, enable, disable) under numbers of their own — one
commercial SM-DP+ (and simsmith's by default) 5 / 101 / 102, another 8 / 6 / 7. Which numbers
move the profile is a setting, SIMSMITH_ES2PLUS_RECEIVE_OTHER_POINTS (`parse_received_points`;
default 5=deleted,101=enabled,102=disabled). Any other point is recorded and moves nothing, as
does a notification that would move the state backwards or to where it already is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from esim.es2plus.messages import (
    HandleDownloadProgressInfoRequest,
    HandleDownloadProgressInfoResponse,
    NotificationPoint,
    success_header,
)
from simcore import audit
from simcore.errors import InvalidInput
from simcore.lifecycle import PROFILE_LIFECYCLE, ProfileState, apply_transition
from simcore.smdp.profiles import iccid_digits, locked_profile

P = ProfileState

_POINT_NAMES = {
    NotificationPoint.ELIGIBILITY_AND_RETRY_LIMIT_CHECK: "eligibility and retry limit check",
    NotificationPoint.CONFIRMATION_FAILURE: "confirmation failure",
    NotificationPoint.BPP_DOWNLOAD: "BPP download",
    NotificationPoint.BPP_INSTALLATION: "BPP installation",
}
_STATE_NAMES = {P.DELETED: "deletion", P.ENABLED: "profile enabled",
                P.DISABLED: "profile disabled"}
_OTHER = {"deleted": P.DELETED, "enabled": P.ENABLED, "disabled": P.DISABLED}
DEFAULT_RECEIVED_POINTS = "5=deleted,101=enabled,102=disabled"
_FIELD = "es2plus_receive_other_points"


def parse_received_points(text: str) -> dict[int, ProfileState]:
    """`5=deleted,101=enabled,102=disabled` → the state each of an SM-DP+'s own points moves
    the profile to. Several numbers may name one state (two SM-DP+s' numbering side by side:
    `5=deleted,101=enabled,102=disabled,8=deleted,6=enabled,7=disabled`); empty: only SGP.22's
    points move anything. Points 1–4 are SGP.22's own and cannot be reused."""
    out: dict[int, ProfileState] = {}
    for i, item in enumerate(p.strip() for p in text.split(",")):
        if not item:
            continue
        number, sep, name = item.partition("=")
        field = f"{_FIELD}[{i}]"
        if not sep:
            raise InvalidInput(field, "not point=state", value=item[:32],
                               expected="N=deleted, N=enabled or N=disabled")
        if not number.strip().isdigit() or not 5 <= int(number) <= 999:
            raise InvalidInput(field, "not a point number", value=item[:32],
                               expected="an integer 5-999 (1-4 are SGP.22's download points)")
        state = _OTHER.get(name.strip())
        if state is None:
            raise InvalidInput(field, "not a state", value=item[:32],
                               expected="deleted, enabled or disabled")
        if int(number) in out:
            raise InvalidInput(field, "point given twice", value=item[:32],
                               expected="each point number at most once")
        out[int(number)] = state
    return out


RECEIVED_POINTS = parse_received_points(DEFAULT_RECEIVED_POINTS)
# Executed points that move the profile besides the other notifications' (above).
_DOWNLOAD_TARGETS = {NotificationPoint.BPP_DOWNLOAD: P.DOWNLOADED,
                     NotificationPoint.BPP_INSTALLATION: P.INSTALLED}


def handle_download_progress_info(
    s: Session, req: HandleDownloadProgressInfoRequest, requester: str, *, actor: str,
    smdp_address: str, received_points: Mapping[int, ProfileState] = RECEIVED_POINTS,
) -> HandleDownloadProgressInfoResponse:
    iccid = iccid_digits(req.iccid) or ""
    sim = locked_profile(s, iccid)
    status = req.notification_point_status
    scd = status.status_code_data
    point = req.notification_point_id
    other = received_points.get(point)
    name = _POINT_NAMES.get(point) or (_STATE_NAMES[other] if other is not None else None)
    details: dict[str, Any] = {
        "function": "HandleDownloadProgressInfo", "smdp": requester,
        "notification_point": point, "notification_point_name": name,
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
        what = name or f"notification point {point}"
        reason = f"{what} {status.status}"
        if scd is not None:
            reason += f" {scd.subject_code}/{scd.reason_code} ({scd.code.description})"
            if scd.message:
                reason += f": {scd.message}"
    else:
        target = _DOWNLOAD_TARGETS.get(point, other)
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
