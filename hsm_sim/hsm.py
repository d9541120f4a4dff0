"""The HSM interface every backend implements, and the small types it speaks.

Design §2: data keys (Ki, OPc, OP, …) exist in clear only inside a backend; callers hold KeyRefs.
Backends: `hsm_sim.soft.SoftHsm` (in-process, `cryptography`) and `hsm_sim.pkcs11.Pkcs11Hsm`
(python-pkcs11, tested on SoftHSM2). Every operation is reported to an optional `AuditSink`
with subjects and key check values only — never key bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from hsm_sim.eki import EkiScheme
from hsm_sim.errors import BadLength, WrongKeyType
from hsm_sim.gsm import GsmTriplet
from hsm_sim.keyref import KeyRef, KeyType
from hsm_sim.milenage import AuthVector

__all__ = [
    "CODE_LENGTH",
    "CODE_TYPES",
    "DEFAULT_AMF",
    "REVEALABLE_CODES",
    "AuditSink",
    "Hsm",
    "KekInfo",
    "KekPurpose",
    "NullAudit",
    "Slot",
    "check_revealable",
    "check_slots",
    "code_digits",
    "code_from_random",
    "generate_sim_keys",
    "vectors",
]

DEFAULT_AMF = b"\x80\x00"  # AMF separation bit set (TS 33.401 Annex H)


class KekPurpose(StrEnum):
    STORAGE = "storage"  # wraps data keys at rest
    TRANSPORT = "transport"  # SIM-vendor key that encrypts EKI/EOPC in input files
    EXPORT = "export"  # counterparty (HSS/HLR) key that exported keys are wrapped under


@dataclass(frozen=True)
class KekInfo:
    """What may be shown about a KEK: never the key, only its check values."""

    name: str
    purpose: KekPurpose
    kcv: str  # AES-CMAC KCV, hex
    legacy_kcv: str  # AES-ECB-of-zeros KCV, hex, labelled "legacy" when shown
    insecure_clear: bool = False  # export target that receives keys in clear (audited)
    derived: bool = False  # derived from the master key rather than entered or generated

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "purpose": self.purpose.value,
            "kcv": self.kcv,
            "legacy_kcv": self.legacy_kcv,
            "insecure_clear": self.insecure_clear,
            "derived": self.derived,
        }


# Key types holding a card access code (PIN, PUK, ADM) rather than a cryptographic key: stored as
# the card sends them, ASCII digits padded with 'FF' to 8 bytes (ETSI TS 102 221 §9.5.1).
CODE_TYPES = frozenset({KeyType.PIN, KeyType.PUK, KeyType.ADM})
CODE_LENGTH = 8
# The codes `reveal_code` hands out in clear (a subscriber's own PIN and PUK, read out by
# customer care). ADM codes open the card's files to the operator: never revealed.
REVEALABLE_CODES = frozenset({KeyType.PIN, KeyType.PUK})
# What `reveal_service_code` hands out: every code type, ADM included, for a service centre that
# re-programs a card (PIN2, PUK2, ADM1). A separate call, audited under its own action, so the
# care path can never reach an ADM code.
SERVICE_CODES = CODE_TYPES


class Slot(Protocol):
    """Where `patch_keys` writes one key into a caller's buffer (esim.compiled.KeySlot fits)."""

    @property
    def offset(self) -> int: ...

    @property
    def length(self) -> int: ...


def check_slots(buf: bytearray, slots: Sequence[Slot], refs: Sequence[KeyRef]) -> None:
    """Shape checks before any key is unwrapped: one ref per slot, every slot inside `buf`."""
    if len(slots) != len(refs):
        raise BadLength(f"patch_keys: {len(slots)} slots but {len(refs)} key references")
    for i, slot in enumerate(slots):
        if slot.offset < 0 or slot.length < 1 or slot.offset + slot.length > len(buf):
            raise BadLength(f"patch_keys: slot {i} ({slot.offset}+{slot.length}) lies outside "
                            f"the {len(buf)}-byte buffer")


