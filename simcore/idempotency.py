"""Idempotency keys for the API's POSTs (the `Idempotency-Key` header, as Stripe and the IETF
httpapi draft use it).

Per API key, an idempotency key names one request. `begin` records it as pending together with a
fingerprint (SHA-256 over method, path, query and body — `StreamFingerprint` for a body read
as a stream, whose SHA-256 stands in for it); when the request is done `complete` stores the
response. A repeat with the same fingerprint gets the stored response; with another fingerprint it
is refused (`IdempotencyKeyReused`); a repeat while the first is still running is refused
(`IdempotencyInProgress`). A request that failed on the server's side (5xx) is `abandon`ed so it
can be retried. Records older than `purge`'s horizon (24 hours by default) are forgotten.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import Engine, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from simcore.db import Tx, connection_transaction, core, read_session, transaction
from simcore.errors import Conflict, InvalidInput, SimsmithError
from simcore.models import utcnow
from simcore.models_api import IdempotencyRecord

MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(SimsmithError):
    """The idempotency key was used before for a different request."""


class IdempotencyInProgress(Conflict):
    """A request with this idempotency key is still being processed."""


class ClaimTaken(SimsmithError):
    """Another request recorded this idempotency key first: the caller's transaction, in which
    `record_pending` ran, is rolled back by this error."""


@dataclass
class Claim:
    """An idempotency key a service records inside its own transaction (`record_pending`), so
    the key and the request's effect commit together: one write transaction fewer than `begin`
    + effect, and a duplicate can never leave the effect half-recorded.

    The service sets `committed` once that transaction has committed: only then is the pending
    record this request's to abandon (before, a record under the key is another request's)."""

    api_key_id: int
    key: str
    fingerprint: str
    committed: bool = False
    # Set by a service whose failed request still holds what it claimed (an eSIM order whose
    # CancelOrder did not go through): the caller stores the failure under the key instead of
    # abandoning it, so a retry with the key replays the failure and claims nothing more.
    keep: bool = False


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    content_type: str | None
    body: str


def fingerprint(method: str, path: str, body: bytes, query: str = "") -> str:
    """SHA-256 over the method, path, body and (when there is one) the query, each
    length-prefixed. The query is canonical (pairs sorted): `?a=1&b=2` and `?b=2&a=1` are one
    request; without a query the value is what it was before the query counted."""
    h = hashlib.sha256()
    parts = [method.upper().encode(), path.encode(), body]
    if query:
        parts.append(b"?" + urlencode(sorted(parse_qsl(query, keep_blank_values=True))).encode())
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


class StreamFingerprint:
    """`fingerprint` for a request whose body is read as a stream and never held whole (an
    upload of up to 1 GiB): the body's SHA-256, fed chunk by chunk, stands in for the body."""

    def __init__(self, method: str, path: str, query: str = "") -> None:
        self._request = (method, path, query)
        self._body = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self._body.update(chunk)

    def hexdigest(self) -> str:
        method, path, query = self._request
        return fingerprint(method, path, b"sha256:" + self._body.digest(), query)


def check_key(key: str) -> None:
    """InvalidInput unless `key` is a usable Idempotency-Key."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput("Idempotency-Key", "empty, too long or not printable",
                           expected=f"1..{MAX_KEY_LENGTH} printable characters")


def existing(engine: Engine, api_key_id: int, key: str, fp: str) -> StoredResponse:
    found = lookup(engine, api_key_id, key, fp)
    if found is None:  # recorded, then abandoned meanwhile: as good as in progress
        raise IdempotencyInProgress("a request with this Idempotency-Key is still in progress")
    return found


def lookup(engine: Engine, api_key_id: int, key: str, fp: str) -> StoredResponse | None:
    """Without writing: None if the key is new; its stored response to replay; or
    IdempotencyKeyReused / IdempotencyInProgress."""
    check_key(key)
    with read_session(engine) as s:
        row = s.execute(_FIND, {"api_key_id": api_key_id, "key": key}).first()
    if row is None:
        return None
    if row.fingerprint != fp:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used for a different request")
    if row.state != "done" or row.status_code is None:
        raise IdempotencyInProgress("a request with this Idempotency-Key is still in progress")
    return StoredResponse(row.status_code, row.content_type, row.body or "")


def begin(engine: Engine, api_key_id: int, key: str, fp: str) -> StoredResponse | None:
    """None: go ahead (the key is now pending). A StoredResponse: replay it."""
    check_key(key)
    try:
        # One INSERT: the unique (api_key_id, key) refuses a key seen before. Every POST with
        # the header pays for this and for `complete` (two more write transactions on SQLite).
        with connection_transaction(engine) as conn:
            conn.execute(_INSERT, {"api_key_id": api_key_id, "key": key, "fingerprint": fp,
                                   "state": "pending", "created_at": utcnow()})
        return None
    except IntegrityError:
        pass  # the key exists: replay, or refuse
    return existing(engine, api_key_id, key, fp)


def record_pending(tx: Tx, claim: Claim) -> None:
    """Record `claim` as pending inside the caller's transaction; ClaimTaken (which rolls that
    transaction back) if the key is recorded already."""
    try:
        core(tx).execute(_INSERT, {"api_key_id": claim.api_key_id, "key": claim.key,
                                   "fingerprint": claim.fingerprint, "state": "pending",
                                   "created_at": utcnow()})
    except IntegrityError as e:
        raise ClaimTaken(f"Idempotency-Key {claim.key!r} was recorded by another request") from e


def complete(engine: Engine, api_key_id: int, key: str, response: StoredResponse) -> None:
    with connection_transaction(engine) as conn:
        conn.execute(_COMPLETE, {"w_api_key_id": api_key_id, "w_key": key, "state": "done",
                                 "status_code": response.status_code,
                                 "content_type": response.content_type, "body": response.body})


# Built once (these run on every POST that carries the header).
_TABLE: Any = IdempotencyRecord.__table__  # type: ignore[attr-defined]
_INSERT = _TABLE.insert()
_FIND = select(_TABLE).where(_TABLE.c.api_key_id == bindparam("api_key_id"),
                             _TABLE.c.key == bindparam("key"))
_COMPLETE = update(_TABLE).where(_TABLE.c.api_key_id == bindparam("w_api_key_id"),
                                 _TABLE.c.key == bindparam("w_key"))


def abandon(engine: Engine, api_key_id: int, key: str) -> None:
    with transaction(engine) as s:
        s.execute(delete(IdempotencyRecord).where(
            col(IdempotencyRecord.api_key_id) == api_key_id, col(IdempotencyRecord.key) == key,
            col(IdempotencyRecord.state) == "pending"))


def purge(engine: Engine, older_than: timedelta = timedelta(hours=24)) -> int:
    with transaction(engine) as s:
        result = s.execute(delete(IdempotencyRecord).where(
            col(IdempotencyRecord.created_at) < utcnow() - older_than))
        return int(result.rowcount)  # type: ignore[attr-defined]
