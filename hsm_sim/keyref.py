"""KeyRef: what the world outside the HSM boundary holds instead of a key (design §2).

A KeyRef names its backend, key type, owner (an ICCID, or "operator" for operator-wide keys such
as OP) and the storage KEK it is wrapped under, and carries the wrapped blob — never clear bytes.
`to_token()` gives an opaque ASCII string for a TEXT column; `from_token()` reads it back:

    kr1.<backend>.<key type>.<owner>.<kek>.<blob, base64url without padding>
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from enum import StrEnum

from hsm_sim.errors import TamperedBlob

__all__ = ["KeyRef", "KeyType"]


class KeyType(StrEnum):
    """Data key types. The value is the name bound into the wrapping (and shown to people)."""

    KI = "Ki"
    OPC = "OPc"
    OP = "OP"
    TOPC = "TOPc"
    TOP = "TOP"
    PIN = "PIN"
    PUK = "PUK"
    ADM = "ADM"
    KIC = "KIc"
    KID = "KID"
    KIK = "KIK"
    # Data encryption key of an export envelope (simcore.esim_export): made in the HSM, leaves
    # it wrapped under the receiver's export KEK.
    DEK = "DEK"
    HN_A = "HNKeyA"  # SUCI home-network private key, ECIES Profile A (hsm_sim.suci_keys)
    HN_B = "HNKeyB"  # SUCI home-network private key, ECIES Profile B
    # The SM-DP+'s ECDSA signing keys (SGP.22 §2.6.7; hsm_sim.ec_signing), owner = their label.
    SK_DPAUTH = "SKDPauth"
    SK_DPPB = "SKDPpb"
    # The data key an uploaded vendor file is sealed with at rest while its import job lasts
    # (simcore.import_uploads), owner = the upload's id; wrapped under the storage KEK and
    # read out (patch_keys) only by the process that seals or reads that file.
    UPLOAD = "UploadKey"


_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOKEN_PREFIX = "kr1"


@dataclass(frozen=True, slots=True, repr=False)
class KeyRef:
    """An opaque reference to a wrapped data key."""

    backend: str
    key_type: KeyType
    owner: str
    kek: str
    blob: bytes

    def __post_init__(self) -> None:
        for field, value in (("backend", self.backend), ("owner", self.owner), ("kek", self.kek)):
            self.check_name(field, value)
        object.__setattr__(self, "key_type", KeyType(self.key_type))

    @classmethod
    def trusted(cls, backend: str, key_type: KeyType, owner: str, kek: str, blob: bytes) -> KeyRef:
        """Build without re-validating: for backends' batch paths that checked the names once."""
        self = object.__new__(cls)
        # The slots' own setters: five C calls, no tuple of pairs, no frozen-class detour
        # (imports build a million of these).
        sb, st, so, sk, sbl = _SLOT_SETTERS
        sb(self, backend)
        st(self, key_type)
        so(self, owner)
        sk(self, kek)
        sbl(self, blob)
        return self

    @staticmethod
    def check_name(field: str, value: str) -> None:
        if not _NAME.match(value):
            raise ValueError(f"KeyRef {field} must match [A-Za-z0-9_-]{{1,64}}")

    def __repr__(self) -> str:
        return (
            f"KeyRef({self.backend}, {self.key_type.value}, owner={self.owner}, kek={self.kek}, "
            f"blob=<{len(self.blob)} bytes wrapped>)"
        )

    __str__ = __repr__

    def to_token(self) -> str:
        blob = base64.urlsafe_b64encode(self.blob).rstrip(b"=").decode("ascii")
        parts = (self.backend, self.key_type.value, self.owner, self.kek, blob)
        return ".".join((_TOKEN_PREFIX, *parts))

    @classmethod
    def from_token(cls, token: str) -> KeyRef:
        parts = token.split(".")
        if len(parts) != 6 or parts[0] != _TOKEN_PREFIX:
            raise TamperedBlob("not a simsmith key reference token (expected kr1.<6 fields>)")
        _, backend, key_type, owner, kek, blob = parts
        try:
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
            return cls(backend, KeyType(key_type), owner, kek, raw)
        except (ValueError, binascii.Error) as e:
            raise TamperedBlob(f"malformed key reference token: {type(e).__name__}") from None


_SLOT_SETTERS = tuple(KeyRef.__dict__[n].__set__
                      for n in ("backend", "key_type", "owner", "kek", "blob"))
