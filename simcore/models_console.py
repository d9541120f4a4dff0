"""Tables of the operator console (api/console, issue 19): console users, their server-side
sessions and failed logins. Migration: simcore/migrations/versions/0870_console.py.

No secret in clear: a password is kept as its argon2id hash only; a session is found by the
SHA-256 of its cookie token, never by the token itself; the CSRF token is per session and is
not a credential on its own (it only accompanies the cookie).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from simcore.models import _ts


class ConsoleUser(SQLModel, table=True):
    """A person using the console: a name, an argon2id password hash and the API's scopes."""

    __tablename__ = "console_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    password_hash: str = Field(sa_column=Column(Text, nullable=False), repr=False)
    scopes: str = Field(max_length=512)  # space-separated, the names of simcore.apikeys.SCOPES
    created_at: datetime = _ts()
    disabled_at: datetime | None = _ts(nullable=True)


class ConsoleSession(SQLModel, table=True):
    """A logged-in browser: a console user's, or an API key's (login with the key)."""

    __tablename__ = "console_session"

    token_hash: str = Field(primary_key=True, max_length=64)  # SHA-256 of the cookie's token
    user_id: int | None = Field(default=None, foreign_key="console_user.id", index=True)
    api_key_id: int | None = Field(default=None, foreign_key="api_key.id", index=True)
    actor: str = Field(max_length=128)  # how the audit log names this session's person
    scopes: str = Field(max_length=512)
    csrf_token: str = Field(max_length=64, repr=False)
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    last_seen_at: datetime = _ts()


class ConsoleLoginFailure(SQLModel, table=True):
    """One refused login, by user name and by client address: what the throttle counts."""

    __tablename__ = "console_login_failure"
    __table_args__ = (Index("ix_console_login_failure_subject_at", "subject", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(max_length=128)  # "user:<name>" or "addr:<ip>"
    at: datetime = _ts()
