"""Signed webhooks from the transactional outbox: subscriptions, deliveries, signing, retries.

Flow (driven by the API's deliverer, api/webhook_worker.py, or anything calling these):

1. `fan_out`: pending outbox events (simcore.events) become one delivery per matching active
   subscription (that existed when the event was written), and the events are marked
   published — one transaction, so an event is fanned out exactly once even with several
   workers (PostgreSQL: FOR UPDATE SKIP LOCKED).
2. `claim_due`: due deliveries are leased (their next attempt pushed `lease` seconds ahead) and
   handed to the sender; a sender that dies mid-way loses only its lease, so deliveries survive
   a restart.
3. `record_result`: delivered, or retried after `backoff_delay` (exponential with jitter), or
   `dead` after the last attempt. `redeliver` puts any delivery back in the queue.

Endpoint URLs are checked when a subscription is made (`check_url`): http(s) only, a host that is
an IP literal or a valid IDNA 2008 name (RFC 5890-5893, via the `idna` package httpx uses too),
a port 1-65535, no user info, no fragment, printable ASCII outside the host, at most 2,048
characters. A row that slipped past the check (an old one, or written by hand) cannot stop the
others: the deliverer records any failure against its delivery, which backs off and dead-letters.

Signature: header `Simsmith-Signature: t=<unix seconds>,v1=<hex>` where
`v1 = HMAC-SHA256(secret, "<t>." + raw body)`. A receiver recomputes it over the raw body, compares
in constant time and refuses a `t` outside its replay window (`verify_signature`, 5 minutes by
default). The event ID (`Simsmith-Event-Id`) lets a receiver drop duplicates. A delivery of an
event written under a trace carries a W3C `traceparent` header continuing that trace
(docs/observability.md).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import idna
from sqlalchemy import Engine, bindparam, select, update
from sqlmodel import col

from simcore import audit
from simcore.db import connection_transaction, read_connection, read_session, transaction
from simcore.errors import InvalidInput, NotFound, SimsmithError
from simcore.models import OutboxEvent, utcnow
from simcore.models_api import WebhookDelivery, WebhookSubscription
from simcore.paging import keyset_page

SIGNATURE_HEADER = "Simsmith-Signature"
URL_MAX_LENGTH = 2048
EVENT_ID_HEADER = "Simsmith-Event-Id"
DELIVERY_ID_HEADER = "Simsmith-Delivery-Id"
REPLAY_WINDOW_SECONDS = 300


class InvalidSignature(SimsmithError):
    """A webhook signature does not verify, or its timestamp is outside the replay window."""


# --- signing ----------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={sign(secret, t, body)}"


def verify_signature(secret: str, header: str, body: bytes, *,
                     tolerance: int = REPLAY_WINDOW_SECONDS, now: float | None = None) -> int:
    """Check a `Simsmith-Signature` header against the raw body; returns its timestamp."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError) as e:
        raise InvalidSignature("signature header has no timestamp t=") from e
    if abs((time.time() if now is None else now) - t) > tolerance:
        raise InvalidSignature("signature timestamp outside the replay window")
    expected = sign(secret, t, body)
    if not any(hmac.compare_digest(expected, v) for k, v in
               (p.split("=", 1) for p in header.split(",") if "=" in p) if k == "v1"):
        raise InvalidSignature("signature does not match the body")
    return t


# --- subscriptions ----------------------------------------------------------------------------


def _check_topics(topics: Iterable[str]) -> list[str]:
    out = sorted({t.strip() for t in topics if t.strip()})
    if not out:
        raise InvalidInput("topics", "no topic given", expected='topic names or "*"')
    for t in out:
        if len(t) > 64 or " " in t:
            raise InvalidInput("topics", "not a topic name", value=t[:64])
    return out


def _url_error(message: str, position: int, value: str | None = None,
               expected: str = "an http(s) URL such as https://hooks.example.com/simsmith"
               ) -> InvalidInput:
    return InvalidInput("url", message, value=value, position=f"character {position + 1}",
                        expected=expected)


