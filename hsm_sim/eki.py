"""Encrypted keys as SIM vendors deliver them ("EKI", "EOPC") under a transport key.

Vendor output files carry each Ki/OPc encrypted under a transport key agreed per batch (GSMA FS.28
describes the exchange). The schemes met in practice, all without padding on 16-byte keys:
AES-128 ECB, AES-128 CBC with an all-zero IV, and 2-key / 3-key TDES ECB for legacy vendors.
`cryptography` keeps TDES in its `decrepit` package; it is used here only to read old files.
"""

from __future__ import annotations

from enum import StrEnum

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hsm_sim.errors import BadLength

__all__ = ["TDES_SCHEMES", "EkiScheme", "decrypt_eki", "encrypt_eki", "key_length",
           "tdes_ecb_encrypt"]


class EkiScheme(StrEnum):
    """How a vendor encrypted a key under its transport key."""

    AES128_ECB = "aes128-ecb"
    AES128_CBC = "aes128-cbc"  # zero IV
    TDES2_ECB = "3des2-ecb"
    TDES3_ECB = "3des3-ecb"


_KEY_LEN = {
    EkiScheme.AES128_ECB: 16,
    EkiScheme.AES128_CBC: 16,
    EkiScheme.TDES2_ECB: 16,
    EkiScheme.TDES3_ECB: 24,
}


TDES_SCHEMES = frozenset({EkiScheme.TDES2_ECB, EkiScheme.TDES3_ECB})


def key_length(scheme: EkiScheme) -> int:
    """The transport key length a scheme needs (16 for 2-key TDES, 24 for 3-key)."""
    return _KEY_LEN[EkiScheme(scheme)]


def _cipher(scheme: EkiScheme, transport_key: bytes) -> Cipher:  # type: ignore[type-arg]
    if len(transport_key) != _KEY_LEN[scheme]:
        raise BadLength(
            f"a {scheme.value} transport key must be {_KEY_LEN[scheme]} bytes, "
            f"got {len(transport_key)}"
        )
    if scheme is EkiScheme.AES128_ECB:
        return Cipher(algorithms.AES(transport_key), modes.ECB())
    if scheme is EkiScheme.AES128_CBC:
        return Cipher(algorithms.AES(transport_key), modes.CBC(bytes(16)))
    return Cipher(TripleDES(_tdes3(transport_key)), modes.ECB())


def _tdes3(key: bytes) -> bytes:
    # 2-key TDES is K1 K2 K1: spelled out as a 24-byte key (cryptography deprecates 16-byte keys).
    return key + key[:8] if len(key) == 16 else key


def _check_data(data: bytes) -> None:
    if len(data) == 0 or len(data) % 16:
        raise BadLength(
            f"an encrypted key must be a non-empty multiple of 16 bytes, got {len(data)}"
        )


def decrypt_eki(scheme: EkiScheme, transport_key: bytes, data: bytes) -> bytes:
    """Clear key from its vendor encryption. Only call inside the HSM boundary."""
    _check_data(data)
    d = _cipher(EkiScheme(scheme), transport_key).decryptor()
    return d.update(data) + d.finalize()


def encrypt_eki(scheme: EkiScheme, transport_key: bytes, key: bytes) -> bytes:
    """Vendor-style encryption of a clear key (tests, exports to legacy targets)."""
    _check_data(key)
    e = _cipher(EkiScheme(scheme), transport_key).encryptor()
    return e.update(key) + e.finalize()


def tdes_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    """3DES-ECB (2-key or 3-key) of whole 8-byte blocks."""
    if len(key) not in (16, 24):
        raise BadLength(f"a TDES key must be 16 or 24 bytes, got {len(key)}")
    e = Cipher(TripleDES(_tdes3(key)), modes.ECB()).encryptor()
    return e.update(data) + e.finalize()
