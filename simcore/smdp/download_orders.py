"""The SM-DP+'s download orders over the store: what the ES9+ core (simcore.smdp.es9plus) reads
and reports, as `sim.profile_state` moves (GSMA SGP.22 v2.5 §3.1.3 Profile Download and
Installation; §5.3.5 the states an operator is told; §5.6 ES9+).

    released (ConfirmOrder / ReleaseProfile) → downloaded (BPP delivered, GetBoundProfilePackage)
        → installed (ProfileInstallationResult success, HandleNotification)
        → error (installation failed, confirmation code attempts exhausted, session cancelled
          by the eUICC for a reason other than postponed / timeout) — with the reason
    installed → enabled / disabled / deleted (other notifications, HandleNotification)

The order for a matching ID is simsmith's SM-DP+ order book (`es2plus_order`, ConfirmOrder over
ES2+) or, for the in-process SM-DP+, the order service's `esim_order`; its profile must be
`released` — or `downloaded` and not yet installed, the re-download SGP.22 allows when the
eUICC never confirmed the installation (the same EID: the profile is bound to it on delivery),
up to `DownloadLimits.downloads` BPPs per order. Wrong confirmation codes are counted per order
(`smdp_download_counter`); the last allowed one ends the order in `error`.

Each change is one transaction: the state change, its audit record and its outbox event
(simcore.lifecycle.apply_transition → webhooks) together; a report that moves nothing (a late
notification, a re-download) is still audited and emitted. `progress`, when given, is called in
the same transaction with each report — the hook for ES2+.HandleDownloadProgressInfo to the
operator (§5.3.5).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from esim.es2plus.codes import StatusCode
from esim.es2plus.messages import NotificationPoint
from esim.saip.coding import iccid_to_ef
from esim.sgp22 import es9plus as wire
from esim.sgp22 import schema
from esim.sgp22.cancel_session import CancelSessionReason
from esim.sgp22.notifications import NotificationEvent
from simcore import audit
from simcore.db import read_session, transaction
from simcore.lifecycle import PROFILE_LIFECYCLE, ProfileState, apply_transition
from simcore.models import Batch, Sim, utcnow
from simcore.models_api import EsimOrder
from simcore.smdp.es9plus import ReleasedOrder
from simcore.smdp.es9plus_models import SmdpDownloadCounter
from simcore.smdp.models import Es2PlusOrder

P = ProfileState
DEFAULT_CC_ATTEMPTS = 3
DEFAULT_DOWNLOADS = 3
_DOWNLOADABLE = frozenset({P.RELEASED, P.DOWNLOADED})
_NOT_YET_RELEASED = frozenset({P.ALLOCATED, P.LINKED, P.CONFIRMED})  # 8.2 / 1.2
# Which notification moves an installed profile where (SGP.22 §4.4 NotificationEvent).
_NOTIFIED = {NotificationEvent.ENABLE: P.ENABLED, NotificationEvent.DISABLE: P.DISABLED,
             NotificationEvent.DELETE: P.DELETED}
# A cancellation that leaves the order to be downloaded later (the user postponed it, the LPA
# timed out); any other reason ends it in error for the operator to see.
_CANCEL_KEEPS_ORDER = frozenset({CancelSessionReason.POSTPONED.name.lower(),
                                 CancelSessionReason.TIMEOUT.name.lower()})
# Profile metadata: notifications of enable, disable and delete come back to this SM-DP+.
_NOTIFY_ENABLE_DISABLE_DELETE = (b"\x70", 4)


@dataclass(frozen=True)
class DownloadLimits:
    """Retry limits per order: wrong confirmation codes before the order ends in error, and
    BPPs delivered (the first download included)."""

    cc_attempts: int = DEFAULT_CC_ATTEMPTS
    downloads: int = DEFAULT_DOWNLOADS


@dataclass(frozen=True)
class ProgressReport:
    """What happened to a download, for ES2+.HandleDownloadProgressInfo (§5.3.5)."""

    iccid: str
    eid: str | None
    point: int  # NotificationPoint
    success: bool
    reason: str | None = None
    code: StatusCode | None = None


ProgressHook = Callable[[Session, ProgressReport], None]


class StoreDownloadOrders:
    """`DownloadOrders` (simcore.smdp.es9plus) over the store."""

    def __init__(self, engine: Engine, smdp_address: str, *,
                 limits: DownloadLimits = DownloadLimits(), actor: str = "smdp-es9plus",
                 service_provider: str = "simsmith",
                 progress: ProgressHook | None = None) -> None:
        self.engine = engine
        self.smdp_address = smdp_address
        self.limits = limits
        self.actor = actor
        self.service_provider = service_provider
        self.progress = progress

    def __repr__(self) -> str:
        return f"StoreDownloadOrders({self.smdp_address!r}, {self.limits})"

    # ------------------------------------------------------------------ reads

    def released(self, matching_id: str) -> ReleasedOrder | None:
        with read_session(self.engine) as s:
            found = _order_for(s, matching_id)
            if found is None:
                return None
            iccid, cc_hash = found
            sim = s.get(Sim, iccid)
            if sim is None or sim.kind != "esim" or sim.profile_state not in (
                    _DOWNLOADABLE | _NOT_YET_RELEASED):
                return None
            counter = _counter(s, iccid, matching_id)
            profile = s.execute(select(col(Batch.profile)).where(
                col(Batch.id) == sim.batch_id)).scalar_one_or_none() if sim.batch_id else None
            return ReleasedOrder(
                matching_id=matching_id, iccid=iccid,
                profile_metadata=self.profile_metadata(iccid, profile),
                eid=sim.eid, confirmation_code_hash=bytes.fromhex(cc_hash) if cc_hash else None,
                downloads_left=self.limits.downloads - (counter.downloads if counter else 0),
                released=sim.profile_state in _DOWNLOADABLE)

    def profile_metadata(self, iccid: str, profile_name: str | None) -> bytes:
        """StoreMetadataRequest (SGP.22 §5.5.3): ICCID, service provider and profile names,
        and this SM-DP+ as the address of enable / disable / delete notifications."""
        return schema.encode("StoreMetadataRequest", {
            "iccid": iccid_to_ef(iccid), "serviceProviderName": self.service_provider,
            "profileName": profile_name or "eSIM profile",
            "notificationConfigurationInfo": [{
                "profileManagementOperation": _NOTIFY_ENABLE_DISABLE_DELETE,
                "notificationAddress": self.smdp_address}]})

    # ------------------------------------------------------------------ reports

    def confirmation_code_failed(self, order: ReleasedOrder) -> int:
        with transaction(self.engine) as s:
            sim = _locked(s, order.iccid)
            counter = _counter_for_update(s, order.iccid, order.matching_id)
            counter.cc_failures += 1
            counter.updated_at = utcnow()
            s.add(counter)
            left = self.limits.cc_attempts - counter.cc_failures
            details = {"function": "GetBoundProfilePackage", "matching_id": order.matching_id,
                       "confirmation_code_failures": counter.cc_failures, "attempts_left":
                       max(left, 0)}
            code = (wire.CONFIRMATION_CODE_RETRIES_EXCEEDED if left <= 0
                    else wire.CONFIRMATION_CODE_REFUSED)
            if left <= 0 and sim is not None and sim.profile_state in _DOWNLOADABLE:
                self._move(s, sim, P.ERROR, reason="confirmation code attempts exhausted",
                           details=details)
            else:
                self._record(s, order.iccid, "esim_profile.confirmation_code_failed", details)
            self._report(s, ProgressReport(order.iccid, sim.eid if sim else None,
                                           NotificationPoint.CONFIRMATION_FAILURE, False,
                                           "wrong confirmation code", code))
            return left

    def delivered(self, order: ReleasedOrder, eid: str, transaction_id: bytes) -> None:
        with transaction(self.engine) as s:
            sim = _locked(s, order.iccid)
            counter = _counter_for_update(s, order.iccid, order.matching_id)
            counter.downloads += 1
            counter.last_transaction_id = wire.transaction_id_text(transaction_id)
            counter.updated_at = utcnow()
            s.add(counter)
            details = {"function": "GetBoundProfilePackage", "eid": eid,
                       "transaction_id": counter.last_transaction_id,
                       "download": counter.downloads}
            if sim is not None and sim.profile_state == P.RELEASED:
                self._move(s, sim, P.DOWNLOADED, details=details,
                           changes=None if sim.eid else {"eid": eid})
            else:  # a re-download of a profile delivered before and never installed
                self._record(s, order.iccid, "esim_profile.redownloaded", details)
            self._report(s, ProgressReport(order.iccid, eid, NotificationPoint.BPP_DOWNLOAD,
                                           True))

    def installed(self, iccid: str, eid: str | None) -> None:
        self._install_result(iccid, eid, P.INSTALLED, None)

    def install_failed(self, iccid: str, eid: str | None, reason: str) -> None:
        self._install_result(iccid, eid, P.ERROR, f"installation failed: {reason}")

    def _install_result(self, iccid: str, eid: str | None, target: str,
                        reason: str | None) -> None:
        with transaction(self.engine) as s:
            sim = _locked(s, iccid)
            details = {"function": "HandleNotification", "eid": eid,
                       "notification": "profileInstallationResult",
                       "result": "success" if reason is None else "error"}
            if reason:
                details["reason"] = reason
            self._move_or_record(s, iccid, sim, target, reason=reason, details=details)
            self._report(s, ProgressReport(iccid, eid, NotificationPoint.BPP_INSTALLATION,
                                           reason is None, reason))

    def cancelled(self, iccid: str, eid: str | None, reason: str) -> None:
        with transaction(self.engine) as s:
            sim = _locked(s, iccid)
            details = {"function": "CancelSession", "eid": eid, "cancel_reason": reason}
            if reason in _CANCEL_KEEPS_ORDER or sim is None \
                    or sim.profile_state not in _DOWNLOADABLE:
                self._record(s, iccid, "esim_profile.download_cancelled", details)
                return
            why = f"download cancelled by the eUICC: {reason}"
            point = (NotificationPoint.BPP_INSTALLATION if sim.profile_state == P.DOWNLOADED
                     else NotificationPoint.BPP_DOWNLOAD)
            self._move(s, sim, P.ERROR, reason=why, details=details)
            self._report(s, ProgressReport(iccid, eid, point, False, why))

    def notified(self, iccid: str | None, eid: str, event: NotificationEvent) -> None:
        if iccid is None:
            return
        target = _NOTIFIED.get(event)
        with transaction(self.engine) as s:
            sim = _locked(s, iccid)
            details = {"function": "HandleNotification", "eid": eid,
                       "notification": event.name.lower()}
            if sim is not None and sim.eid is not None and sim.eid != eid:
                # Signed by a genuine eUICC, but not the one this profile went to.
                self._record(s, iccid, "esim_profile.notification_ignored",
                             {**details, "why": "another eUICC"})
                return
            if target is None:
                self._record(s, iccid, "esim_profile.notified", details)
                return
            self._move_or_record(s, iccid, sim, target, reason=None, details=details)

    # ------------------------------------------------------------------ helpers

    def _move(self, s: Session, sim: Sim, target: str, *, reason: str | None = None,
              details: Mapping[str, Any], changes: Mapping[str, Any] | None = None) -> None:
        apply_transition(s, sim, target, actor=self.actor, machine=PROFILE_LIFECYCLE,
                         reason=reason, changes=changes,
                         details={**details, **({"reason": reason} if reason else {})})

    def _move_or_record(self, s: Session, iccid: str, sim: Sim | None, target: str, *,
                        reason: str | None, details: dict[str, Any]) -> None:
        current = sim.profile_state if sim is not None else None
        if sim is not None and current is not None and current != target \
                and target in PROFILE_LIFECYCLE.allowed(current):
            self._move(s, sim, target, reason=reason, details=details)
        else:  # nothing to move (already there, or not a move the machine allows): recorded
            self._record(s, iccid, "esim_profile.download_progress",
                         {**details, "profile_state": current, "applied": False})

    def _record(self, s: Session, iccid: str, action: str, details: Mapping[str, Any]) -> None:
        payload = {k: v for k, v in details.items() if v is not None}
        audit.append(s, actor=self.actor, action=action, subject_type="esim_profile",
                     subject_id=iccid, details=payload,
                     outbox=audit.Outbox(action, "esim_profile", iccid, payload))

    def _report(self, s: Session, report: ProgressReport) -> None:
        if self.progress is not None:
            self.progress(s, report)


def _order_for(s: Session, matching_id: str) -> tuple[str, str | None] | None:
    """(ICCID, SHA-256(CC) hex or None) of the order under `matching_id`: simsmith's SM-DP+
    order book first (ES2+ ConfirmOrder), else the order service's (in-process SM-DP+)."""
    row = s.execute(select(col(Es2PlusOrder.iccid), col(Es2PlusOrder.cc_hash)).where(
        col(Es2PlusOrder.matching_id) == matching_id)).first()
    if row is not None:
        return row[0], row[1]
    row = s.execute(select(col(EsimOrder.iccid), col(EsimOrder.confirmation_code_hash)).where(
        col(EsimOrder.matching_id) == matching_id,
        col(EsimOrder.status).not_in(("cancelled", "failed")))).first()
    return (row[0], row[1]) if row is not None else None


def _counter(s: Session, iccid: str, matching_id: str) -> SmdpDownloadCounter | None:
    counter = s.get(SmdpDownloadCounter, iccid)
    return counter if counter is not None and counter.matching_id == matching_id else None


def _counter_for_update(s: Session, iccid: str, matching_id: str) -> SmdpDownloadCounter:
    counter = s.execute(select(SmdpDownloadCounter).where(
        col(SmdpDownloadCounter.iccid) == iccid).with_for_update()).scalar_one_or_none()
    if counter is None:
        counter = SmdpDownloadCounter(iccid=iccid, matching_id=matching_id, updated_at=utcnow())
    elif counter.matching_id != matching_id:  # a new order for the profile: counts restart
        counter.matching_id, counter.cc_failures, counter.downloads = matching_id, 0, 0
    return counter


def _locked(s: Session, iccid: str) -> Sim | None:
    return s.execute(select(Sim).where(col(Sim.iccid) == iccid).with_for_update()
                     ).scalar_one_or_none()
