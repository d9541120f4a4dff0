"""Binding a wrapped data key to its owner and key type (design §2; docs/hsm.md "Blob format").

Two blob formats; the length tells them apart (v2 is never a multiple of 8 bytes, v1 always is).

v2, written by the soft backend for every key of 8, 16, 24, 32 … bytes (all keys and codes
simsmith makes) — one native call to unwrap:

    AK   = HKDF-SHA256(storage KEK, info = "simsmith/keyref/v2/aes-256-gcm")        (RFC 5869)
    AAD  = "simsmith/keyref/v2" || 0x00 || key type || 0x00 || owner
    blob = 0x02 || N || AES-256-GCM_AK(N, key, AAD)   (NIST SP 800-38D; N: 12 random bytes)
           1 + 12 + len(key) + 16 bytes: 45 for a Ki

Random 96-bit nonces keep AES-GCM within SP 800-38D §8.3 up to 2^32 wraps under one storage KEK;
10 million SIMs with eight keys each are 2^26.3 (docs/hsm.md says when to add a storage KEK).

v1, RFC 5649 under a per-(type, owner) key derived from the storage KEK:

    B    = SHA-256("simsmith/keyref/v1" || 0x00 || key type || 0x00 || owner)     (32 bytes)
    KWK  = AES-256-ECB_{storage KEK}(B)                                           (32 bytes)
    blob = AES-KWP_KWK(key)                                   (a multiple of 8 bytes, >= 16)

v1 is PKCS#11's CKM_AES_ECB_ENCRYPT_DATA derivation and CKM_AES_KEY_WRAP_PAD, which a token does
itself, but costs the token two new objects per key. The pkcs11 backend's v2 (hsm_sim.pkcs11)
seals values with the token's AES-GCM in the form above (under a key the token derives from its
storage KEK), and keeps a Ki, which must become a non-extractable token key, as

    blob = 0x03 || N || tag || W,   W = AES-KWP(Ki) under a second derived key,
           tag = AES-GCM(N, "", AAD "simsmith/keyref/v2/token-key" 0x00 type 0x00 owner 0x00 W)

(`aad_v2_token_key`; 53 bytes for a Ki). Both backends read v1; each writes v1 only for a key whose
length is not a multiple of 8 (v2's length rule would not hold); `rewrap` turns v1 into v2.
In every format a blob moved to another owner, presented as another key type or edited fails
its integrity check (`TamperedBlob`): v2 authenticates owner and type as associated data, v1
unwraps under a different KWK.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, keywrap
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hsm_sim.errors import TamperedBlob
from hsm_sim.keyref import KeyType

__all__ = [
    "V2",
    "V2_TOKEN_KEY",
    "Binder",
    "aad_v2",
    "aad_v2_token_key",
    "binding_block",
    "is_v2",
    "split_v2",
    "wrapped_length",
]

_LABEL = b"simsmith/keyref/v1\x00"
_PREFIX = {t: _LABEL + t.value.encode() + b"\x00" for t in KeyType}
_AAD2 = {t: b"simsmith/keyref/v2\x00" + t.value.encode() + b"\x00" for t in KeyType}
_INFO2 = b"simsmith/keyref/v2/aes-256-gcm"

V2 = 0x02  # first byte of a v2 blob
V2_TOKEN_KEY = 0x03  # first byte of a v2 blob of a key kept in a PKCS#11 token (docs/hsm.md)
_AAD2_TOKEN = {t: b"simsmith/keyref/v2/token-key\x00" + t.value.encode() + b"\x00"
               for t in KeyType}
_NONCE = 12
_TAG = 16
_V2_OVERHEAD = 1 + _NONCE + _TAG


def binding_block(key_type: KeyType, owner: str) -> bytes:
    """B of the v1 format: the block the per-(type, owner) wrapping key is derived from."""
    return hashlib.sha256(_PREFIX[key_type] + owner.encode()).digest()


def is_v2(blob: bytes) -> bool:
    """Whether `blob` has the v2 (AES-GCM) form; v1 (RFC 5649) blobs are multiples of 8."""
    return len(blob) % 8 != 0


def aad_v2(key_type: KeyType, owner: str) -> bytes:
    """The associated data of a v2 blob of (type, owner)."""
    return _AAD2[key_type] + owner.encode()


def aad_v2_token_key(key_type: KeyType, owner: str, wrapped: bytes) -> bytes:
    """The associated data a token-key v2 blob's tag covers: its (type, owner) and its
    RFC 5649 part."""
    return _AAD2_TOKEN[key_type] + owner.encode() + b"\x00" + wrapped


def split_v2(blob: bytes, key_type: KeyType, owner: str, form: int) -> tuple[bytes, bytes]:
    """(nonce, rest) of a v2 blob of the given form (V2 or V2_TOKEN_KEY), after checking its
    length and form byte: TamperedBlob, naming the byte, for anything else."""
    if len(blob) % 8 == 0 or len(blob) <= _V2_OVERHEAD or blob[0] != form:
        raise _tampered(key_type, owner, (
            f"is malformed: {len(blob)} bytes; a {key_type.value} blob here is RFC 5649 (a "
            f"multiple of 8 bytes) or {form:02x} || nonce || … of at least {_V2_OVERHEAD + 1} "
            f"bytes (byte 0 is {blob[0] if blob else 0:02x} where {form:02x} was expected)"))
    return blob[1:13], blob[13:]


def wrapped_length(blob: bytes) -> int:
    """The length of the key inside a blob, from the blob's length alone: exact for v2; for v1
    (and the RFC 5649 part of a token-key blob), the key's length rounded up to a multiple of 8
    (RFC 5649 pads; every key simsmith makes has whole 8-byte units)."""
    if not is_v2(blob):
        return len(blob) - 8
    if blob[0] == V2_TOKEN_KEY:
        return len(blob) - _V2_OVERHEAD - 8
    return len(blob) - _V2_OVERHEAD


def _tampered(key_type: KeyType, owner: str, why: str) -> TamperedBlob:
    return TamperedBlob(f"{key_type.value} blob for owner {owner} {why}")


class Binder:
    """Wraps and unwraps data keys for (key type, owner) under one storage KEK."""

    __slots__ = ("_aead", "_enc", "_lock")

    def __init__(self, storage_kek: bytes) -> None:
        self._enc = Cipher(algorithms.AES(storage_kek), modes.ECB()).encryptor()
        self._lock = threading.Lock()  # an OpenSSL ECB context is not safe across threads
        self._aead = AESGCM(HKDF(hashes.SHA256(), 32, None, _INFO2).derive(storage_kek))

    def _ecb(self, data: bytes) -> bytes:
        with self._lock:
            return self._enc.update(data)

    def __repr__(self) -> str:
        return "Binder(<storage KEK hidden>)"

    # --- v2: AES-256-GCM with owner and type as associated data ----------------------------------

    def wrap(self, key_type: KeyType, owner: str, key: bytes) -> bytes:
        """The v2 blob of `key` (v1 for a key whose length is not a multiple of 8)."""
        if len(key) % 8:
            return self.wrap_v1(key_type, owner, key)
        nonce = os.urandom(_NONCE)
        return b"\x02" + nonce + self._aead.encrypt(nonce, key, _AAD2[key_type] + owner.encode())

    def wrap_many(self, items: Sequence[tuple[KeyType, str, bytes]]) -> list[bytes]:
        """`wrap` for many keys, with one call to the random source for all the nonces."""
        nonces = os.urandom(_NONCE * len(items))
        enc, out = self._aead.encrypt, []
        for i, (key_type, owner, key) in enumerate(items):
            if len(key) % 8:
                out.append(self.wrap_v1(key_type, owner, key))
                continue
            n = nonces[i * _NONCE : (i + 1) * _NONCE]
            out.append(b"\x02" + n + enc(n, key, _AAD2[key_type] + owner.encode()))
        return out

    def unwrap(self, key_type: KeyType, owner: str, blob: bytes) -> bytes:
        """The key in a blob of either format; TamperedBlob unless it verifies for (type, owner)
        under this storage KEK."""
        if len(blob) % 8 == 0:
            return self.unwrap_v1(key_type, owner, blob)
        if len(blob) <= _V2_OVERHEAD or blob[0] != V2:
            raise _tampered(key_type, owner, (
                f"is malformed: {len(blob)} bytes, not a multiple of 8 (RFC 5649), so it must be "
                f"02 || nonce || ciphertext || tag of at least {_V2_OVERHEAD + 1} bytes; "
                f"byte 0 is {blob[0]:02x}"))
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], _AAD2[key_type] + owner.encode())
        except InvalidTag:
            raise _tampered(key_type, owner, (
                "fails its integrity check (edited, moved from another owner or key type, or "
                "another storage KEK)")) from None

    # --- v1: RFC 5649 under a per-(type, owner) key ------------------------------------------

    def wrapping_keys(self, items: Sequence[tuple[KeyType, str]]) -> list[bytes]:
        """The v1 KWKs of many (type, owner) pairs in one ECB call."""
        out = self._ecb(b"".join(binding_block(t, o) for t, o in items))
        return [out[i : i + 32] for i in range(0, len(out), 32)]

    def wrap_v1(self, key_type: KeyType, owner: str, key: bytes) -> bytes:
        kwk = self._ecb(binding_block(key_type, owner))
        return keywrap.aes_key_wrap_with_padding(kwk, key)

    def unwrap_v1(self, key_type: KeyType, owner: str, blob: bytes) -> bytes:
        kwk = self._ecb(binding_block(key_type, owner))
        try:
            return keywrap.aes_key_unwrap_with_padding(kwk, blob)
        except (keywrap.InvalidUnwrap, ValueError):
            raise _tampered(key_type, owner, (
                "fails its integrity check (edited, moved from another owner or key type, or "
                "another storage KEK)")) from None
