"""Console sessions: what a login cookie opens, kept in the store (server side).

A session is created by a console user's password (simcore.console.users) or by an API key
(the key's scopes, re-checked on every request so a revoked key ends its sessions). The browser
holds a random 256-bit token; the store keeps only its SHA-256, the person's audit name, the
scopes and a per-session CSRF token (OWASP CSRF cheat sheet, synchronizer token pattern).
Sessions end after `IDLE` without use or `LIFETIME` in all.

Login throttling: `MAX_FAILURES` refused logins for one user name, or from one client address,
within `WINDOW` refuse the next attempt (LoginThrottled) until the oldest failure leaves the
window — whatever the password, so guessing on does not tell when a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, select
from sqlmodel import Session, col

from simcore import apikeys, audit
from simcore.console import users
from simcore.db import read_session, transaction
from simcore.errors import SimsmithError
from simcore.models import utcnow
from simcore.models_api import ApiKey
from simcore.models_console import ConsoleLoginFailure, ConsoleSession, ConsoleUser

LIFETIME = timedelta(hours=8)
IDLE = timedelta(hours=1)
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often
MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)


class NoSession(SimsmithError):
    """The cookie opens no live session (unknown, expired, logged out, key revoked)."""


class LoginThrottled(SimsmithError):
    """Too many refused logins for this user name or from this address, for now."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many failed logins; try again in {retry_after} s")


@dataclass(frozen=True)
class Principal:
    """Who a live session is: the audit name, the scopes, the session's CSRF token."""

    actor: str
    name: str
    scopes: tuple[str, ...]
    csrf_token: str
    token_hash: str
    expires_at: datetime

    def allows(self, scope: str) -> bool:
        return apikeys.scopes_allow(self.scopes, scope)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _principal(row: ConsoleSession, name: str) -> Principal:
    return Principal(actor=row.actor, name=name, scopes=tuple(row.scopes.split()),
                     csrf_token=row.csrf_token, token_hash=row.token_hash,
                     expires_at=row.expires_at)


def _check_throttle(s: Session, subjects: list[str], now: datetime) -> None:
    for subject in subjects:
        rows = s.execute(select(col(ConsoleLoginFailure.at))
                         .where(col(ConsoleLoginFailure.subject) == subject,
                                col(ConsoleLoginFailure.at) > now - WINDOW)
                         .order_by(col(ConsoleLoginFailure.at))).scalars().all()
        if len(rows) >= MAX_FAILURES:
            oldest = rows[-MAX_FAILURES]
            raise LoginThrottled(max(1, int((oldest + WINDOW - now).total_seconds()) + 1))


def _subjects(username: str, client: str | None) -> list[str]:
    out = [f"user:{username[:64]}"]
    if client:
        out.append(f"addr:{client[:64]}")
    return out


def check_throttle(engine: Engine, username: str, client: str | None) -> None:
    with read_session(engine) as s:
        _check_throttle(s, _subjects(username, client), utcnow())


def _record_failure(engine: Engine, username: str, client: str | None, how: str) -> None:
    now = utcnow()
    with transaction(engine) as s:
        for subject in _subjects(username, client):
            s.add(ConsoleLoginFailure(subject=subject, at=now))
        # Old failures are of no use to the throttle: the table stays small.
        s.execute(delete(ConsoleLoginFailure).where(col(ConsoleLoginFailure.at) < now - WINDOW))
        audit.append(s, actor=f"console:{username[:64]}", action="console.login_failed",
                     subject_type="console_user", subject_id=username[:64],
                     details={"how": how, "client": client})


def _open(engine: Engine, *, actor: str, scopes: str, user_id: int | None = None,
          api_key_id: int | None = None, subject: str, how: str,
          client: str | None) -> tuple[str, ConsoleSession]:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = ConsoleSession(token_hash=hash_token(token), user_id=user_id, api_key_id=api_key_id,
                         actor=actor, scopes=scopes, csrf_token=secrets.token_urlsafe(32),
                         created_at=now, expires_at=now + LIFETIME, last_seen_at=now)
    with transaction(engine) as s:
        s.add(row)
        s.execute(delete(ConsoleSession).where(col(ConsoleSession.expires_at) < now))
        audit.append(s, actor=actor, action="console.login", subject_type="console_user",
                     subject_id=subject, details={"how": how, "client": client})
    return token, row


