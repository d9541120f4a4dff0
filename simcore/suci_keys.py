"""SUCI services: the home-network key registry, de-concealment for a UDM, concealment for labs.

The HSM holds the private keys (hsm_sim.suci_keys; a KeyRef token per key in `suci_key`); this
module keeps their lifecycle and answers a SUCI with its SUPI (3GPP TS 33.501 §6.12.2: the
SIDF of the UDM de-conceals with the private key the home network public key identifier names).

- Key lifecycle: `generate_key` / `import_key` add an identifier (0-255) in state `active`;
  several identifiers are active at once, so cards carrying the old key keep working while new
  ones get the new key (rotation with overlap); `retire_key` ends one: its SUCIs are refused
  (RetiredKey) while its row stays for the record. An identifier is never reused.
- `deconceal`: SUCI (string or binary form) -> IMSI. Errors are exact and nothing partial is
  returned: InvalidSuci/UnsupportedScheme (simcore.suci), UnknownKeyId, RetiredKey,
  SchemeMismatch (a key id of the other profile), hsm_sim.ecies.MacFailure and
  MalformedSchemeOutput. The audit event (`suci.deconcealed`, actor, key id, scheme, the IMSI)
  is committed before the IMSI is returned; a failed MAC is audited too.
- `conceal`: what a UE computes, from the registry's public key (labs and tests).
- `calc_info`: EF.SUCI_Calc_Info bytes for the active keys, for card and profile writers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine, select
from sqlmodel import col

from cards.profile import SuciFiles
from hsm_sim.ecies import MacFailure, MalformedSchemeOutput, ProtectionScheme, public_key_of
from hsm_sim.eki import EkiScheme
from hsm_sim.keyref import KeyRef
from simcore import audit
from simcore.config import get_settings
from simcore.db import read_session, transaction
from simcore.errors import Conflict, InvalidInput, NotFound
from simcore.identifiers import Imsi
from simcore.models import utcnow
from simcore.models_suci import SuciKey
from simcore.suci import (
    HomeNetworkPublicKey,
    InvalidSuci,
    Suci,
    conceal_imsi,
    msin_from_scheme_input,
    routing_indicator_bcd,
    suci_calc_info,
)

__all__ = [
    "Deconcealed",
    "RetiredKey",
    "SchemeMismatch",
    "SuciHsm",
    "SuciKeyInfo",
    "UnknownKeyId",
    "calc_info",
    "card_files",
    "conceal",
    "deconceal",
    "generate_key",
    "get_key",
    "import_key",
    "list_keys",
    "parse_suci",
    "retire_key",
]

ACTIVE, RETIRED = "active", "retired"


class SuciHsm(Protocol):
    """What these services need of an HSM (both backends have it: hsm_sim.suci_keys)."""

    backend: str

    def suci_generate(self, key_id: int, scheme: ProtectionScheme) -> tuple[KeyRef, bytes]: ...

    def suci_import(self, key_id: int, scheme: ProtectionScheme, data: bytes, transport: str,
                    eki_scheme: EkiScheme = ...) -> tuple[KeyRef, bytes]: ...

    def suci_deconceal(self, ref: KeyRef, scheme_output: bytes, *, key_id: int | None = None,
                       audit: bool = True) -> bytes: ...


HsmSource = SuciHsm | Callable[[], Any]


class UnknownKeyId(NotFound):
    """A SUCI names a home network public key identifier simsmith does not hold."""


class RetiredKey(Conflict):
    """A SUCI names a retired home network public key identifier."""


class SchemeMismatch(InvalidSuci):
    """A SUCI's protection scheme is not the profile of the key its identifier names."""


@dataclass(frozen=True)
class SuciKeyInfo:
    """What may be shown of a home-network key: never the private key nor its blob."""

    key_id: int
    scheme: ProtectionScheme
    public_key: bytes
    source: str
    state: str
    created_at: datetime
    retired_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "scheme": int(self.scheme),
                "profile": self.scheme.label, "public_key": self.public_key.hex(),
                "source": self.source, "state": self.state,
                "created_at": self.created_at.isoformat(),
                "retired_at": self.retired_at.isoformat() if self.retired_at else None}


