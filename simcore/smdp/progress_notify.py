"""HandleDownloadProgressInfo sent by simsmith's SM-DP+ to the operator (GSMA SGP.22 v2.5 §5.3.5,
ES2+ SM-DP+ → operator; JSON binding §6.5.2.5).

Every profile state change the SM-DP+ side makes is an `esim_profile.state_changed` outbox event
(simcore.lifecycle, written with the change). This module reads them on its own outbox cursor
(simcore.events.consume, consumer `es2plus.download_progress`) and turns those that are download
progress into notifications for the operator that ordered the profile:

    downloaded  → notificationPointId 3 (BPP download), Executed-Success
    installed   → 4 (BPP installation), Executed-Success
    error       → 3 or 4 (where it failed: the event's `notification_point`, else 4 after a
                  download, 3 before; 2 when the confirmation code attempts ran out), Failed
                  with statusCodeData (the event's subject/reason codes, else 8.2.7 / 6.4 for
                  the confirmation code, 8.2 / 4.2 Profile – Execution Error otherwise) and the
                  reason as message
    deleted, enabled, disabled → the points of SIMSMITH_ES2PLUS_NOTIFY_OTHER_POINTS, by default
                  5, 101 and 102, or not sent at all when that setting is empty

SGP.22 §5.3.5 defines notification points 1 to 4 only (eligibility and retry limit, confirmation
failure, BPP download, BPP installation). The eUICC's other notifications (enable, disable,
delete: §3.5) reach the SM-DP+ over ES9+, and SM-DP+s forward them to the operator with numbers
of their own: one commercial SM-DP+'s published ES2+ API uses 5 / 101 / 102 (deleted / enabled /
disabled), another's 8 / 6 / 7. The default follows the first; an operator whose receiver
expects other numbers, or only SGP.22's, sets the mapping (simcore.config).

What the SM-DP+'s download side may put into the change's details (apply_transition's
`details`, `reason`), each optional: `eid`, `notification_point` (the point to report instead
of the default), `subject_code` / `reason_code` (an error's statusCodeData), `result_data`
(base64 ProfileInstallationResult, sent as resultData); the `reason` becomes an error's message.

Changes mirrored from another SM-DP+'s notifications (the event names the function
HandleDownloadProgressInfo: simsmith is the operator there) and order states (allocated …
released, available, unavailable) are not sent. The operator is the requester of the profile's
ES2+ order (`es2plus_order`), else the operator its batch is stocked for; a notification is made
only for an operator with a receiver (`es2plus_receiver`: URL, client certificate, enabled).

Delivery: each notification (table `es2plus_notification`) has its functionCallIdentifier and
body fixed when it is made, in the transaction that moves the cursor, so it exists exactly once.
The sender claims due ones (a lease, SKIP LOCKED on PostgreSQL), POSTs them over HTTPS with
mutual TLS (esim.es2plus.Es2PlusClient) and records the outcome: delivered, or retried with
the webhooks' exponential backoff with jitter, or dead after the last attempt. A crash between
sending and recording sends the same call again: the receiver answers it from its call log
(SGP.22 §6.5.1.3), nothing happens twice there. `profileType`, `timestamp` (the event's time,
W3C UTC) and `iccid` are always present, `eid` when the SM-DP+ knows it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import Connection, Engine, Row, bindparam, insert, select, update
from sqlmodel import col

from esim.es2plus import Es2PlusClient, Es2PlusError
from esim.es2plus.messages import PATH_PREFIX, HandleDownloadProgressInfoResponse, NotificationPoint
from simcore import events, webhooks
from simcore.config import Settings
from simcore.db import read_connection, read_session, transaction
from simcore.errors import InvalidInput, NotFound
from simcore.lifecycle import ProfileState
from simcore.models import Batch, Sim, utcnow
from simcore.smdp.models import Es2PlusNotification, Es2PlusOrder, Es2PlusReceiver, Es2PlusStock

CONSUMER = "es2plus.download_progress"
BATCH = 500  # outbox events read per round
TOPIC = "esim_profile.state_changed"
FUNCTION = "HandleDownloadProgressInfo"
P = ProfileState

_DOWNLOAD_POINTS = {P.DOWNLOADED: int(NotificationPoint.BPP_DOWNLOAD),
                    P.INSTALLED: int(NotificationPoint.BPP_INSTALLATION)}
_OTHER = {"deleted": P.DELETED, "enabled": P.ENABLED, "disabled": P.DISABLED}
DEFAULT_OTHER_POINTS = "deleted=5,enabled=101,disabled=102"


def parse_other_points(text: str) -> dict[ProfileState, int]:
    """`deleted=5,enabled=101,disabled=102` → the point sent for each of the eUICC's other
    notifications; a state left out (or an empty text) is not sent. Points 1–4 are SGP.22's own
    and cannot be reused."""
    out: dict[ProfileState, int] = {}
    for i, item in enumerate(p.strip() for p in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        state = _OTHER.get(name.strip())
        field = f"es2plus_notify_other_points[{i}]"
        if not sep or state is None:
            raise InvalidInput(field, "not state=point", value=item[:32],
                               expected="deleted=N, enabled=N or disabled=N")
        if state in out:
            raise InvalidInput(field, "state given twice", value=item[:32],
                               expected="each of deleted, enabled, disabled at most once")
        if not value.strip().isdigit() or not 5 <= int(value) <= 999:
            raise InvalidInput(field, "not a point number", value=item[:32],
                               expected="an integer 5-999 (1-4 are SGP.22's download points)")
        out[state] = int(value)
    return out


DEFAULT_POINTS = {**_DOWNLOAD_POINTS, **parse_other_points(DEFAULT_OTHER_POINTS)}
DEFAULT_ERROR_CODE = ("8.2", "4.2")  # Profile – Execution Error, when the change names none
# Confirmation Code – Maximum number of retries exceeded (the ES9+ refusal of the last try).
CC_EXHAUSTED_CODE = ("8.2.7", "6.4")

_N: Any = Es2PlusNotification.__table__  # type: ignore[attr-defined]
_R: Any = Es2PlusReceiver.__table__  # type: ignore[attr-defined]
_ANY_DUE = select(_N.c.id).where(_N.c.state == "pending",
                                 _N.c.next_attempt_at <= bindparam("now")).limit(1)


# --- what a state change says -----------------------------------------------------------------


def _timestamp(at: datetime) -> str:
    """W3C date-time in UTC, as SGP.22 §6.5.2.5's examples: 2026-12-07T09:30:47Z."""
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def progress_body(payload: dict[str, Any], *, iccid: str, at: datetime, profile_type: str,
                  eid: str | None, points: dict[ProfileState, int] | None = None,
                  ) -> dict[str, Any] | None:
    """The HandleDownloadProgressInfo request (without its header) for one state change, or
    None when the change is no download progress this SM-DP+ reports. `points`: the point per
    successful state (DEFAULT_POINTS unless configured)."""
    target = payload.get("to")
    points = DEFAULT_POINTS if points is None else points
    if payload.get("function") == FUNCTION:
        return None  # mirrored from another SM-DP+'s notification: we are the operator there
    if target in points:
        point = int(payload.get("notification_point") or points[P(target)])
        status: dict[str, Any] = {"status": "Executed-Success"}
    elif target == P.ERROR:
        cc_exhausted = bool(payload.get("confirmation_code_failures"))
        point = int(payload.get("notification_point") or (
            NotificationPoint.CONFIRMATION_FAILURE if cc_exhausted
            else NotificationPoint.BPP_INSTALLATION if payload.get("from") != P.RELEASED
            else NotificationPoint.BPP_DOWNLOAD))
        subject, reason = (str(payload["subject_code"]), str(payload["reason_code"])) \
            if payload.get("subject_code") and payload.get("reason_code") \
            else CC_EXHAUSTED_CODE if cc_exhausted else DEFAULT_ERROR_CODE
        scd: dict[str, Any] = {"subjectCode": subject, "reasonCode": reason}
        if payload.get("reason"):
            scd["message"] = str(payload["reason"])[:256]
        status = {"status": "Failed", "statusCodeData": scd}
    else:
        return None
    body: dict[str, Any] = {}
    if eid:
        body["eid"] = eid
    body.update(iccid=iccid, profileType=profile_type, timestamp=_timestamp(at),
                notificationPointId=point, notificationPointStatus=status)
    if payload.get("result_data"):
        body["resultData"] = str(payload["result_data"])
    return body