def _check_host(host: str, at: int) -> None:
    """An IPv6 literal in brackets, an IPv4 address, or a host name valid under IDNA 2008."""
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1] if host.endswith("]") else "?")
        except ValueError:
            raise _url_error("not an IPv6 address", at, host[:64],
                             expected="[IPv6 address] as in RFC 3986 §3.2.2") from None
        return
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise _url_error("not an IPv4 address", at, host[:64],
                             expected="four decimal octets") from None
        return
    try:
        encoded = idna.encode(host.lower() if host.isascii() else host)
    except idna.IDNAError as e:
        hint = "a host name valid under IDNA 2008 (RFC 5891)"
        try:
            mapped = idna.decode(idna.encode(host, uts46=True))
            hint += f", such as {mapped!r} (its UTS #46 mapping)"
        except idna.IDNAError:
            pass
        raise _url_error(f"host is not a valid IDNA host name ({e})", at, host[:64],
                         expected=hint) from None
    if len(encoded.rstrip(b".")) > 253:
        raise _url_error("host name longer than 253 characters", at,
                         expected="a host name of at most 253 characters (RFC 1035 §2.3.4)")


def check_url(url: str) -> str:
    """Refuse an endpoint URL the deliverer could not send to; returns it unchanged.

    Raises InvalidInput naming the field `url`, the character position and what was expected."""
    if not url or len(url) > URL_MAX_LENGTH:
        raise InvalidInput("url", f"length {len(url)}",
                           expected=f"1 to {URL_MAX_LENGTH} characters")
    scheme_end = url.find("://")
    scheme = url[:scheme_end] if scheme_end > 0 else ""
    if scheme not in ("https", "http"):
        raise _url_error("scheme is not https or http", 0, scheme[:16] or None)
    authority_start = scheme_end + 3
    authority_end = next((i for i in range(authority_start, len(url)) if url[i] in "/?#"),
                         len(url))
    for i, ch in enumerate(url):
        outside_host = not authority_start <= i < authority_end
        if ch.isspace() or not ch.isprintable() or (outside_host and not ch.isascii()):
            raise _url_error(f"character U+{ord(ch):04X} not allowed here", i,
                             expected="printable ASCII (non-ASCII only in the host name, "
                             "percent-encode the rest)")
    authority = url[authority_start:authority_end]
    if "@" in authority:
        raise _url_error("user info in the URL", authority_start,
                         expected="no user:password@ (the signature authenticates deliveries)")
    if "#" in url:
        raise _url_error("fragment in the URL", url.index("#"),
                         expected="no #fragment (it is never sent)")
    host, port_text = authority, None
    m = re.fullmatch(r"(\[[^\]]*\]|[^:\[\]]*)(?::(.*))?", authority)
    if m is None:
        raise _url_error("host and port do not parse", authority_start, authority[:64],
                         expected="host[:port]")
    host, port_text = m.group(1), m.group(2)
    if not host:
        raise _url_error("no host", authority_start)
    _check_host(host, authority_start)
    if port_text is not None:
        port_at = authority_start + len(host) + 1
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise _url_error("port out of range", port_at, port_text[:16],
                             expected="a port from 1 to 65535")
    try:
        parsed = httpx.URL(url)
        split = urlsplit(url)
        _ = split.port
    except (httpx.InvalidURL, ValueError) as e:  # belt and braces: what the deliverer uses
        raise _url_error(f"not a URL the deliverer can use ({e})", 0) from None
    if parsed.scheme not in ("https", "http") or not parsed.host:
        raise _url_error("not an absolute http(s) URL", 0)
    return url


def create_subscription(engine: Engine, url: str, topics: Iterable[str] = ("*",), *,
                        actor: str, secret: str | None = None
                        ) -> tuple[WebhookSubscription, str]:
    """A new subscription and its signing secret (generated unless given)."""
    check_url(url)
    wanted = _check_topics(topics)
    secret = secret or "whsec_" + secrets.token_urlsafe(32)
    with transaction(engine) as s:
        row = WebhookSubscription(url=url, topics=" ".join(wanted), secret=secret, active=True)
        s.add(row)
        s.flush()
        audit.append(s, actor=actor, action="webhook.create", subject_type="webhook",
                     subject_id=str(row.id), details={"url": url, "topics": wanted})
    return row, secret


def list_subscriptions(engine: Engine) -> list[WebhookSubscription]:
    with read_session(engine) as s:
        return list(s.execute(select(WebhookSubscription)
                              .order_by(col(WebhookSubscription.id))).scalars())


def get_subscription(engine: Engine, sub_id: int) -> WebhookSubscription:
    with read_session(engine) as s:
        row = s.get(WebhookSubscription, sub_id)
    if row is None:
        raise NotFound(f"no webhook subscription {sub_id}")
    return row