@dataclass(frozen=True)
class Deconcealed:
    """The answer to a SUCI: its SUPI (an IMSI) and what it was concealed with."""

    suci: Suci
    imsi: Imsi

    @property
    def supi(self) -> str:
        """The SUPI in TS 29.503's form (`imsi-<digits>`)."""
        return f"imsi-{self.imsi.digits}"

    def as_dict(self) -> dict[str, Any]:
        return {"supi": self.supi, "imsi": self.imsi.digits,
                "scheme": int(self.suci.scheme), "key_id": self.suci.key_id,
                "routing_indicator": self.suci.routing_indicator}


def _info(row: SuciKey) -> SuciKeyInfo:
    return SuciKeyInfo(row.key_id, ProtectionScheme(row.scheme), bytes.fromhex(row.public_key),
                       row.source, row.state, row.created_at, row.retired_at)


def _check_key_id(key_id: int) -> None:
    if not 0 <= key_id <= 255:
        raise InvalidInput("key_id", f"{key_id} is out of range", expected="0 to 255")


def _scheme(value: int | str | ProtectionScheme) -> ProtectionScheme:
    names = {"a": ProtectionScheme.PROFILE_A, "b": ProtectionScheme.PROFILE_B,
             "1": ProtectionScheme.PROFILE_A, "2": ProtectionScheme.PROFILE_B}
    scheme = names.get(str(int(value)) if isinstance(value, int) else str(value).lower())
    if scheme is None:
        raise InvalidInput("profile", "not an ECIES profile", value=str(value),
                           expected="A (X25519) or B (secp256r1)")
    return scheme


def opened_hsm(hsm: HsmSource) -> SuciHsm:
    opened: SuciHsm = hsm() if callable(hsm) else hsm
    return opened


# --- registry ----------------------------------------------------------------------------------

def _add(engine: Engine, key_id: int, scheme: ProtectionScheme, make: Callable[[], tuple[
        KeyRef, bytes]], source: str, actor: str, details: dict[str, Any]) -> SuciKeyInfo:
    _check_key_id(key_id)
    with read_session(engine) as s:
        if s.get(SuciKey, key_id) is not None:
            raise Conflict(f"home network public key identifier {key_id} is taken (identifiers "
                           "are never reused: pick another)")
    ref, public = make()
    row = SuciKey(key_id=key_id, scheme=int(scheme), public_key=public.hex(),
                  key_ref=ref.to_token(), source=source, state=ACTIVE)
    with transaction(engine) as s:
        if s.get(SuciKey, key_id) is not None:
            raise Conflict(f"home network public key identifier {key_id} is taken")
        s.add(row)
        s.flush()
        audit.append(s, actor=actor, action=f"suci.key_{source}", subject_type="suci_key",
                     subject_id=str(key_id), details={"scheme": scheme.label,
                                                      "public_key": public.hex(), **details})
        info = _info(row)
    return info


def generate_key(engine: Engine, hsm: HsmSource, key_id: int, profile: int | str, *,
                 actor: str) -> SuciKeyInfo:
    """A new key pair made inside the HSM for identifier `key_id` (Conflict if taken)."""
    scheme = _scheme(profile)
    return _add(engine, key_id, scheme, lambda: opened_hsm(hsm).suci_generate(key_id, scheme),
                "generate", actor, {})


def import_key(engine: Engine, hsm: HsmSource, key_id: int, profile: int | str, data: bytes,
               transport: str, *, actor: str,
               eki_scheme: EkiScheme = EkiScheme.AES128_ECB) -> SuciKeyInfo:
    """A private key encrypted under transport KEK `transport` (32 octets, `eki_scheme`)."""
    scheme = _scheme(profile)
    return _add(engine, key_id, scheme,
                lambda: opened_hsm(hsm).suci_import(key_id, scheme, data, transport, eki_scheme),
                "import", actor, {"transport": transport, "eki_scheme": str(eki_scheme)})