def code_from_random(random: Callable[[int], bytes], digits: int) -> bytes:
    """A random decimal code of `digits` digits (rejection sampling, no modulo bias), coded as
    ASCII padded with 'FF' to 8 bytes."""
    if not 4 <= digits <= CODE_LENGTH:
        raise BadLength(f"a code has 4 to {CODE_LENGTH} digits, not {digits}")
    out = bytearray()
    while len(out) < digits:
        out.extend(0x30 + b % 10 for b in random(2 * digits) if b < 250)
    return bytes(out[:digits]).ljust(CODE_LENGTH, b"\xff")


def check_revealable(ref: KeyRef) -> None:
    """WrongKeyType unless `ref` is a PIN or PUK code (see REVEALABLE_CODES)."""
    if ref.key_type not in REVEALABLE_CODES:
        raise WrongKeyType(f"reveal_code reveals PIN and PUK codes only, not "
                           f"{ref.key_type.value} (key of {ref.owner})")


def check_service_revealable(ref: KeyRef) -> None:
    """WrongKeyType unless `ref` is a card access code (PIN, PUK or ADM; see SERVICE_CODES)."""
    if ref.key_type not in SERVICE_CODES:
        raise WrongKeyType(f"reveal_service_code reveals PIN, PUK and ADM codes only, not "
                           f"{ref.key_type.value} (key of {ref.owner})")


def code_digits(stored: bytes, ref: KeyRef) -> str:
    """The digits of a code in its stored form (ASCII digits padded with 'FF' to 8 bytes).
    BadLength, naming the ref but not the value, for anything else."""
    digits = stored.rstrip(b"\xff")
    if len(stored) != CODE_LENGTH or not 4 <= len(digits) <= CODE_LENGTH or not (
            digits.isdigit() and digits.isascii()):
        raise BadLength(f"the {ref.key_type.value} code of {ref.owner} is not stored as 4 to "
                        f"{CODE_LENGTH} ASCII digits padded with FF to {CODE_LENGTH} bytes")
    return digits.decode("ascii")


class AuditSink(Protocol):
    """Where the HSM reports what it did. `details` never holds key bytes."""

    def record(self, action: str, subject: str, details: dict[str, Any]) -> None: ...


class NullAudit:
    def record(self, action: str, subject: str, details: dict[str, Any]) -> None:
        return None