def login_password(engine: Engine, username: str, password: str, *,
                   client: str | None) -> tuple[str, Principal]:
    """(cookie token, principal) for a console user's name and password; LoginThrottled,
    users.BadCredentials."""
    check_throttle(engine, username, client)
    try:
        user = users.authenticate(engine, username, password)
    except users.BadCredentials:
        _record_failure(engine, username, client, "password")
        raise
    with transaction(engine) as s:
        s.execute(delete(ConsoleLoginFailure).where(
            col(ConsoleLoginFailure.subject) == f"user:{username}"))
    token, row = _open(engine, actor=f"console:{user.username}", scopes=user.scopes,
                       user_id=user.id, subject=user.username, how="password", client=client)
    return token, _principal(row, user.username)


def login_api_key(engine: Engine, key: str, *, client: str | None) -> tuple[str, Principal]:
    """(cookie token, principal) for an API key: the session holds the key's scopes."""
    label = key[:12] if key.startswith(apikeys.KEY_PREFIX) else "api-key"
    check_throttle(engine, label, client)
    try:
        row = apikeys.authenticate(engine, key)
    except apikeys.InvalidApiKey:
        _record_failure(engine, label, client, "api_key")
        raise users.BadCredentials("unknown or revoked API key") from None
    actor = f"console:api:{row.name}#{row.id}"
    token, session = _open(engine, actor=actor, scopes=row.scopes, api_key_id=row.id,
                           subject=row.prefix, how="api_key", client=client)
    return token, _principal(session, f"API key {row.name}")


def lookup(engine: Engine, token: str) -> Principal:
    """The live session a cookie token opens; NoSession otherwise."""
    if not token or len(token) > 128:
        raise NoSession("no session")
    h = hash_token(token)
    now = utcnow()
    with read_session(engine) as s:
        found = s.execute(
            select(ConsoleSession, col(ConsoleUser.username), col(ConsoleUser.disabled_at),
                   col(ApiKey.name), col(ApiKey.revoked_at))
            .join(ConsoleUser, col(ConsoleUser.id) == col(ConsoleSession.user_id), isouter=True)
            .join(ApiKey, col(ApiKey.id) == col(ConsoleSession.api_key_id), isouter=True)
            .where(col(ConsoleSession.token_hash) == h)).first()
    if found is None:
        raise NoSession("no session")
    row, username, disabled, key_name, revoked = found
    if row.expires_at <= now or row.last_seen_at + IDLE <= now:
        raise NoSession("session expired")
    if disabled is not None or revoked is not None:
        raise NoSession("session ended")
    if now - row.last_seen_at >= TOUCH_EVERY:
        with transaction(engine) as s:
            s.execute(ConsoleSession.__table__.update()  # type: ignore[attr-defined]
                      .where(ConsoleSession.__table__.c.token_hash == h)  # type: ignore[attr-defined]
                      .values(last_seen_at=now))
    name = username if username is not None else f"API key {key_name}"
    return _principal(row, name)


def check_csrf(principal: Principal, presented: str | None) -> bool:
    """Whether a form's token is this session's (constant-time comparison)."""
    return bool(presented) and hmac.compare_digest(principal.csrf_token.encode(),
                                                   (presented or "").encode())


def logout(engine: Engine, principal: Principal) -> None:
    with transaction(engine) as s:
        s.execute(delete(ConsoleSession).where(
            col(ConsoleSession.token_hash) == principal.token_hash))
        audit.append(s, actor=principal.actor, action="console.logout",
                     subject_type="console_user", subject_id=principal.name[:64], details={})


def active_count(engine: Engine) -> int:
    with read_session(engine) as s:
        return int(s.execute(select(func.count()).select_from(ConsoleSession).where(
            col(ConsoleSession.expires_at) > utcnow())).scalar_one())
