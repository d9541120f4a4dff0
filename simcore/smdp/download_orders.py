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

Every statement here is Core, built once with bound parameters: a read is one statement on a
pooled connection (db.DirectStatement), a report one short transaction on a Core connection. The
ORM's per-object work (sessions, identity map, flushes) was more than half of the SM-DP+'s CPU
per download over HTTPS (docs/benchmarks.md, smdp).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    case,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from esim.es2plus.codes import StatusCode
from esim.es2plus.messages import NotificationPoint
from esim.saip.coding import iccid_to_ef
from esim.sgp22 import es9plus as wire
from esim.sgp22 import schema
from esim.sgp22.cancel_session import CancelSessionReason
from esim.sgp22.notifications import NotificationEvent
from simcore import audit
from simcore.db import DirectStatement, connection_transaction
from simcore.lifecycle import PROFILE_LIFECYCLE, ProfileState, transition_row
from simcore.models import Batch, Sim, utcnow
from simcore.models_api import EsimOrder
from simcore.smdp.download_reports import OneStatementReports
from simcore.smdp.es9plus import (
    SESSION_COLUMNS,
    DownloadSession,
    ReleasedOrder,
    StoreSessions,
    session_row,
)
from simcore.smdp.es9plus_models import SmdpDownloadCounter, SmdpDownloadSession
from simcore.smdp.models import Es2PlusOrder
from simcore.smdp.upp_source import UPP_COLUMNS, UppRecord, upp_credentials

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


ProgressHook = Callable[[Connection, ProgressReport], None]


