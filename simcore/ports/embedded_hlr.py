"""The embedded HLR: the HLR port over a subscriber register in simsmith's own store
(`hlr_subscriber`, simcore.ports.hlr_models) — what `make run` and a fresh workspace provision
when no osmo-hlr is configured (SIMSMITH_HLR=embedded, the default without SIMSMITH_HLR_HOST).

It holds what an HLR holds of a subscriber (3GPP TS 23.008: IMSI, MSISDN, CS/PS network
access) and the authentication keys as the HSM's references (KeyRef tokens, wrapped) — never K
or OPc in clear, so nothing leaves the HSM for it. It behaves like osmo-hlr over CTRL, so the
workflows see the same port: `provision` creates or updates (MSISDN replaced, access set as
asked, in one transaction: a subscriber provisioned barred is never allowed for a moment), an
MSISDN is unique (another subscriber's number is refused), `set_msisdn`/`set_access` on an
unknown IMSI are refused, `remove` of an unknown IMSI succeeds.

No network element reaches this register (it serves no MAP, GSUP or Diameter): it is the
embedded default for development, demos and tests, refused in production mode unless
SIMSMITH_HLR_ALLOW_EMBEDDED says otherwise (simcore.config.hlr_choice).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, or_, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, col

from simcore.db import read_session, transaction
from simcore.errors import InvalidInput
from simcore.identifiers import Imsi, Msisdn
from simcore.models import utcnow
from simcore.ports.hlr import HlrRefused, HlrSubscriber, HlrUnavailable
from simcore.ports.hlr_models import HlrEntry

T = TypeVar("T")


@dataclass(frozen=True)
class HlrView:
    """A subscriber as `simsmith hlr show` prints it: the keys only as fingerprints of their
    references (which HSM-wrapped key it holds, not the key)."""

    imsi: str
    msisdn: str | None
    iccid: str
    cs_allowed: bool
    ps_allowed: bool
    ki_ref_sha256: str
    opc_ref_sha256: str
    created_at: str
    updated_at: str

    @property
    def access(self) -> str:
        if self.cs_allowed and self.ps_allowed:
            return "allowed"
        return "barred" if not (self.cs_allowed or self.ps_allowed) else "partly barred"

    def as_dict(self) -> dict[str, Any]:
        return {"imsi": self.imsi, "msisdn": self.msisdn, "iccid": self.iccid,
                "access": self.access, "cs_allowed": self.cs_allowed,
                "ps_allowed": self.ps_allowed, "ki_ref_sha256": self.ki_ref_sha256,
                "opc_ref_sha256": self.opc_ref_sha256, "created_at": self.created_at,
                "updated_at": self.updated_at}


def _fingerprint(ref: str) -> str:
    return hashlib.sha256(ref.encode()).hexdigest()[:16]


def _view(e: HlrEntry) -> HlrView:
    return HlrView(e.imsi, e.msisdn, e.iccid, e.cs_allowed, e.ps_allowed,
                   _fingerprint(e.ki_ref), _fingerprint(e.opc_ref), e.created_at.isoformat(),
                   e.updated_at.isoformat())


class EmbeddedHlr:
    """HlrPort over the store's `hlr_subscriber` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __repr__(self) -> str:
        return "EmbeddedHlr()"

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        """A transaction; the store failing (down, busy, a lost connection) is the HLR being
        unavailable — worth a retry, and it may have committed (maybe_executed)."""
        try:
            with transaction(self.engine) as s:
                yield s
        except IntegrityError as e:  # a race on the same IMSI or MSISDN: try again
            raise HlrUnavailable(f"embedded HLR: conflicting write: {e.orig}") from e
        except DBAPIError as e:
            raise HlrUnavailable(f"embedded HLR: {type(e.orig).__name__}: {e.orig}") from e

    @staticmethod
    def _locked(s: Session, imsi: str) -> HlrEntry | None:
        return s.execute(select(HlrEntry).where(col(HlrEntry.imsi) == imsi)
                         .with_for_update()).scalars().first()

    @staticmethod
    def _check_number_free(s: Session, imsi: str, msisdn: str | None) -> None:
        if msisdn is None:
            return
        holder = s.execute(select(col(HlrEntry.imsi)).where(
            col(HlrEntry.msisdn) == msisdn, col(HlrEntry.imsi) != imsi)).scalar_one_or_none()
        if holder is not None:
            raise HlrRefused(f"embedded HLR: MSISDN {msisdn} is subscriber {holder}'s")

    def provision(self, sub: HlrSubscriber) -> None:
        with self._tx() as s:
            self._check_number_free(s, sub.imsi, sub.msisdn)
            entry = self._locked(s, sub.imsi)
            now = utcnow()
            if entry is None:
                entry = HlrEntry(imsi=sub.imsi, created_at=now, iccid=sub.iccid,
                                 ki_ref=sub.ki_ref, opc_ref=sub.opc_ref)
            entry.iccid, entry.ki_ref, entry.opc_ref = sub.iccid, sub.ki_ref, sub.opc_ref
            entry.msisdn = sub.msisdn
            entry.cs_allowed = entry.ps_allowed = sub.allowed
            entry.updated_at = now
            s.add(entry)

    def _change(self, imsi: str, what: str, fn: Callable[[Session, HlrEntry], None]) -> None:
        with self._tx() as s:
            entry = self._locked(s, imsi)
            if entry is None:
                raise HlrRefused(f"embedded HLR: {what} {imsi}: no such subscriber")
            fn(s, entry)
            entry.updated_at = utcnow()
            s.add(entry)

    def set_msisdn(self, imsi: str, msisdn: str | None) -> None:
        def fn(s: Session, entry: HlrEntry) -> None:
            self._check_number_free(s, imsi, msisdn)
            entry.msisdn = msisdn
        self._change(imsi, "msisdn", fn)

    def set_access(self, imsi: str, *, allowed: bool) -> None:
        def fn(s: Session, entry: HlrEntry) -> None:
            entry.cs_allowed = entry.ps_allowed = allowed
        self._change(imsi, "access", fn)

    def remove(self, imsi: str) -> None:
        with self._tx() as s:
            entry = self._locked(s, imsi)
            if entry is not None:
                s.delete(entry)

    # --- reading (simsmith hlr show / list, tests) --------------------------------------------

    def exists(self, imsi: str) -> bool:
        with read_session(self.engine) as s:
            return s.get(HlrEntry, imsi) is not None

    def lookup(self, who: str) -> HlrView:
        """The subscriber by IMSI or MSISDN (digits; an MSISDN may carry its '+');
        InvalidInput if `who` is neither, NotFound if the HLR holds no such subscriber."""
        from simcore.errors import NotFound

        text = who.strip()
        keys: list[str] = []
        for parse in (Imsi.parse, Msisdn.parse):
            try:
                keys.append(parse(text).digits)
            except InvalidInput:
                continue
        if not keys:
            raise InvalidInput("subscriber", "neither an IMSI nor an MSISDN", value=text[:20],
                               expected="15 IMSI digits or an E.164 number")
        with read_session(self.engine) as s:
            entry = s.execute(select(HlrEntry).where(or_(
                col(HlrEntry.imsi).in_(keys), col(HlrEntry.msisdn).in_(keys)))
            ).scalars().first()
        if entry is None:
            raise NotFound(f"the embedded HLR holds no subscriber {text}")
        return _view(entry)

    def list(self, *, limit: int = 50) -> list[HlrView]:
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit", "out of range", value=str(limit), expected="1..1000")
        with read_session(self.engine) as s:
            rows = s.execute(select(HlrEntry).order_by(col(HlrEntry.imsi)).limit(limit)
                             ).scalars().all()
        return [_view(e) for e in rows]