def _operator_and_type(conn: Connection, iccid: str) -> tuple[str | None, str | None, str | None]:
    """(operator, profile type, EID) of a profile, from its order, its batch and its row."""
    order = conn.execute(select(col(Es2PlusOrder.requester), col(Es2PlusOrder.profile_type))
                         .where(col(Es2PlusOrder.iccid) == iccid)).first()
    sim = conn.execute(select(col(Sim.batch_id), col(Sim.eid), col(Batch.profile),
                              col(Batch.name))
                       .select_from(Sim).outerjoin(Batch, col(Batch.id) == col(Sim.batch_id))
                       .where(col(Sim.iccid) == iccid)).first()
    operator = order.requester if order is not None else None
    if operator is None and sim is not None and sim.batch_id is not None:
        operator = conn.execute(select(col(Es2PlusStock.operator)).where(
            col(Es2PlusStock.batch_id) == sim.batch_id)).scalar_one_or_none()
    profile_type = (order.profile_type if order is not None else None) or (
        (sim.profile or sim.name) if sim is not None else None)
    return operator, profile_type, sim.eid if sim is not None else None


def _make(conn: Connection, rows: Sequence[Row[Any]],
          points: dict[ProfileState, int] = DEFAULT_POINTS) -> None:
    receivers = set(conn.execute(select(_R.c.operator)).scalars())
    if not receivers:
        return
    now = utcnow()
    out = []
    for ev in rows:
        payload = json.loads(ev.payload)
        if payload.get("to") not in (*points, P.ERROR) \
                or payload.get("function") == FUNCTION:
            continue
        operator, profile_type, eid = _operator_and_type(conn, ev.subject_id)
        if operator is None or operator not in receivers:
            continue
        body = progress_body(payload, iccid=ev.subject_id, at=ev.created_at,
                             profile_type=profile_type or ev.subject_id[:64],
                             eid=payload.get("eid") or eid, points=points)
        if body is None:
            continue
        out.append({"event_id": ev.id, "operator": operator, "iccid": ev.subject_id,
                    "call_id": uuid.uuid4().hex, "body": json.dumps(body, separators=(",", ":")),
                    "state": "pending", "attempts": 0, "next_attempt_at": now,
                    "created_at": now})
    if out:
        conn.execute(insert(_N), out)