class StoreDownloadOrders:
    """`DownloadOrders` (simcore.smdp.es9plus) over the store."""

    def __init__(self, engine: Engine, smdp_address: str, *,
                 limits: DownloadLimits = DownloadLimits(), actor: str = "smdp-es9plus",
                 service_provider: str = "simsmith",
                 progress: ProgressHook | None = None,
                 sessions: StoreSessions | None = None) -> None:
        self.engine = engine
        # The RSP sessions' store, when on this engine: each report then writes the session's
        # step in its own transaction (simcore.smdp.es9plus.SessionJoiningOrders).
        self.sessions = sessions
        self.smdp_address = smdp_address
        self.limits = limits
        self.actor = actor
        self.service_provider = service_provider
        self.progress = progress
        self._released = DirectStatement(engine, _RELEASED, keep=True)
        self._session_with_order = DirectStatement(
            engine, _session_with_order(engine.dialect.name), keep=True)
        self._session_with_released = DirectStatement(engine, _SESSION_WITH_RELEASED, keep=True)
        self._count = _count_statement(engine.dialect.name)
        # PostgreSQL: the delivery and the installation result (with the session's step) as
        # one statement each (simcore.smdp.download_reports) — unless a progress hook must run
        # in their transaction.
        self._one: OneStatementReports | None = (
            OneStatementReports(engine, actor)
            if engine.dialect.name == "postgresql" and sessions is not None and progress is None
            else None)

    def __repr__(self) -> str:
        return f"StoreDownloadOrders({self.smdp_address!r}, {self.limits})"

    # ------------------------------------------------------------------ reads

    def released(self, matching_id: str) -> ReleasedOrder | None:
        rows = self._released.rows(matching_id=matching_id)
        return self._order(matching_id, rows[0]) if rows else None

    def session_with_order(self, transaction_id: bytes
                           ) -> tuple[DownloadSession | None, ReleasedOrder | None]:
        """The RSP session `transaction_id` and `released` of its matching ID, with what the
        UPP needs of the SIM (`ReleasedOrder.upp_record`), in one query
        (GetBoundProfilePackage reads them all)."""
        rows = self._session_with_order.rows(tid=wire.transaction_id_text(transaction_id))
        return self._session_and_order(transaction_id, rows, None)

    def session_with_released(self, transaction_id: bytes, matching_id: str
                              ) -> tuple[DownloadSession | None, ReleasedOrder | None]:
        """The RSP session `transaction_id` and `released(matching_id)` in one query
        (AuthenticateClient: the matching ID the eUICC sent)."""
        rows = self._session_with_released.rows(tid=wire.transaction_id_text(transaction_id),
                                                matching_id=matching_id)
        return self._session_and_order(transaction_id, rows, matching_id)

    def _session_and_order(self, transaction_id: bytes, rows: list[tuple[Any, ...]],
                           matching_id: str | None
                           ) -> tuple[DownloadSession | None, ReleasedOrder | None]:
        if not rows:
            return None, None
        n = len(SESSION_COLUMNS)
        session = DownloadSession(transaction_id, **dict(zip(SESSION_COLUMNS, rows[0][:n],
                                                             strict=True)))
        matching_id = matching_id if matching_id is not None else session.matching_id
        order_row = rows[0][n:]
        if matching_id is None or order_row[0] is None:  # no order joined
            return session, None
        return session, self._order(matching_id, order_row)

    def _order(self, matching_id: str, row: tuple[Any, ...]) -> ReleasedOrder | None:
        iccid, cc_hash, kind, state, eid, profile, counted_for, downloads, expires_at = row[:9]
        if kind != "esim" or state not in (_DOWNLOADABLE | _NOT_YET_RELEASED):
            return None
        this_order = counted_for == matching_id
        return ReleasedOrder(
            matching_id=matching_id, iccid=iccid,
            profile_metadata=self.profile_metadata(iccid, profile),
            eid=eid, confirmation_code_hash=bytes.fromhex(cc_hash) if cc_hash else None,
            expires_at=expires_at if this_order else None,
            downloads_left=self.limits.downloads - (downloads if this_order else 0),
            released=state in _DOWNLOADABLE,
            upp_record=UppRecord.of(row[9:], profile) if len(row) > 9 else None)

    def profile_metadata(self, iccid: str, profile_name: str | None) -> bytes:
        """StoreMetadataRequest (SGP.22 §5.5.3): ICCID, service provider and profile names,
        and this SM-DP+ as the address of enable / disable / delete notifications."""
        return _store_metadata(iccid, profile_name or "eSIM profile", self.service_provider,
                               self.smdp_address)

    # ------------------------------------------------------------------ reports

    def confirmation_code_failed(self, order: ReleasedOrder) -> int:
        with connection_transaction(self.engine) as conn:
            sim = _locked(conn, order.iccid)
            _, cc_failures = self._counted(conn, order, downloads=0, cc_failures=1)
            left = self.limits.cc_attempts - cc_failures
            details = {"function": "GetBoundProfilePackage", "matching_id": order.matching_id,
                       "confirmation_code_failures": cc_failures, "attempts_left": max(left, 0)}
            code = (wire.CONFIRMATION_CODE_RETRIES_EXCEEDED if left <= 0
                    else wire.CONFIRMATION_CODE_REFUSED)
            if left <= 0 and sim is not None and sim.profile_state in _DOWNLOADABLE:
                self._move(conn, sim, P.ERROR, reason="confirmation code attempts exhausted",
                           details=details)
            else:
                self._record(conn, order.iccid, "esim_profile.confirmation_code_failed", details)
            self._report(conn, ProgressReport(order.iccid, sim.eid if sim else None,
                                              NotificationPoint.CONFIRMATION_FAILURE, False,
                                              "wrong confirmation code", code))
            return left

    def expired(self, order: ReleasedOrder) -> None:
        with connection_transaction(self.engine) as conn:
            self._expire(conn, order.iccid, order.matching_id, order.expires_at,
                         "AuthenticateClient")

    def expire_due(self, now: datetime | None = None) -> int:
        """End every released order whose validity is over by `now` — those no LPA came for
        (the sweeper); how many. Each in its own transaction, re-checked under the lock."""
        now = now or utcnow()
        with self.engine.connect().execution_options(readonly=True) as conn:
            due = conn.execute(_DUE, {"now": now}).all()
        ended = 0
        for iccid, matching_id, expires_at in due:
            with connection_transaction(self.engine) as conn:
                ended += self._expire(conn, iccid, matching_id, expires_at, "sweep", now=now)
        return ended

    def _expire(self, conn: Connection, iccid: str, matching_id: str,
                expires_at: datetime | None, function: str, *,
                now: datetime | None = None) -> bool:
        """Move a released (or delivered, never installed) profile whose order expired to
        error, with SGP.22's point and code for the operator (HandleDownloadProgressInfo:
        Eligibility and retry limit check, 8.8.5 / 4.10). False when it is no longer so."""
        sim = _locked(conn, iccid)
        if now is not None:  # the sweeper: still this order, still expired, still waiting
            current = conn.execute(_COUNTED, {"iccid": iccid}).first()
            if current is None or current[0] != matching_id or current[1] is None \
                    or current[1] > now:
                return False
        details: dict[str, Any] = {
            "function": function, "matching_id": matching_id,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "notification_point": NotificationPoint.ELIGIBILITY_AND_RETRY_LIMIT_CHECK,
            "subject_code": wire.DOWNLOAD_ORDER_EXPIRED.subject,
            "reason_code": wire.DOWNLOAD_ORDER_EXPIRED.reason}
        if sim is None or sim.profile_state not in _DOWNLOADABLE:
            if now is None:  # refused at ES9+; the sweeper (another worker's came first) is mute
                self._record(conn, iccid, "esim_profile.download_refused", details)
            return False
        self._move(conn, sim, P.ERROR, reason="download order expired", details=details)
        self._report(conn, ProgressReport(iccid, sim.eid,
                                          NotificationPoint.ELIGIBILITY_AND_RETRY_LIMIT_CHECK,
                                          False, "download order expired",
                                          wire.DOWNLOAD_ORDER_EXPIRED))
        return True

    def delivered(self, order: ReleasedOrder, eid: str, transaction_id: bytes,
                  session: DownloadSession | None = None) -> None:
        """The BPP was delivered; `session` (the RSP session at its next step), when given, is
        stored in the same transaction."""
        tid = wire.transaction_id_text(transaction_id)
        if self._one is not None and session is not None:
            self._one.delivered(order.iccid, order.matching_id, eid, {
                "function": "GetBoundProfilePackage", "eid": eid, "transaction_id": tid,
                "download": 0}, session_row(session))  # the count: the statement's
            return
        with connection_transaction(self.engine) as conn:
            sim = _locked(conn, order.iccid)
            if session is not None:
                self._sessions().put_in(conn, session)  # before the audit append (its lane lock)
            downloads, _ = self._counted(conn, order, downloads=1, cc_failures=0,
                                         transaction_id=tid)
            details = {"function": "GetBoundProfilePackage", "eid": eid,
                       "transaction_id": tid, "download": downloads}
            if sim is not None and sim.profile_state == P.RELEASED:
                self._move(conn, sim, P.DOWNLOADED, details=details,
                           changes=None if sim.eid else {"eid": eid})
            else:  # a re-download of a profile delivered before and never installed
                self._record(conn, order.iccid, "esim_profile.redownloaded", details)
            self._report(conn, ProgressReport(order.iccid, eid, NotificationPoint.BPP_DOWNLOAD,
                                              True))

    def installed(self, iccid: str, eid: str | None,
                  transaction_id: bytes | None = None) -> None:
        """The installation succeeded; the RSP session `transaction_id`, when given, ends in
        the same transaction."""
        self._install_result(iccid, eid, P.INSTALLED, None, transaction_id)

    def install_failed(self, iccid: str, eid: str | None, reason: str,
                       transaction_id: bytes | None = None) -> None:
        self._install_result(iccid, eid, P.ERROR, f"installation failed: {reason}",
                             transaction_id)

    def _install_result(self, iccid: str, eid: str | None, target: str,
                        reason: str | None, transaction_id: bytes | None) -> None:
        details: dict[str, Any] = {"function": "HandleNotification", "eid": eid,
                                   "notification": "profileInstallationResult",
                                   "result": "success" if reason is None else "error"}
        if reason:
            details["reason"] = reason
        if self._one is not None and transaction_id is not None:
            self._one.install_result(iccid, target, reason, details,
                                     wire.transaction_id_text(transaction_id))
            return
        with connection_transaction(self.engine) as conn:
            sim = _locked(conn, iccid)
            if transaction_id is not None:
                self._sessions().delete_in(conn, transaction_id)
            self._move_or_record(conn, iccid, sim, target, reason=reason, details=details)
            self._report(conn, ProgressReport(iccid, eid, NotificationPoint.BPP_INSTALLATION,
                                              reason is None, reason))

    def cancelled(self, iccid: str, eid: str | None, reason: str) -> None:
        with connection_transaction(self.engine) as conn:
            sim = _locked(conn, iccid)
            details = {"function": "CancelSession", "eid": eid, "cancel_reason": reason}
            if reason in _CANCEL_KEEPS_ORDER or sim is None \
                    or sim.profile_state not in _DOWNLOADABLE:
                self._record(conn, iccid, "esim_profile.download_cancelled", details)
                return
            why = f"download cancelled by the eUICC: {reason}"
            point = (NotificationPoint.BPP_INSTALLATION if sim.profile_state == P.DOWNLOADED
                     else NotificationPoint.BPP_DOWNLOAD)
            self._move(conn, sim, P.ERROR, reason=why, details=details)
            self._report(conn, ProgressReport(iccid, eid, point, False, why))

    def notified(self, iccid: str | None, eid: str, event: NotificationEvent) -> None:
        if iccid is None:
            return
        target = _NOTIFIED.get(event)
        with connection_transaction(self.engine) as conn:
            sim = _locked(conn, iccid)
            details = {"function": "HandleNotification", "eid": eid,
                       "notification": event.name.lower()}
            if sim is not None and sim.eid is not None and sim.eid != eid:
                # Signed by a genuine eUICC, but not the one this profile went to.
                self._record(conn, iccid, "esim_profile.notification_ignored",
                             {**details, "why": "another eUICC"})
                return
            if target is None:
                self._record(conn, iccid, "esim_profile.notified", details)
                return
            self._move_or_record(conn, iccid, sim, target, reason=None, details=details)

    # ------------------------------------------------------------------ helpers

    def _sessions(self) -> StoreSessions:
        if self.sessions is None:
            raise ValueError("StoreDownloadOrders has no session store to write the step to")
        return self.sessions

    def _counted(self, conn: Connection, order: ReleasedOrder, *, downloads: int,
                 cc_failures: int, transaction_id: str | None = None) -> tuple[int, int]:
        """Add to the order's counters (a new matching ID for the profile starts them from
        zero); the counts now (downloads, wrong confirmation codes)."""
        row = conn.execute(self._count, {
            "iccid": order.iccid, "matching_id": order.matching_id, "downloads": downloads,
            "cc_failures": cc_failures, "last_transaction_id": transaction_id,
            "updated_at": utcnow()}).one()
        return int(row[0]), int(row[1])

    def _move(self, conn: Connection, sim: _LockedSim, target: str, *,
              reason: str | None = None, details: Mapping[str, Any],
              changes: Mapping[str, Any] | None = None) -> None:
        transition_row(conn, PROFILE_LIFECYCLE, sim.iccid, sim.profile_state, sim.version,
                       target, actor=self.actor, reason=reason, changes=changes,
                       details={**details, **({"reason": reason} if reason else {})})

    def _move_or_record(self, conn: Connection, iccid: str, sim: _LockedSim | None, target: str,
                        *, reason: str | None, details: dict[str, Any]) -> None:
        current = sim.profile_state if sim is not None else None
        if sim is not None and current is not None and current != target \
                and target in PROFILE_LIFECYCLE.allowed(current):
            self._move(conn, sim, target, reason=reason, details=details)
        else:  # nothing to move (already there, or not a move the machine allows): recorded
            self._record(conn, iccid, "esim_profile.download_progress",
                         {**details, "profile_state": current, "applied": False})

    def _record(self, conn: Connection, iccid: str, action: str,
                details: Mapping[str, Any]) -> None:
        payload = {k: v for k, v in details.items() if v is not None}
        audit.append(conn, actor=self.actor, action=action, subject_type="esim_profile",
                     subject_id=iccid, details=payload,
                     outbox=audit.Outbox(action, "esim_profile", iccid, payload))

    def _report(self, conn: Connection, report: ProgressReport) -> None:
        if self.progress is not None:
            self.progress(conn, report)