def deactivate(engine: Engine, sub_id: int, *, actor: str) -> WebhookSubscription:
    """Stop sending to a subscription (its deliveries stay visible)."""
    with transaction(engine) as s:
        row = s.get(WebhookSubscription, sub_id)
        if row is None:
            raise NotFound(f"no webhook subscription {sub_id}")
        row.active = False
        s.execute(update(WebhookDelivery).where(
            col(WebhookDelivery.subscription_id) == sub_id,
            col(WebhookDelivery.state) == "pending").values(state="dead",
                                                           last_error="subscription removed"))
        audit.append(s, actor=actor, action="webhook.deactivate", subject_type="webhook",
                     subject_id=str(sub_id), details={"url": row.url})
        return row


def _wants(sub: WebhookSubscription | Any, topic: str) -> bool:
    topics = sub.topics.split()
    return "*" in topics or topic in topics


# --- deliveries -------------------------------------------------------------------------------


def event_body(ev: OutboxEvent | Any) -> str:
    """The delivered JSON of an outbox event (a model or a row with its columns)."""
    return json.dumps({"id": ev.id, "topic": ev.topic, "subject_type": ev.subject_type,
                       "subject_id": ev.subject_id, "created_at": ev.created_at.isoformat(),
                       "data": json.loads(ev.payload)}, separators=(",", ":"))


def fan_out(engine: Engine, limit: int = 500) -> int:
    """Turn up to `limit` pending outbox events into deliveries; returns events handled.

    Core statements throughout: on SQLite this holds the one write lock that every order and
    SIM change waits for, so it must be short (an ORM load of 500 events held it ~10 ms)."""
    with read_connection(engine) as conn:  # idle rounds take no write lock (SQLite has one)
        if conn.execute(_ANY_PENDING).first() is None:
            return 0
    with connection_transaction(engine) as conn:
        events = conn.execute(_PENDING, {"limit": limit}).all()
        if not events:
            return 0
        subs = conn.execute(_ACTIVE_SUBS).all()
        now = utcnow()
        rows = [{"subscription_id": sub.id, "event_id": ev.id, "topic": ev.topic,
                 "payload": event_body(ev), "state": "pending", "attempts": 0,
                 "next_attempt_at": now, "created_at": now, "traceparent": ev.traceparent}
                for ev in events for sub in subs
                if _wants(sub, ev.topic) and ev.created_at >= sub.created_at]
        if rows:
            conn.execute(WebhookDelivery.__table__.insert(), rows)  # type: ignore[attr-defined]
        conn.execute(_PUBLISH, {"ids": [e.id for e in events], "now": now})
        return len(events)


_OUTBOX: Any = OutboxEvent.__table__  # type: ignore[attr-defined]
_ANY_PENDING = select(_OUTBOX.c.id).where(_OUTBOX.c.published_at.is_(None)).limit(1)
_PENDING = (select(_OUTBOX).where(_OUTBOX.c.published_at.is_(None)).order_by(_OUTBOX.c.id)
            .limit(bindparam("limit")).with_for_update(skip_locked=True))
_SUBS: Any = WebhookSubscription.__table__  # type: ignore[attr-defined]
_ACTIVE_SUBS = select(_SUBS.c.id, _SUBS.c.topics, _SUBS.c.created_at).where(
    _SUBS.c.active.is_(True))
_PUBLISH = (update(_OUTBOX).where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
            .values(published_at=bindparam("now")))


_DELIVERIES: Any = WebhookDelivery.__table__  # type: ignore[attr-defined]
_ANY_DUE = select(_DELIVERIES.c.id).where(_DELIVERIES.c.state == "pending",
                                          _DELIVERIES.c.next_attempt_at <= bindparam("now")
                                          ).limit(1)


@dataclass(frozen=True)
class DeliveryJob:
    id: int
    event_id: int
    url: str
    secret: str
    body: str
    attempts: int
    traceparent: str | None = None


def claim_due(engine: Engine, limit: int = 50, lease: float = 60.0) -> list[DeliveryJob]:
    """Lease up to `limit` due deliveries for sending."""
    now = utcnow()
    with read_connection(engine) as conn:  # an idle round: one prebuilt SELECT, no write lock
        if conn.execute(_ANY_DUE, {"now": now}).first() is None:
            return []
    with transaction(engine) as s:
        rows = s.execute(
            select(WebhookDelivery, WebhookSubscription)
            .join(WebhookSubscription,
                  col(WebhookSubscription.id) == col(WebhookDelivery.subscription_id))
            .where(col(WebhookDelivery.state) == "pending",
                   col(WebhookDelivery.next_attempt_at) <= now)
            .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id))
            .limit(limit).with_for_update(skip_locked=True, of=WebhookDelivery)
        ).all()
        if not rows:
            return []
        s.execute(update(WebhookDelivery)
                  .where(col(WebhookDelivery.id).in_([d.id for d, _ in rows]))
                  .values(next_attempt_at=now + timedelta(seconds=lease)))
        return [DeliveryJob(int(d.id or 0), d.event_id, sub.url, sub.secret, d.payload,
                            d.attempts, d.traceparent) for d, sub in rows]