def collect(engine: Engine, limit: int = BATCH,
            other_points: dict[ProfileState, int] | None = None) -> int:
    """Read the outbox past this notifier's cursor and make the notifications it calls for;
    returns the events read. `other_points`: parse_other_points's mapping (the default's when
    None)."""
    points = DEFAULT_POINTS if other_points is None else {**_DOWNLOAD_POINTS, **other_points}
    return events.consume(engine, CONSUMER, lambda c, rows: _make(c, rows, points),
                          topics=(TOPIC,), limit=limit)


# --- receivers --------------------------------------------------------------------------------


def _check_receiver_url(url: str) -> str:
    webhooks.check_url(url)
    if not url.startswith("https://"):
        raise InvalidInput("url", "not https", value=url[:64],
                           expected="an https:// URL: ES2+ runs over TLS with client "
                           "certificates (SGP.22 §6.5)")
    path = f"{PATH_PREFIX}/handleDownloadProgressInfo"
    return url[: -len(path)] if url.endswith(path) else url.rstrip("/")


def set_receiver(engine: Engine, operator: str, url: str, *, cert: str | None = None,
                 key: str | None = None, ca: str | None = None,
                 requester_id: str | None = None, enabled: bool = True) -> Es2PlusReceiver:
    """Create or replace `operator`'s receiver. `url` is the ES2+ base URL or the full URL of
    its handleDownloadProgressInfo; cert/key/ca are PEM paths (all three, or none for the
    development PKI)."""
    if not operator or len(operator) > 128:
        raise InvalidInput("operator", "1 to 128 characters", expected="a "
                           "functionRequesterIdentifier")
    base = _check_receiver_url(url)
    given = [p for p in (cert, key, ca) if p]
    if given and len(given) != 3:
        raise InvalidInput("cert", "cert, key and ca go together", expected="all three or none")
    for name, p in (("cert", cert), ("key", key), ("ca", ca)):
        if p and not Path(p).is_file():
            raise InvalidInput(name, "no such file", value=p[:128])
    with transaction(engine) as s:
        row = s.get(Es2PlusReceiver, operator)
        if row is None:
            row = Es2PlusReceiver(operator=operator, url=base)
            s.add(row)
        row.url, row.cert, row.key, row.ca = base, cert, key, ca
        row.requester_id, row.enabled, row.updated_at = requester_id, enabled, utcnow()
        s.flush()
        return row


