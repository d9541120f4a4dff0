"""Key ceremony: a key from 2..n custodian components, or (dev only) from a passphrase.

Components are XORed (the classic split-knowledge scheme of ANSI X9.24-1); each component and the
result are reported only by key check value (hsm_sim.kcv): the AES-CMAC KCV and, labelled, the
legacy AES-ECB-of-zeros KCV. A dev master key may come from a passphrase through scrypt
(RFC 7914) — convenient and insecure, and every caller says so loudly (DEV_WARNING).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from hsm_sim.errors import BadKCV, BadLength
from hsm_sim.kcv import kcv, legacy_kcv

__all__ = [
    "DEV_WARNING",
    "KeyCheck",
    "check_announced_kcv",
    "check_kcv",
    "combine_components",
    "key_check",
    "key_from_passphrase",
]

DEV_WARNING = (
    "WARNING: DEV MODE — the master key is derived from a passphrase. Anyone who knows or guesses "
    "it can unwrap every stored key. Never use dev mode for real subscribers."
)

_AES_SIZES = (16, 24, 32)


@dataclass(frozen=True)
class KeyCheck:
    """Check values of one key or component (hex)."""

    kcv: str
    legacy_kcv: str


def key_check(key: bytes) -> KeyCheck:
    return KeyCheck(kcv(key).hex(), legacy_kcv(key).hex())


def combine_components(components: Sequence[bytes], minimum: int = 2) -> bytes:
    """key = component 1 xor component 2 xor … (all of one AES key length)."""
    if len(components) < minimum:
        raise BadLength(f"need at least {minimum} components, got {len(components)}")
    size = len(components[0])
    for i, c in enumerate(components, 1):
        if len(c) not in _AES_SIZES:
            raise BadLength(f"component {i} must be 16, 24 or 32 bytes, got {len(c)}")
        if len(c) != size:
            raise BadLength(f"component {i} is {len(c)} bytes; component 1 is {size}")
        if not any(c):
            raise BadLength(f"component {i} is all zeros")
    if len(set(components)) != len(components):
        raise BadLength("two components are identical")
    acc = 0
    for c in components:
        acc ^= int.from_bytes(c, "big")
    return acc.to_bytes(size, "big")


def check_announced_kcv(key: bytes, announced_hex: str, what: str) -> None:
    """Refuse a key whose KCV differs from the one announced with it. Vendors send the AES-CMAC
    KCV or the legacy ECB one; for a key of 2-key or 3-key 3DES length (16 or 24 bytes: a
    vendor's 3DES transport key) the 3DES-ECB-of-zeros KCV too. All compared in constant time."""
    import hmac

    from hsm_sim.kcv import tdes_kcv

    a = announced_hex.strip().lower()
    check = key_check(key)
    forms = [("AES-CMAC", check.kcv), ("legacy AES", check.legacy_kcv)]
    if len(key) in (16, 24):
        forms.append(("3DES", tdes_kcv(key).hex()))
    if not any([hmac.compare_digest(value, a) for _, value in forms]):
        shown = ", ".join(f"{value} ({name})" for name, value in forms)
        raise BadKCV(f"{what}: KCV {shown} does not match the announced {a}: a component is "
                     "wrong")


def check_kcv(key: bytes, expected_hex: str, what: str) -> None:
    """Raise BadKCV unless `key` has the AES-CMAC KCV `expected_hex`."""
    import hmac

    if not hmac.compare_digest(kcv(key).hex(), expected_hex.lower()):
        raise BadKCV(f"{what} does not match its recorded KCV {expected_hex}")


def key_from_passphrase(
    passphrase: str, salt: bytes, n: int = 2**15, r: int = 8, p: int = 1, length: int = 32
) -> bytes:
    """Dev master key = scrypt(passphrase, salt). Insecure by design; see DEV_WARNING."""
    if not passphrase:
        raise BadLength("the dev passphrase is empty")
    return hashlib.scrypt(
        passphrase.encode(), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=128 * n * r * 2
    )