_SIM: Table = Sim.__table__  # type: ignore[attr-defined]
_BATCH: Table = Batch.__table__  # type: ignore[attr-defined]
_COUNTER: Table = SmdpDownloadCounter.__table__  # type: ignore[attr-defined]
_ES2PLUS_ORDER: Table = Es2PlusOrder.__table__  # type: ignore[attr-defined]
_ESIM_ORDER: Table = EsimOrder.__table__  # type: ignore[attr-defined]


def _released_query(matching_id: Any, upp_dialect: str | None = None) -> Any:
    """The order under a matching ID — simsmith's SM-DP+ order book first (ES2+ ConfirmOrder),
    else the order service's (in-process SM-DP+) — with its profile's state, EID, Profile Type
    and the order's counters, in one statement; with `upp_dialect`, also what the UPP needs of
    the SIM (upp_source.UPP_COLUMNS and its credentials, in that database's JSON)."""
    upp = () if upp_dialect is None else (*UPP_COLUMNS,
                                          upp_credentials(upp_dialect).label("credentials"))
    orders = union_all(
        select(_ES2PLUS_ORDER.c.iccid, _ES2PLUS_ORDER.c.cc_hash.label("cc_hash"),
               literal(0).label("book")).where(_ES2PLUS_ORDER.c.matching_id == matching_id),
        select(_ESIM_ORDER.c.iccid, _ESIM_ORDER.c.confirmation_code_hash,
               literal(1)).where(_ESIM_ORDER.c.matching_id == matching_id,
                                 _ESIM_ORDER.c.status != "cancelled",
                                 _ESIM_ORDER.c.status != "failed"),
    ).subquery()
    return (
        select(orders.c.iccid, orders.c.cc_hash, _SIM.c.kind, _SIM.c.profile_state, _SIM.c.eid,
               _BATCH.c.profile, _COUNTER.c.matching_id.label("counted_for"),
               _COUNTER.c.downloads, _COUNTER.c.expires_at, *upp)
        .select_from(orders.join(_SIM, _SIM.c.iccid == orders.c.iccid)
                     .outerjoin(_BATCH, _BATCH.c.id == _SIM.c.batch_id)
                     .outerjoin(_COUNTER, _COUNTER.c.iccid == _SIM.c.iccid))
        .order_by(orders.c.book).limit(1))