def enable_receiver(engine: Engine, operator: str, enabled: bool) -> Es2PlusReceiver:
    with transaction(engine) as s:
        row = s.get(Es2PlusReceiver, operator)
        if row is None:
            raise NotFound(f"no ES2+ receiver for operator {operator!r}")
        row.enabled, row.updated_at = enabled, utcnow()
        s.flush()
        return row


def list_receivers(engine: Engine) -> list[Es2PlusReceiver]:
    with read_session(engine) as s:
        return list(s.execute(select(Es2PlusReceiver).order_by(col(Es2PlusReceiver.operator)))
                    .scalars())


def list_notifications(engine: Engine, *, state: str | None = None, iccid: str | None = None,
                       limit: int = 100) -> list[Es2PlusNotification]:
    stmt = select(Es2PlusNotification).order_by(col(Es2PlusNotification.id)).limit(limit)
    if state:
        stmt = stmt.where(col(Es2PlusNotification.state) == state)
    if iccid:
        stmt = stmt.where(col(Es2PlusNotification.iccid) == iccid)
    with read_session(engine) as s:
        return list(s.execute(stmt).scalars())


# --- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotifyJob:
    id: int
    operator: str
    call_id: str
    body: str
    attempts: int
    url: str
    cert: str | None
    key: str | None
    ca: str | None
    requester_id: str | None


def claim_due(engine: Engine, limit: int = 50, lease: float = 60.0) -> list[NotifyJob]:
    """Lease up to `limit` due notifications whose receiver is enabled."""
    now = utcnow()
    due = (_N.c.state == "pending", _N.c.next_attempt_at <= now)
    with read_connection(engine) as conn:  # an idle round: one prebuilt SELECT, no write lock
        if conn.execute(_ANY_DUE, {"now": now}).first() is None:
            return []
    with transaction(engine) as s:
        rows = s.execute(
            select(_N.c.id, _N.c.operator, _N.c.call_id, _N.c.body, _N.c.attempts, _R.c.url,
                   _R.c.cert, _R.c.key, _R.c.ca, _R.c.requester_id)
            .join(_R, _R.c.operator == _N.c.operator)
            .where(*due, _R.c.enabled.is_(True))
            .order_by(_N.c.next_attempt_at, _N.c.id).limit(limit)
            .with_for_update(skip_locked=True, of=_N)).all()
        if rows:
            s.execute(update(_N).where(_N.c.id.in_([r.id for r in rows]))
                      .values(next_attempt_at=now + timedelta(seconds=lease)))
        return [NotifyJob(**r._mapping) for r in rows]


def record_result(engine: Engine, job: NotifyJob, *, ok: bool, status: int | None,
                  error: str | None, max_attempts: int, base: float, cap: float) -> str:
    """Store one attempt's outcome; returns the notification's new state."""
    values = webhooks.attempt_outcome(job.attempts, ok=ok, status=status, error=error,
                                      max_attempts=max_attempts, base=base, cap=cap)
    with transaction(engine) as s:
        s.execute(update(_N).where(_N.c.id == job.id).values(**values))
    return str(values["state"])