@runtime_checkable
class Hsm(Protocol):
    """Key custody operations shared by every backend."""

    backend: str

    def kek_add(
        self,
        name: str,
        purpose: KekPurpose,
        components: Sequence[bytes] | None = None,
        *,
        insecure_clear: bool = False,
        expected_kcv: str | None = None,
    ) -> KekInfo: ...

    def kek_list(self) -> list[KekInfo]: ...

    def transport_kcvs(self, name: str, scheme: EkiScheme) -> dict[str, str]:
        """The check values a vendor may announce for transport KEK `name` used with `scheme`,
        by label (hex): {"KCV": AES-CMAC, "legacy": AES-ECB} for AES schemes, {"3DES KCV":
        3DES-ECB of 8 zero bytes} for 3DES ones (hsm_sim.kcv)."""
        ...

    def generate(self, owner: str, key_type: KeyType, length: int = 16) -> KeyRef: ...

    def import_clear(self, owner: str, key_type: KeyType, key: bytes) -> KeyRef: ...

    def import_clear_many(self, items: Sequence[tuple[str, KeyType, bytes]]) -> list[KeyRef]:
        """`import_clear` of many (owner, key type, key) in one call, refs in order: a vendor
        file's PIN/PUK/ADM codes and OTA keys, a chunk at a time."""
        ...

    def generate_code(self, owner: str, key_type: KeyType, digits: int = 8) -> KeyRef:
        """A random PIN/PUK/ADM code made inside the boundary (see CODE_TYPES), wrapped."""
        ...

    def patch_keys(
        self, buf: bytearray, slots: Sequence[Slot], refs: Sequence[KeyRef],
        *, owner: str | None = None,
    ) -> None:
        """Unwrap each ref inside the boundary and write its bytes into `buf` at its slot: the
        personalisation path (a SAIP package, a card's key file APDU). Audited without keys;
        `owner` refuses a ref of another SIM (WrongOwner)."""
        ...

    def reveal_code(self, ref: KeyRef, *, owner: str) -> str:
        """The digits of a PIN or PUK code (customer care reads a subscriber's PIN1/PUK1 out):
        unwrapped inside the boundary, returned as a string. ADM codes and every cryptographic
        key are refused (WrongKeyType), a ref of another owner too (WrongOwner). Audited as
        `key.reveal` with the key type only."""
        ...

    def reveal_service_code(self, ref: KeyRef, *, owner: str) -> str:
        """The digits of a PIN, PUK or ADM code, for a service centre re-programming the card:
        unwrapped inside the boundary, returned as a string. Cryptographic keys are refused
        (WrongKeyType), a ref of another owner too (WrongOwner). Audited as
        `key.reveal_service` with the key type only."""
        ...

    def import_encrypted(
        self, owner: str, key_type: KeyType, data: bytes, transport: str, scheme: EkiScheme
    ) -> KeyRef: ...

    def import_batch(
        self,
        rows: Sequence[tuple[str, bytes, bytes | None]],
        transport: str,
        scheme: EkiScheme,
    ) -> list[tuple[KeyRef, KeyRef | None]]: ...

    def derive_opc(self, ki: KeyRef, op: KeyRef) -> KeyRef: ...

    def rewrap(self, refs: Sequence[KeyRef]) -> list[KeyRef]:
        """Each ref in the backend's current blob format (docs/hsm.md "Blob format"); a ref of
        another backend is refused. Audited as `key.rewrap` with counts only."""
        ...

    def kcv(self, ref: KeyRef) -> bytes: ...

    def milenage_vectors(
        self,
        ki: KeyRef,
        opc: KeyRef,
        sqns: Sequence[int],
        amf: bytes = DEFAULT_AMF,
        rands: Sequence[bytes] | None = None,
    ) -> list[AuthVector]: ...

    def milenage_resync(self, ki: KeyRef, opc: KeyRef, rand: bytes, auts: bytes) -> int: ...

    def gsm_triplets(
        self, ki: KeyRef, opc: KeyRef, rands: Sequence[bytes]
    ) -> list[GsmTriplet]: ...

    def export(
        self, refs: Sequence[KeyRef], target: str, scheme: str = "kwp"
    ) -> list[bytes]: ...


def generate_sim_keys(hsm: Hsm, owner: str, op: KeyRef | None = None) -> tuple[KeyRef, KeyRef]:
    """A new SIM's (Ki, OPc): random Ki; OPc derived from the operator's OP, or random."""
    ki = hsm.generate(owner, KeyType.KI)
    opc = hsm.derive_opc(ki, op) if op is not None else hsm.generate(owner, KeyType.OPC)
    return ki, opc


def vectors(
    hsm: Hsm,
    ki: KeyRef,
    opc: KeyRef,
    *,
    count: int = 1,
    sqn: int,
    rand: bytes | None = None,
    amf: bytes = DEFAULT_AMF,
    ind_bits: int = 5,
) -> list[AuthVector]:
    """`count` Milenage vectors for one SIM, computed inside the HSM.

    SQN = SEQ || IND (TS 33.102 Annex C): vector i uses `sqn + (i << ind_bits)`, so the caller
    passes the first SQN to use and stores `sqn + (count << ind_bits)` as the next one. RAND is
    random per vector unless `rand` is given (then every vector uses it; calculators, tests).
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    sqns = [sqn + (i << ind_bits) for i in range(count)]
    rands = [rand] * count if rand is not None else [os.urandom(16) for _ in range(count)]
    return hsm.milenage_vectors(ki, opc, sqns, amf, rands)