_RELEASED = _released_query(bindparam("matching_id"))
_SESSIONS: Table = SmdpDownloadSession.__table__  # type: ignore[attr-defined]


def _with_session(order: Any) -> Any:
    """The RSP session `:tid` and the one-row `order` query beside it (none: NULLs)."""
    joined = order.subquery()
    return (select(*(_SESSIONS.c[name] for name in SESSION_COLUMNS), *joined.c)
            .select_from(_SESSIONS.outerjoin(joined, true()))
            .where(_SESSIONS.c.transaction_id == bindparam("tid")))


def _session_with_order(dialect: str) -> Any:
    """A session, the order of its matching ID and what its UPP needs of the SIM."""
    return _with_session(_released_query(
        select(_SESSIONS.c.matching_id).where(_SESSIONS.c.transaction_id == bindparam("tid"))
        .scalar_subquery(), upp_dialect=dialect))


# A session and the order of a matching ID given (AuthenticateClient's, the eUICC's).
_SESSION_WITH_RELEASED = _with_session(_released_query(bindparam("matching_id")))
# Released orders past their validity, and the order a profile's counters are for now.
_DUE = (select(_COUNTER.c.iccid, _COUNTER.c.matching_id, _COUNTER.c.expires_at)
        .join(_SIM, _SIM.c.iccid == _COUNTER.c.iccid)
        .where(_COUNTER.c.expires_at <= bindparam("now"),
               _SIM.c.profile_state.in_(sorted(_DOWNLOADABLE)))
        .order_by(_COUNTER.c.expires_at))