def list_keys(engine: Engine, *, state: str | None = None) -> list[SuciKeyInfo]:
    with read_session(engine) as s:
        q = select(SuciKey).order_by(col(SuciKey.key_id))
        if state is not None:
            q = q.where(col(SuciKey.state) == state)
        return [_info(r) for r in s.execute(q).scalars()]


def get_key(engine: Engine, key_id: int) -> SuciKeyInfo:
    with read_session(engine) as s:
        row = s.get(SuciKey, key_id)
        if row is None:
            raise UnknownKeyId(f"no home-network key with identifier {key_id}")
        return _info(row)


def retire_key(engine: Engine, key_id: int, *, actor: str) -> SuciKeyInfo:
    """End identifier `key_id`: its SUCIs are refused from now on (Conflict if retired)."""
    with transaction(engine) as s:
        row = s.get(SuciKey, key_id, with_for_update=True)
        if row is None:
            raise UnknownKeyId(f"no home-network key with identifier {key_id}")
        if row.state == RETIRED:
            raise RetiredKey(f"home-network key {key_id} is already retired")
        row.state, row.retired_at = RETIRED, utcnow()
        s.add(row)
        s.flush()
        others = s.execute(select(col(SuciKey.key_id)).where(
            col(SuciKey.state) == ACTIVE, col(SuciKey.key_id) != key_id)).scalars().all()
        audit.append(s, actor=actor, action="suci.key_retire", subject_type="suci_key",
                     subject_id=str(key_id), details={"still_active": list(others)})
        info = _info(row)
    return info


def refs_for_export(engine: Engine, key_ids: Sequence[int] | None
                    ) -> list[tuple[SuciKeyInfo, KeyRef]]:
    """(info, ref) of the given identifiers (every active key when None): for exports."""
    with read_session(engine) as s:
        q = select(SuciKey).order_by(col(SuciKey.key_id))
        if key_ids is None:
            q = q.where(col(SuciKey.state) == ACTIVE)
        else:
            q = q.where(col(SuciKey.key_id).in_(list(key_ids)))
        rows = list(s.execute(q).scalars())
    if key_ids is not None:
        missing = sorted(set(key_ids) - {r.key_id for r in rows})
        if missing:
            raise UnknownKeyId(f"no home-network key with identifier {missing[0]}")
    return [(_info(r), KeyRef.from_token(r.key_ref)) for r in rows]


# --- SUCIs -------------------------------------------------------------------------------------

def parse_suci(value: str | bytes) -> Suci:
    """A SUCI from its string form, or its binary form (bytes, or hex prefixed by `0x`)."""
    if isinstance(value, bytes):
        return Suci.from_bytes(value)
    v = value.strip()
    if v[:2].lower() == "0x":
        try:
            raw = bytes.fromhex(v[2:])
        except ValueError:
            raise InvalidSuci("suci", "0x-prefixed value is not hex",
                              position="character 2") from None
        return Suci.from_bytes(raw)
    return Suci.parse(v)