def redeliver(engine: Engine, notification_id: int) -> None:
    """Queue a notification again (a dead one after the receiver was fixed)."""
    with transaction(engine) as s:
        n = s.execute(update(_N).where(_N.c.id == notification_id).values(
            state="pending", attempts=0, next_attempt_at=utcnow())).rowcount  # type: ignore[attr-defined]
    if not n:
        raise NotFound(f"no ES2+ notification {notification_id}")


def certificate_cn(path: str | Path) -> str:
    cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


@dataclass
class NotifySettings:
    """How the sender behaves (the SIMSMITH_ES2PLUS_NOTIFY_* settings)."""

    max_attempts: int = 10
    backoff_seconds: float = 2.0
    backoff_max_seconds: float = 3600.0
    timeout_seconds: float = 10.0
    dev_pki: Path | None = None  # the development PKI, for receivers without their own files
    other_points: dict[ProfileState, int] | None = None  # None: DEFAULT_OTHER_POINTS

    @classmethod
    def from_settings(cls, settings: Settings) -> NotifySettings:
        return cls(max_attempts=settings.es2plus_notify_max_attempts,
                   backoff_seconds=settings.es2plus_notify_backoff_seconds,
                   backoff_max_seconds=settings.es2plus_notify_backoff_max_seconds,
                   timeout_seconds=settings.es2plus_notify_timeout_seconds,
                   dev_pki=settings.home / "pki",
                   other_points=parse_other_points(settings.es2plus_notify_other_points))


class Notifier:
    """Collects and sends; one ES2+ client (keep-alive, mutual TLS) per receiver."""

    def __init__(self, engine: Engine, settings: NotifySettings | None = None) -> None:
        self.engine = engine
        self.settings = settings or NotifySettings()
        self._clients: dict[tuple[Any, ...], Es2PlusClient] = {}

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()

    def run_once(self) -> dict[str, int]:
        """One round: make notifications from new events, send what is due."""
        read = collect(self.engine, other_points=self.settings.other_points)
        jobs = claim_due(self.engine, lease=self.settings.timeout_seconds * 4)
        states = [self.send(job) for job in jobs]
        return {"events": read, "sent": len(jobs), "delivered": states.count("delivered"),
                "failed": len(states) - states.count("delivered")}

    def _client(self, job: NotifyJob) -> Es2PlusClient:
        cert, key, ca = job.cert, job.key, job.ca
        if not cert and self.settings.dev_pki is not None:
            from esim.pki import DevPki

            dev = DevPki(self.settings.dev_pki)
            cert, key, ca = str(dev.client_cert), str(dev.client_key), str(dev.ca)
        requester = job.requester_id or (certificate_cn(cert) if cert else "") or job.operator
        ident = (job.url, cert, key, ca, requester)
        client = self._clients.get(ident)
        if client is None:
            # No retries inside the call: the outbox retries, with backoff, across restarts.
            client = self._clients[ident] = Es2PlusClient(
                job.url, requester, ca=ca, cert=cert, key=key,
                timeout=self.settings.timeout_seconds, retries=0, max_connections=4)
        return client

    def send(self, job: NotifyJob) -> str:
        """Send one notification and record the outcome; whatever goes wrong is recorded
        against it (backoff, then dead), never the round's end."""
        status: int | None = None
        try:
            self._client(job).call(FUNCTION, json.loads(job.body),
                                   HandleDownloadProgressInfoResponse, call_id=job.call_id)
            ok, error, status = True, None, 200
        except Es2PlusError as e:
            ok, error = False, str(e)
            status = getattr(e, "http_status", None)
        except Exception as e:  # a bad certificate path, a bug: recorded, the others go on
            ok, error = False, webhooks.describe_failure(e)
        s = self.settings
        return record_result(self.engine, job, ok=ok, status=status, error=error,
                             max_attempts=s.max_attempts, base=s.backoff_seconds,
                             cap=s.backoff_max_seconds)