_COUNTED = select(_COUNTER.c.matching_id, _COUNTER.c.expires_at).where(
    _COUNTER.c.iccid == bindparam("iccid"))
_LOCKED = (select(_SIM.c.iccid, _SIM.c.profile_state, _SIM.c.eid, _SIM.c.version)
           .where(_SIM.c.iccid == bindparam("iccid")).with_for_update())


@functools.lru_cache(maxsize=1024)  # AuthenticateClient encodes it, GetBoundProfilePackage again
def _store_metadata(iccid: str, profile_name: str, service_provider: str, address: str) -> bytes:
    return schema.encode("StoreMetadataRequest", {
        "iccid": iccid_to_ef(iccid), "serviceProviderName": service_provider,
        "profileName": profile_name,
        "notificationConfigurationInfo": [{
            "profileManagementOperation": _NOTIFY_ENABLE_DISABLE_DELETE,
            "notificationAddress": address}]})


def _count_statement(dialect: str) -> Any:
    """Add to an order's counters in one statement (INSERT … ON CONFLICT DO UPDATE …
    RETURNING), restarting them when the profile's order (matching ID) changed."""
    statement = (pg_insert(_COUNTER) if dialect == "postgresql" else sqlite_insert(_COUNTER)
                 ).values(iccid=bindparam("iccid"), matching_id=bindparam("matching_id"),
                          downloads=bindparam("downloads"), cc_failures=bindparam("cc_failures"),
                          last_transaction_id=bindparam("last_transaction_id"),
                          updated_at=bindparam("updated_at"))
    same = _COUNTER.c.matching_id == statement.excluded.matching_id
    return statement.on_conflict_do_update(
        index_elements=[_COUNTER.c.iccid],
        set_={"matching_id": statement.excluded.matching_id,
              "downloads": case((same, _COUNTER.c.downloads), else_=0)
              + statement.excluded.downloads,
              "cc_failures": case((same, _COUNTER.c.cc_failures), else_=0)
              + statement.excluded.cc_failures,
              "last_transaction_id": func.coalesce(statement.excluded.last_transaction_id,
                                                   _COUNTER.c.last_transaction_id),
              "expires_at": case((same, _COUNTER.c.expires_at), else_=None),
              "updated_at": statement.excluded.updated_at},
    ).returning(_COUNTER.c.downloads, _COUNTER.c.cc_failures)


class _LockedSim(NamedTuple):
    iccid: str
    profile_state: str | None
    eid: str | None
    version: int


def _locked(conn: Connection, iccid: str) -> _LockedSim | None:
    """The profile's row, locked for this transaction (PostgreSQL; SQLite: the writer lock)."""
    row = conn.execute(_LOCKED, {"iccid": iccid}).first()
    return _LockedSim(*row) if row is not None else None
