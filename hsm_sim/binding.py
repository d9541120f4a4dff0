"""Binding a wrapped data key to its owner and key type (design §2; docs/hsm.md "Blob format").

Each (key type, owner) pair gets its own wrapping key, derived from the storage KEK:

    B   = SHA-256("simsmith/keyref/v1" || 0x00 || key type || 0x00 || owner)      (32 bytes)
    KWK = AES-256-ECB_{storage KEK}(B)                                            (32 bytes)
    blob = AES-KWP_{KWK}(key)                                      (RFC 5649, key wrap with padding)

This is PKCS#11's CKM_AES_ECB_ENCRYPT_DATA derivation, so the soft and PKCS#11 backends produce
the same blobs, and it batches: one ECB call derives the wrapping keys of a whole import. A blob
moved to another owner or presented as another key type unwraps under a different KWK, and
RFC 5649's integrity check refuses it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

from cryptography.hazmat.primitives import keywrap
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hsm_sim.errors import TamperedBlob
from hsm_sim.keyref import KeyType

__all__ = ["Binder", "binding_block"]

_LABEL = b"simsmith/keyref/v1\x00"


_PREFIX = {t: _LABEL + t.value.encode() + b"\x00" for t in KeyType}


def binding_block(key_type: KeyType, owner: str) -> bytes:
    return hashlib.sha256(_PREFIX[key_type] + owner.encode()).digest()


class Binder:
    """Wraps and unwraps data keys under per-(type, owner) keys derived from one storage KEK."""

    __slots__ = ("_enc", "_lock")

    def __init__(self, storage_kek: bytes) -> None:
        self._enc = Cipher(algorithms.AES(storage_kek), modes.ECB()).encryptor()
        self._lock = threading.Lock()  # an OpenSSL context is not safe across threads

    def _ecb(self, data: bytes) -> bytes:
        with self._lock:
            return self._enc.update(data)

    def __repr__(self) -> str:
        return "Binder(<storage KEK hidden>)"

    def wrapping_keys(self, items: Sequence[tuple[KeyType, str]]) -> list[bytes]:
        out = self._ecb(b"".join(binding_block(t, o) for t, o in items))
        return [out[i : i + 32] for i in range(0, len(out), 32)]

    def wrap(self, key_type: KeyType, owner: str, key: bytes) -> bytes:
        kwk = self._ecb(binding_block(key_type, owner))
        return keywrap.aes_key_wrap_with_padding(kwk, key)

    def unwrap(self, key_type: KeyType, owner: str, blob: bytes) -> bytes:
        kwk = self._ecb(binding_block(key_type, owner))
        try:
            return keywrap.aes_key_unwrap_with_padding(kwk, blob)
        except (keywrap.InvalidUnwrap, ValueError):
            raise TamperedBlob(
                f"{key_type.value} blob for owner {owner} fails its integrity check "
                "(edited, moved from another owner or key type, or another storage KEK)"
            ) from None
