"""Console users: a name, a password kept as an argon2id hash (RFC 9106, argon2-cffi's
recommended parameters), and scopes named as the API's (simcore.apikeys.SCOPES), so a console
user may do exactly what an API key with the same scopes may.

Every change is audited (console.user_*); a password never is, nor its hash.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, select
from sqlmodel import Session, col

from simcore import apikeys, audit
from simcore.db import read_session, transaction
from simcore.errors import Conflict, InvalidInput, NotFound, SimsmithError
from simcore.models import utcnow
from simcore.models_console import ConsoleSession, ConsoleUser

_HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (argon2-cffi's default)
USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-@")
PASSWORD_MIN = 12
PASSWORD_MAX = 256
_dummy: list[str] = []  # made on first use (an argon2 hash costs as long as a login)


def _dummy_hash() -> str:
    """A hash to verify against when the user does not exist: the refusal takes as long."""
    if not _dummy:
        _dummy.append(_HASHER.hash(secrets.token_hex(16)))
    return _dummy[0]


class BadCredentials(SimsmithError):
    """No active console user has this name and password (which of the two is not said)."""


def check_username(name: str) -> str:
    if not 1 <= len(name) <= 64:
        raise InvalidInput("username", "empty or longer than 64 characters",
                           expected="1..64 characters")
    for i, ch in enumerate(name):
        if ch not in USERNAME_CHARS:
            raise InvalidInput("username", "character not allowed", value=name[:64],
                               position=i, expected="a-z, 0-9, '.', '_', '-', '@'")
    return name


def check_password(password: str) -> str:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        # The value is a secret: never echoed, only its length's bounds.
        raise InvalidInput("password", "too short or too long",
                           expected=f"{PASSWORD_MIN}..{PASSWORD_MAX} characters")
    return password


def generate_password() -> str:
    """A random password for a new user: 20 characters of base64url (120 bits)."""
    return secrets.token_urlsafe(15)


def create(engine: Engine, username: str, password: str, scopes: Iterable[str], *,
           actor: str) -> ConsoleUser:
    name = check_username(username)
    wanted = apikeys.check_scopes(scopes)
    digest = _HASHER.hash(check_password(password))
    with transaction(engine) as s:
        if s.execute(select(col(ConsoleUser.id)).where(col(ConsoleUser.username) == name)
                     ).first():
            raise Conflict(f"console user {name!r} already exists")
        row = ConsoleUser(username=name, password_hash=digest, scopes=" ".join(wanted))
        s.add(row)
        s.flush()
        audit.append(s, actor=actor, action="console.user_create", subject_type="console_user",
                     subject_id=name, details={"scopes": wanted})
    return row


def get(engine: Engine, username: str) -> ConsoleUser:
    with read_session(engine) as s:
        row: ConsoleUser | None = s.execute(
            select(ConsoleUser).where(col(ConsoleUser.username) == username)
        ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no console user {username!r}")
    return row


def list_users(engine: Engine) -> list[ConsoleUser]:
    with read_session(engine) as s:
        return list(s.execute(select(ConsoleUser).order_by(col(ConsoleUser.id))).scalars())


def authenticate(engine: Engine, username: str, password: str) -> ConsoleUser:
    """The active user with this name and password; BadCredentials otherwise. A missing user
    costs one argon2 verification too, so the answer's time does not tell names apart."""
    with read_session(engine) as s:
        row: ConsoleUser | None = s.execute(
            select(ConsoleUser).where(col(ConsoleUser.username) == username)
        ).scalar_one_or_none()
    try:
        _HASHER.verify(row.password_hash if row is not None else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        raise BadCredentials("wrong user name or password") from None
    if row is None or row.disabled_at is not None:
        raise BadCredentials("wrong user name or password")
    if _HASHER.check_needs_rehash(row.password_hash):
        _set_hash(engine, row.username, password)
    return row


def _set_hash(engine: Engine, username: str, password: str) -> None:
    with transaction(engine) as s:
        row = s.execute(select(ConsoleUser).where(col(ConsoleUser.username) == username)
                        ).scalar_one()
        row.password_hash = _HASHER.hash(password)


def set_password(engine: Engine, username: str, password: str, *, actor: str) -> None:
    digest = _HASHER.hash(check_password(password))
    with transaction(engine) as s:
        row = s.execute(select(ConsoleUser).where(col(ConsoleUser.username) == username)
                        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no console user {username!r}")
        row.password_hash = digest
        _end_sessions(s, row)
        audit.append(s, actor=actor, action="console.user_password", subject_type="console_user",
                     subject_id=username, details={})


def _end_sessions(s: Session, row: ConsoleUser) -> None:
    # A new password or a disabled user: whoever holds an old session is logged out.
    s.execute(delete(ConsoleSession).where(col(ConsoleSession.user_id) == row.id))


def disable(engine: Engine, username: str, *, actor: str) -> ConsoleUser:
    """The user can no longer log in; their open sessions end now."""
    with transaction(engine) as s:
        row: ConsoleUser | None = s.execute(
            select(ConsoleUser).where(col(ConsoleUser.username) == username)
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no console user {username!r}")
        if row.disabled_at is None:
            row.disabled_at = utcnow()
            _end_sessions(s, row)
            audit.append(s, actor=actor, action="console.user_disable",
                         subject_type="console_user", subject_id=username, details={})
    return row