def deconceal(engine: Engine, hsm: HsmSource, value: str | bytes | Suci, *,
              actor: str) -> Deconcealed:
    """The IMSI of a SUCI, de-concealed by the HSM with the key its identifier names; the
    audit event is committed before it is returned (see the module docstring for errors)."""
    suci = value if isinstance(value, Suci) else parse_suci(value)
    if suci.scheme is ProtectionScheme.NULL:
        msin = msin_from_scheme_input(suci.scheme_output)
        ref = None
    else:
        with read_session(engine) as s:
            row = s.get(SuciKey, suci.key_id)
            if row is None:
                raise UnknownKeyId(f"SUCI key id {suci.key_id}: no home-network key with this "
                                   "identifier")
            if row.state != ACTIVE:
                raise RetiredKey(f"SUCI key id {suci.key_id}: this home-network key is retired")
            if row.scheme != int(suci.scheme):
                raise SchemeMismatch(
                    "protection_scheme", f"{suci.scheme.label} with key id {suci.key_id}, "
                    f"a {ProtectionScheme(row.scheme).label} key",
                    expected=f"scheme {row.scheme} for key id {suci.key_id}")
            ref = KeyRef.from_token(row.key_ref)
        try:
            plain = opened_hsm(hsm).suci_deconceal(ref, suci.scheme_output, key_id=suci.key_id)
        except (MacFailure, MalformedSchemeOutput) as e:
            with transaction(engine) as s:
                audit.append(s, actor=actor, action="suci.deconceal_failed",
                             subject_type="suci_key", subject_id=str(suci.key_id),
                             details={"scheme": suci.scheme.label, "error": type(e).__name__})
            raise
        msin = msin_from_scheme_input(plain)
    imsi = suci.imsi(msin)
    with transaction(engine) as s:
        audit.append(s, actor=actor, action="suci.deconcealed", subject_type="suci_key",
                     subject_id=str(suci.key_id), details={
                         "scheme": suci.scheme.label, "imsi": imsi.digits,
                         "routing_indicator": suci.routing_indicator})
    return Deconcealed(suci, imsi)


def conceal(engine: Engine, imsi: str, profile: int | str, key_id: int, *,
            routing_indicator: str = "0", mnc_length: int | None = None) -> Suci:
    """The SUCI a UE would send for `imsi` with the registry's public key `key_id` (labs,
    tests; `profile` 0/null gives the null-scheme). No secret is involved."""
    parsed = Imsi.parse(imsi, mnc_length)
    if str(profile).lower() in ("0", "null"):
        return conceal_imsi(parsed, ProtectionScheme.NULL, 0, None,
                            routing_indicator=routing_indicator)
    scheme = _scheme(profile)
    info = get_key(engine, key_id)
    if info.state != ACTIVE:
        raise RetiredKey(f"home-network key {key_id} is retired")
    if info.scheme is not scheme:
        raise SchemeMismatch("profile", f"{scheme.label} asked, key {key_id} is "
                             f"{info.scheme.label}")
    return conceal_imsi(parsed, scheme, key_id, info.public_key,
                        routing_indicator=routing_indicator)


def calc_info(engine: Engine, *, null_scheme: bool = True) -> bytes:
    """EF.SUCI_Calc_Info (TS 31.102 §4.4.11.8) for the active keys, newest identifier first
    (the card's ME picks the first profile it supports)."""
    keys = sorted(list_keys(engine, state=ACTIVE), key=lambda k: k.created_at, reverse=True)
    return suci_calc_info([HomeNetworkPublicKey(k.key_id, k.scheme,
                                                public_key_of(k.scheme, k.public_key))
                           for k in keys], null_scheme=null_scheme)


def card_files(engine: Engine, *, by: str | None = None,
               routing_indicator: str | None = None) -> SuciFiles:
    """What `card program` writes to DF.5GS (cards.profile.SuciFiles): EF.SUCI_Calc_Info for
    the active keys (`calc_info`; the null-scheme only while there is none), the routing
    indicator and who computes the SUCI — `by` "me" or "usim", both defaulting to the
    settings (SIMSMITH_SUCI_CALCULATION, SIMSMITH_SUCI_ROUTING_INDICATOR). InvalidInput naming
    `suci_by` or `routing_indicator` for a bad value."""
    settings = get_settings()
    by = by or settings.suci_calculation
    if by not in ("me", "usim"):
        raise InvalidInput("suci_by", f"{by!r}", expected="me (the phone) or usim (the card)")
    ri = settings.suci_routing_indicator if routing_indicator is None else routing_indicator
    routing_indicator_bcd(ri)  # InvalidSuci (an InvalidInput) naming routing_indicator
    return SuciFiles(calc_info(engine), ri, by_usim=by == "usim")