def backoff_delay(attempt: int, base: float = 2.0, cap: float = 3600.0) -> float:
    """Seconds before retry `attempt` + 1: base·2^(attempt−1), capped, with jitter (×0.5–1)."""
    return min(cap, base * 2.0 ** max(0, attempt - 1)) * random.uniform(0.5, 1.0)


def describe_failure(exc: BaseException) -> str:
    """What a failed attempt stores in `last_error`: the exception's type and, for the errors
    of sending (httpx, IDNA, sockets), its message; at most 256 characters. Nothing adds the
    URL (its query may hold a receiver's token); other errors keep only their type."""
    name = type(exc).__name__
    if isinstance(exc, (httpx.HTTPError, httpx.InvalidURL, UnicodeError, OSError)):
        text = str(exc).replace("\n", " ").strip()
        return f"{name}: {text}"[:256] if text else name
    return name


def attempt_outcome(attempts_before: int, *, ok: bool, status: int | None, error: str | None,
                    max_attempts: int, base: float, cap: float) -> dict[str, Any]:
    """The columns one delivery attempt sets, for any outbound queue with this shape
    (webhook deliveries, ES2+ notifications): delivered, dead after the last attempt, or
    pending again after the backoff."""
    attempts = attempts_before + 1
    now = utcnow()
    values: dict[str, Any] = {"attempts": attempts, "last_status": status,
                              "last_error": (error or "")[:256] or None}
    if ok:
        values.update(state="delivered", delivered_at=now, next_attempt_at=None)
    elif attempts >= max_attempts:
        values.update(state="dead", next_attempt_at=None)
    else:
        values.update(state="pending", next_attempt_at=now + timedelta(
            seconds=backoff_delay(attempts, base, cap)))
    return values


def record_result(engine: Engine, job: DeliveryJob, *, ok: bool, status: int | None,
                  error: str | None, max_attempts: int = 8, base: float = 2.0,
                  cap: float = 3600.0) -> str:
    """Store one attempt's outcome; returns the delivery's new state."""
    values = attempt_outcome(job.attempts, ok=ok, status=status, error=error,
                             max_attempts=max_attempts, base=base, cap=cap)
    with transaction(engine) as s:
        s.execute(update(WebhookDelivery).where(col(WebhookDelivery.id) == job.id)
                  .values(**values))
    return str(values["state"])


def list_deliveries(engine: Engine, *, subscription_id: int | None = None,
                    state: str | None = None, after: int | None = None,
                    limit: int = 100) -> list[WebhookDelivery]:
    stmt = keyset_page(select(WebhookDelivery), col(WebhookDelivery.id), after=after, limit=limit,
                       filters={col(WebhookDelivery.subscription_id): subscription_id,
                                col(WebhookDelivery.state): state})
    with read_session(engine) as s:
        return list(s.execute(stmt).scalars())


def redeliver(engine: Engine, delivery_id: int, *, actor: str) -> WebhookDelivery:
    """Queue a delivery again (e.g. a dead one after the receiver was fixed)."""
    with transaction(engine) as s:
        row = s.get(WebhookDelivery, delivery_id)
        if row is None:
            raise NotFound(f"no webhook delivery {delivery_id}")
        row.state, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
        audit.append(s, actor=actor, action="webhook.redeliver", subject_type="webhook",
                     subject_id=str(row.subscription_id), details={"delivery": delivery_id})
        s.flush()
        return row


def backlog(engine: Engine) -> dict[str, int]:
    """Outbox events not yet fanned out, and deliveries by state (for metrics)."""
    from sqlalchemy import func

    with read_session(engine) as s:
        out = {"outbox_pending": int(s.execute(select(func.count()).select_from(OutboxEvent)
                                               .where(col(OutboxEvent.published_at).is_(None))
                                               ).scalar_one())}
        for state, n in s.execute(select(col(WebhookDelivery.state), func.count())
                                  .group_by(col(WebhookDelivery.state))).all():
            out[f"deliveries_{state}"] = int(n)
    return out
