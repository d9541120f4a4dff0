"""API keys: random, shown once, stored as SHA-256, with scopes.

A key reads `ssk_<prefix>_<secret>`: 8 random characters of prefix (kept in clear to recognise a
key in lists) and 32 random bytes of secret (base64url). Being random and long, a key needs no slow
password hash: the store keeps SHA-256 of the whole key and a lookup is one indexed read.

Scopes (`SCOPES`): `admin` implies every other scope except those in `NOT_IMPLIED_BY_ADMIN`
(`care:access-codes`: a SIM's PIN1/PUK1 go only to a key made for customer care).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Iterable

from sqlalchemy import Engine, select
from sqlmodel import col

from simcore import audit
from simcore.db import read_session, transaction
from simcore.errors import InvalidInput, NotFound, SimsmithError
from simcore.models import utcnow
from simcore.models_api import ApiKey

SCOPES: dict[str, str] = {
    "sims:read": "Read SIMs and MSISDNs.",
    "sims:write": "Allocate, activate, suspend, resume, terminate and swap SIMs; MSISDN pool.",
    "esim:order": "Order, read and cancel eSIM profiles.",
    "imports:write": "Upload vendor files to the inventory.",
    "audit:read": "Query and verify the audit log.",
    "webhooks:manage": "Manage webhook subscriptions and see deliveries.",
    "metrics:read": "Read /metrics (Prometheus).",
    "care:access-codes": "Customer care: read a SIM's PIN1 and PUK1 (each read audited). "
                         "Not implied by admin.",
    "service:card-codes": "Service centre: read a SIM's PIN2, PUK2 and ADM1 to re-program its "
                          "card (each read audited, with a reason). Not implied by admin.",
    "suci:deconceal": "A UDM: de-conceal SUCIs to SUPIs in the HSM (each audited).",
    "admin": "Everything above except care:access-codes and service:card-codes.",
}
# Least privilege: scopes a key holds only when given by name, never through `admin`.
NOT_IMPLIED_BY_ADMIN = frozenset({"care:access-codes", "service:card-codes"})
KEY_PREFIX = "ssk_"


class InvalidApiKey(SimsmithError):
    """No active key matches (unknown, malformed or revoked)."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_scopes(scopes: Iterable[str]) -> list[str]:
    out = sorted(set(scopes))
    if not out:
        raise InvalidInput("scopes", "no scope given", expected=", ".join(SCOPES))
    for s in out:
        if s not in SCOPES:
            raise InvalidInput("scopes", "unknown scope", value=s, expected=", ".join(SCOPES))
    return out


def create(engine: Engine, name: str, scopes: Iterable[str], *, actor: str) -> tuple[ApiKey, str]:
    """A new key: (its record, the key itself). The key is not stored and cannot be shown again."""
    if not name or len(name) > 64:
        raise InvalidInput("name", "empty or longer than 64 characters", expected="1..64 chars")
    wanted = check_scopes(scopes)
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction(engine) as s:
        row = ApiKey(name=name, prefix=f"{KEY_PREFIX}{prefix}", key_hash=hash_key(key),
                     scopes=" ".join(wanted))
        s.add(row)
        s.flush()
        audit.append(s, actor=actor, action="apikey.create", subject_type="apikey",
                     subject_id=str(row.id), details={"name": name, "scopes": wanted})
    return row, key


def authenticate(engine: Engine, key: str) -> ApiKey:
    """The active key record for `key`; raises InvalidApiKey."""
    if not key.startswith(KEY_PREFIX) or len(key) > 128:
        raise InvalidApiKey("malformed API key")
    with read_session(engine) as s:
        row: ApiKey | None = s.execute(
            select(ApiKey).where(col(ApiKey.key_hash) == hash_key(key))).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        raise InvalidApiKey("unknown or revoked API key")
    return row


def has_scope(key: ApiKey, scope: str) -> bool:
    return scopes_allow(key.scopes.split(), scope)


def scopes_allow(granted: Collection[str], scope: str) -> bool:
    """Whether holding `granted` lets one through a check for `scope` (admin implies all but
    NOT_IMPLIED_BY_ADMIN). API keys and console sessions both ask this."""
    return scope in granted or ("admin" in granted and scope not in NOT_IMPLIED_BY_ADMIN)


def holders(scope: str) -> str:
    """Which scopes let a key through a route needing `scope`, for documentation."""
    if scope in NOT_IMPLIED_BY_ADMIN:
        return f"`{scope}` (not implied by `admin`)"
    return "`admin`" if scope == "admin" else f"`{scope}` (or `admin`)"


def list_keys(engine: Engine) -> list[ApiKey]:
    with read_session(engine) as s:
        return list(s.execute(select(ApiKey).order_by(col(ApiKey.id))).scalars())


def revoke(engine: Engine, key_id: int, *, actor: str) -> ApiKey:
    with transaction(engine) as s:
        row = s.get(ApiKey, key_id)
        if row is None:
            raise NotFound(f"no API key with id {key_id}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            audit.append(s, actor=actor, action="apikey.revoke", subject_type="apikey",
                         subject_id=str(key_id), details={"name": row.name})
        return row
