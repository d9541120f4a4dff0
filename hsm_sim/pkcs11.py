"""The PKCS#11 backend: key custody in a token through python-pkcs11 (tested on SoftHSM2).

PKCS#11 v2.40 mechanisms used: CKM_AES_ECB_ENCRYPT_DATA (keys derived from the storage KEK: the
v2 wrap and AES-GCM keys, per session; v1's per-(type, owner) wrapping keys, as hsm_sim.binding),
CKM_AES_GCM (v2 blobs of values, and the tag binding a Ki blob to its owner and type),
CKM_AES_KEY_WRAP_PAD (RFC 5649: a Ki inside its v2 blob; v1 blobs), CKM_AES_ECB (Milenage kernel:
TEMP, then the output blocks, in one multi-part operation), CKM_AES_CMAC (KCVs). Blob formats:
hsm_sim.binding and docs/hsm.md "Blob format".

Ki is unwrapped into a non-extractable session key and never leaves the token. The per-subscriber
Milenage path (tag check, C_UnwrapKey, the ECB operation, C_DestroyObject) goes through direct
calls (hsm_sim.p11raw) when the module exports its functions: python-pkcs11 reads every new
object's attributes back, most of a distinct subscriber's time. Limits, also in docs/hsm.md:
OPc/OP are decrypted into host memory for Milenage's XOR steps; SoftHSM2 has no C_UnwrapKey with
CKM_AES_ECB/CBC/GCM, so vendor EKIs are C_Decrypt-ed and pass through host memory on import;
TDES transport keys are not supported here.

Threads (PKCS#11 v2.40 §5.1.6, §6.7.6-6.7.7): one `Pkcs11Hsm` may be shared by any number of
threads. Each operation checks a session out of a pool (hsm_sim.p11pool: `sessions`, default 4,
opened lazily; a nested call in the same thread reuses that thread's session). The module is
loaded once per process with OS locking where it allows it (hsm_sim.p11lib); if it does not,
every call into it is serialised on one lock and the pool has one session: safe, not parallel.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import pkcs11
from pkcs11 import Attribute, Mechanism, ObjectClass
from pkcs11 import KeyType as P11KeyType
from pkcs11.exceptions import PKCS11Error
from pkcs11.mechanisms import GCMParams

from hsm_sim import ceremony
from hsm_sim.binding import (
    V2,
    V2_TOKEN_KEY,
    aad_v2,
    aad_v2_token_key,
    binding_block,
    is_v2,
    split_v2,
)
from hsm_sim.ec_signing_pkcs11 import Pkcs11EcSigningKeys
from hsm_sim.eki import TDES_SCHEMES, EkiScheme
from hsm_sim.errors import (
    BadLength,
    DuplicateKey,
    ExportRefused,
    HsmError,
    NoSuchKey,
    TamperedBlob,
    WrongKeyType,
    WrongOwner,
    WrongPurpose,
)
from hsm_sim.gsm import GsmTriplet, c2, c3
from hsm_sim.hsm import (
    CODE_LENGTH,
    CODE_TYPES,
    DEFAULT_AMF,
    AuditSink,
    KekInfo,
    KekPurpose,
    NullAudit,
    Slot,
    check_revealable,
    check_service_revealable,
    check_slots,
    code_digits,
    code_from_random,
)
from hsm_sim.keyref import KeyRef, KeyType
from hsm_sim.milenage import AuthVector, Milenage, vector_on
from hsm_sim.p11lib import library
from hsm_sim.p11pool import DEFAULT_SESSIONS, Entry, SessionPool
from hsm_sim.p11raw import RawFailed, RawSession, RawUnavailable, raw_module
from hsm_sim.suci_pkcs11 import Pkcs11SuciKeys

__all__ = ["DEFAULT_SESSIONS", "Pkcs11Hsm", "TokenKernel"]

STORAGE = "storage"
_SESSION = {Attribute.TOKEN: False}
# The v2 keys of a storage KEK: derived from it in each session (CKM_AES_ECB_ENCRYPT_DATA), so
# every process and session has the same ones and the token holds no new object.
_V2_KWP = hashlib.sha256(b"simsmith/keyref/v2/pkcs11/aes-key-wrap-pad").digest()
_V2_GCM = hashlib.sha256(b"simsmith/keyref/v2/pkcs11/aes-gcm").digest()

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _pooled(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run a Pkcs11Hsm method on a session checked out of its pool."""

    @wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        hsm: Pkcs11Hsm = args[0]  # type: ignore[assignment]
        return hsm._pool.run(hsm._prepare, fn, *args, **kwargs)

    return run


class TokenKernel:
    """E_K as C_Encrypt(CKM_AES_ECB) with a key object inside the token. Each call holds the
    lock of the session the key was made in (a session serves one thread at a time)."""

    __slots__ = ("_key", "_lock")

    def __init__(self, key: Any, lock: threading.RLock | None = None) -> None:
        self._key = key
        self._lock: AbstractContextManager[Any] = lock if lock is not None else nullcontext()

    def __repr__(self) -> str:
        return "TokenKernel(<token key>)"

    def update(self, data: bytes) -> bytes:
        with self._lock:
            return bytes(self._key.encrypt(data, mechanism=Mechanism.AES_ECB))


class Pkcs11Hsm(Pkcs11SuciKeys, Pkcs11EcSigningKeys):
    """HSM operations on a PKCS#11 token found by label, safe to share between threads: each
    call runs on a session of a pool of up to `sessions` (see the module docstring)."""

    backend = "pkcs11"

    def __init__(
        self,
        module: str,
        token_label: str,
        pin: str,
        *,
        audit: AuditSink | None = None,
        prefix: str = "simsmith",
        sessions: int = DEFAULT_SESSIONS,
    ) -> None:
        self._library = library(module)
        try:
            self._raw_so: Any = raw_module(module)
        except RawUnavailable:
            self._raw_so = None
        with self._library.guard():
            try:
                token = self._library.lib.get_token(token_label=token_label)
            except (pkcs11.NoSuchToken, pkcs11.MultipleTokensReturned):
                raise NoSuchKey(f"no single PKCS#11 token labelled {token_label!r}") from None
        self._library.login(token, token_label, pin)
        self._token_label = token_label
        self._prefix = prefix
        self._audit: AuditSink = audit or NullAudit()
        threadsafe = self._library.threadsafe
        self._pool = SessionPool(lambda: token.open(rw=True), sessions if threadsafe else 1,
                           None if threadsafe else self._library.lock)
        self._closed = False
        self._kek_lock = threading.Lock()
        try:
            with self._pool.entry(self._prepare):  # the first session creates the storage KEK
                pass
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"Pkcs11Hsm(token={self._token_label!r})"

    @property
    def sessions(self) -> int:
        """How many sessions the pool may open (1 when the module is not thread-safe)."""
        return self._pool.size

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.close()
        self._library.logout(self._token_label)

    def _prepare(self, entry: Entry) -> None:
        """A new pooled session: find (or, the first time, create) the storage KEK, derive its
        v2 keys as session objects, and attach the direct calls (hsm_sim.p11raw)."""
        entry.storage = self._find_or_create_storage()
        entry.kwp = self._derive_v2(entry.storage, _V2_KWP,
                                    {Attribute.WRAP: True, Attribute.UNWRAP: True})
        entry.gcm = self._derive_v2(entry.storage, _V2_GCM,
                                    {Attribute.ENCRYPT: True, Attribute.DECRYPT: True})
        if self._raw_so is not None:
            entry.raw = RawSession(self._raw_so, entry.session.handle)

    @staticmethod
    def _derive_v2(storage: Any, block: bytes, usage: dict[Any, bool]) -> Any:
        return storage.derive_key(
            P11KeyType.AES, 256, mechanism=Mechanism.AES_ECB_ENCRYPT_DATA, mechanism_param=block,
            store=False, template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True,
                                   Attribute.PRIVATE: False, **usage},
        )

    def _s(self) -> Any:
        return self._pool.current().session

    @property
    def _storage(self) -> Any:
        return self._pool.current().storage

    # --- KEKs --------------------------------------------------------------------------------

    def _label(self, purpose: str, name: str) -> str:
        return f"{self._prefix}:{purpose}:{name}"

    def _find(self, label: str) -> Any | None:
        objs = list(self._s().get_objects({Attribute.LABEL: label}))
        return objs[0] if objs else None

    def _find_or_create_storage(self) -> Any:
        label = self._label("storage", STORAGE)
        key = self._find(label)
        if key is None:
            key = self._s().generate_key(
                P11KeyType.AES, 256, label=label, store=True,
                template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True,
                          Attribute.DERIVE: True, Attribute.SIGN: True},
            )
            key[Attribute.ID] = self._kcv_of(key)
            self._audit.record("kek.add", STORAGE, {"purpose": "storage", "backend": "pkcs11"})
        return key

    def _kcv_of(self, key: Any) -> bytes:
        cmac = bytes(key.sign(bytes(16), mechanism=Mechanism.AES_CMAC))[:3]
        legacy = bytes(key.encrypt(bytes(16), mechanism=Mechanism.AES_ECB))[:3]
        return cmac + legacy

    @_pooled
    def kek_add(
        self,
        name: str,
        purpose: KekPurpose,
        components: Sequence[bytes] | None = None,
        *,
        insecure_clear: bool = False,
        expected_kcv: str | None = None,
    ) -> KekInfo:
        purpose = KekPurpose(purpose)
        with self._kek_lock:  # the name check and the creation, as one step in this process
            return self._kek_add(name, purpose, components, insecure_clear, expected_kcv)

    def _kek_add(self, name: str, purpose: KekPurpose, components: Sequence[bytes] | None,
                 insecure_clear: bool, expected_kcv: str | None) -> KekInfo:
        if self._find_any(name) is not None:
            raise DuplicateKey(f"a KEK named {name!r} already exists")
        if insecure_clear:
            if purpose is not KekPurpose.EXPORT or components:
                raise BadLength("only an export target without a key can be marked insecure")
            self._s().create_object({
                Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True,
                Attribute.LABEL: self._label("export-clear", name), Attribute.VALUE: b"insecure",
            })
            info = KekInfo(name, purpose, "", "", insecure_clear=True)
        else:
            if not components:
                raise BadLength(f"a {purpose.value} KEK needs at least one --component")
            value = ceremony.combine_components(components, minimum=1)
            if expected_kcv is not None:
                ceremony.check_announced_kcv(value, expected_kcv, f"KEK {name!r}")
            check = ceremony.key_check(value)
            self._s().create_object({
                Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: P11KeyType.AES,
                Attribute.TOKEN: True, Attribute.LABEL: self._label(purpose.value, name),
                Attribute.ID: bytes.fromhex(check.kcv + check.legacy_kcv),
                Attribute.VALUE: value, Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True,
                Attribute.DECRYPT: purpose is KekPurpose.TRANSPORT,
                # signing keys (hsm_sim.ec_signing_pkcs11) are unwrapped straight into the token
                Attribute.UNWRAP: purpose is KekPurpose.TRANSPORT,
                Attribute.ENCRYPT: purpose is KekPurpose.EXPORT,
                Attribute.WRAP: purpose is KekPurpose.EXPORT,
                Attribute.DERIVE: purpose is KekPurpose.STORAGE,
            })
            info = KekInfo(name, purpose, check.kcv, check.legacy_kcv)
        self._audit.record("kek.add", name, {"purpose": purpose.value, "kcv": info.kcv,
                                              "insecure_clear": insecure_clear})
        return info

    def _find_any(self, name: str) -> Any | None:
        for purpose in ("storage", "transport", "export", "export-clear"):
            obj = self._find(self._label(purpose, name))
            if obj is not None:
                return obj
        return None

    @_pooled
    def kek_list(self) -> list[KekInfo]:
        out = []
        for obj in self._s().get_objects({Attribute.TOKEN: True}):
            try:
                label = str(obj[Attribute.LABEL])
            except PKCS11Error:
                continue
            parts = label.split(":")
            if len(parts) != 3 or parts[0] != self._prefix:
                continue
            if parts[1] == "export-clear":
                out.append(KekInfo(parts[2], KekPurpose.EXPORT, "", "", insecure_clear=True))
            else:
                ident = bytes(obj[Attribute.ID])
                out.append(KekInfo(parts[2], KekPurpose(parts[1]), ident[:3].hex(),
                                   ident[3:6].hex()))
        return out

    @_pooled
    def transport_kcvs(self, name: str, scheme: EkiScheme) -> dict[str, str]:
        """AES-CMAC and legacy KCVs of a transport KEK (kept in its CKA_ID). 3DES schemes are
        refused: this backend keeps no TDES transport keys."""
        scheme = EkiScheme(scheme)
        tk = self._kek(name, KekPurpose.TRANSPORT)
        if scheme in TDES_SCHEMES:
            raise HsmError(f"scheme {scheme.value} is not supported by the pkcs11 backend")
        ident = bytes(tk[Attribute.ID])
        return {"KCV": ident[:3].hex(), "legacy": ident[3:6].hex()}

    def _kek(self, name: str, purpose: KekPurpose) -> Any:
        key = self._find(self._label(purpose.value, name))
        if key is None:
            other = self._find_any(name)
            if other is not None:
                raise WrongPurpose(f"KEK {name!r} is not a {purpose.value} key")
            raise NoSuchKey(f"no KEK named {name!r}")
        return key

    # --- data keys ---------------------------------------------------------------------------

    @contextmanager
    def _kwk(self, key_type: KeyType, owner: str) -> Iterator[Any]:
        """The per-(type, owner) wrapping key as a session object, destroyed after use."""
        kwk = self._storage.derive_key(
            P11KeyType.AES, 256, mechanism=Mechanism.AES_ECB_ENCRYPT_DATA,
            mechanism_param=binding_block(key_type, owner), store=False,
            template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True,
                      Attribute.WRAP: True, Attribute.UNWRAP: True},
        )
        try:
            yield kwk
        finally:
            kwk.destroy()

    def _wrap_object(self, owner: str, key_type: KeyType, obj: Any) -> KeyRef:
        """A token-key v2 blob of a session key object (destroyed after): 03 || N || tag || W,
        W = AES-KWP under the storage KEK's v2 wrap key, tag = AES-GCM over (type, owner, W)."""
        entry = self._pool.current()
        try:
            wrapped = bytes(entry.kwp.wrap_key(obj, mechanism=Mechanism.AES_KEY_WRAP_PAD))
        finally:
            obj.destroy()
        nonce = os.urandom(12)
        tag = self._gcm(entry, False, nonce, aad_v2_token_key(key_type, owner, wrapped), b"")
        return KeyRef(self.backend, key_type, owner, STORAGE,
                      bytes([V2_TOKEN_KEY]) + nonce + tag + wrapped)

    def _wrap_value(self, owner: str, key_type: KeyType, value: bytes) -> KeyRef:
        """A key given as bytes: Ki into a token-key blob (through a session object); any
        other key or code of whole 8-byte units into 02 || N || AES-GCM(value) made by the
        token; other lengths as v1 (RFC 5649 under the derived per-(type, owner) key)."""
        if key_type is KeyType.KI:
            return self._wrap_object(owner, key_type, self._session_key(value))
        if len(value) % 8:
            obj = self._s().create_object({
                Attribute.CLASS: ObjectClass.SECRET_KEY,
                Attribute.KEY_TYPE: P11KeyType.GENERIC_SECRET, Attribute.VALUE: value,
                Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: True, **_SESSION,
            })
            return self._wrap_object_v1(owner, key_type, obj)
        nonce = os.urandom(12)
        sealed = self._gcm(self._pool.current(), False, nonce, aad_v2(key_type, owner), value)
        return KeyRef(self.backend, key_type, owner, STORAGE, bytes([V2]) + nonce + sealed)

    def _wrap_object_v1(self, owner: str, key_type: KeyType, obj: Any) -> KeyRef:
        try:
            with self._kwk(key_type, owner) as kwk:
                blob = bytes(kwk.wrap_key(obj, mechanism=Mechanism.AES_KEY_WRAP_PAD))
        finally:
            obj.destroy()
        return KeyRef(self.backend, key_type, owner, STORAGE, blob)

    def _gcm(self, entry: Entry, decrypt: bool, nonce: bytes, aad: bytes, data: bytes) -> bytes:
        """AES-GCM with the storage KEK's v2 key: direct calls, or python-pkcs11's."""
        if entry.raw is not None:
            key = entry.gcm.handle
            return (entry.raw.gcm_decrypt(key, nonce, aad, data) if decrypt
                    else entry.raw.gcm_encrypt(key, nonce, aad, data))
        param = GCMParams(nonce, aad, 128)
        op = entry.gcm.decrypt if decrypt else entry.gcm.encrypt
        return bytes(op(data, mechanism=Mechanism.AES_GCM, mechanism_param=param))

    def _open_value(self, ref: KeyRef, entry: Entry | None = None) -> bytes:
        """The bytes of a value v2 blob (02 || N || AES-GCM), decrypted by the token."""
        nonce, sealed = split_v2(ref.blob, ref.key_type, ref.owner, V2)
        try:
            return self._gcm(entry or self._pool.current(), True, nonce,
                             aad_v2(ref.key_type, ref.owner), sealed)
        except (RawFailed, PKCS11Error):
            raise TamperedBlob(
                f"{ref.key_type.value} blob for owner {ref.owner} fails its integrity check"
            ) from None

    def _check_token_key(self, ref: KeyRef, entry: Entry | None = None) -> bytes:
        """The RFC 5649 part of a token-key v2 blob once its tag verifies over (type, owner)."""
        nonce, rest = split_v2(ref.blob, ref.key_type, ref.owner, V2_TOKEN_KEY)
        tag, wrapped = rest[:16], rest[16:]
        try:
            self._gcm(entry or self._pool.current(), True, nonce,
                      aad_v2_token_key(ref.key_type, ref.owner, wrapped), tag)
        except (RawFailed, PKCS11Error):
            raise TamperedBlob(
                f"{ref.key_type.value} blob for owner {ref.owner} fails its integrity check"
            ) from None
        return wrapped

    def _session_key(self, value: bytes) -> Any:
        if len(value) not in (16, 24, 32):
            raise BadLength(f"the PKCS#11 backend keeps AES-sized keys only, got {len(value)}")
        return self._s().create_object({
            Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: P11KeyType.AES,
            Attribute.VALUE: value, Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: True,
            **_SESSION,
        })

    def _value_object(self, key_type: KeyType, value: bytes, *, readable: bool) -> Any:
        """A session object holding a value opened from a v2 blob (for KCVs and exports)."""
        if key_type in CODE_TYPES or len(value) not in (16, 24, 32):
            p11_type, usage = P11KeyType.GENERIC_SECRET, {}
        else:
            p11_type, usage = P11KeyType.AES, {Attribute.ENCRYPT: True, Attribute.SIGN: True}
        return self._s().create_object({
            Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: p11_type,
            Attribute.VALUE: value, Attribute.EXTRACTABLE: True,
            Attribute.SENSITIVE: not readable, **usage, **_SESSION,
        })

    def _check_ref(self, ref: KeyRef, key_type: KeyType, owner: str | None) -> None:
        if ref.backend != self.backend:
            raise WrongKeyType(f"{ref!r} belongs to the {ref.backend} backend")
        if ref.key_type is not key_type:
            raise WrongKeyType(f"expected a {key_type.value} key, got {ref.key_type.value}")
        if owner is not None and ref.owner != owner:
            raise WrongOwner(f"{ref.key_type.value} key of {ref.owner} used for {owner}")

    def _unwrap(
        self, ref: KeyRef, key_type: KeyType, owner: str | None = None, *, readable: bool = False
    ) -> Any:
        """The key of `ref` as a session object (extractable: it may be exported)."""
        self._check_ref(ref, key_type, owner)
        if ref.key_type in CODE_TYPES:  # PIN/PUK/ADM codes: 8-byte generic secrets
            p11_type, usage = P11KeyType.GENERIC_SECRET, {}
        else:
            p11_type, usage = P11KeyType.AES, {Attribute.ENCRYPT: True, Attribute.SIGN: True}
        template = {Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: not readable, **usage}
        if is_v2(ref.blob):
            if ref.key_type is not KeyType.KI:
                return self._value_object(ref.key_type, self._open_value(ref),
                                          readable=readable)
            wrapped = self._check_token_key(ref)
            try:
                return self._pool.current().kwp.unwrap_key(
                    ObjectClass.SECRET_KEY, p11_type, wrapped,
                    mechanism=Mechanism.AES_KEY_WRAP_PAD, store=False, template=template)
            except PKCS11Error:
                raise TamperedBlob(
                    f"{ref.key_type.value} blob for owner {ref.owner} fails its integrity check"
                ) from None
        try:
            with self._kwk(ref.key_type, ref.owner) as kwk:
                return kwk.unwrap_key(
                    ObjectClass.SECRET_KEY, p11_type, ref.blob,
                    mechanism=Mechanism.AES_KEY_WRAP_PAD, store=False, template=template,
                )
        except PKCS11Error:
            raise TamperedBlob(
                f"{ref.key_type.value} blob for owner {ref.owner} fails its integrity check"
            ) from None

    def _read(self, ref: KeyRef, key_type: KeyType, owner: str | None = None) -> bytes:
        if is_v2(ref.blob) and ref.key_type is not KeyType.KI:
            self._check_ref(ref, key_type, owner)
            return self._open_value(ref)  # one decryption in the token, no object
        obj = self._unwrap(ref, key_type, owner, readable=True)
        try:
            return bytes(obj[Attribute.VALUE])
        finally:
            obj.destroy()

    @_pooled
    def generate(self, owner: str, key_type: KeyType, length: int = 16) -> KeyRef:
        if length not in (16, 24, 32):
            raise BadLength(f"the PKCS#11 backend generates AES-sized keys only, got {length}")
        key_type = KeyType(key_type)
        if key_type is KeyType.KI:  # made in the token, never in host memory
            obj = self._s().generate_key(
                P11KeyType.AES, length * 8, store=False,
                template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: True},
            )
            ref = self._wrap_object(owner, key_type, obj)
        else:  # a value (OPc, OTA keys): the token's random bytes, sealed by the token
            ref = self._wrap_value(owner, key_type, bytes(self._s().generate_random(8 * length)))
        self._audit.record("key.generate", owner, {"key_type": ref.key_type.value})
        return ref

    @_pooled
    def generate_code(self, owner: str, key_type: KeyType, digits: int = 8) -> KeyRef:
        """A random PIN/PUK/ADM code from the token's RNG, kept as an 8-byte generic secret.
        Limit: the digits are formed from the random bytes in host memory."""
        key_type = KeyType(key_type)
        if key_type not in CODE_TYPES:
            raise WrongKeyType(f"generate_code makes PIN, PUK or ADM codes, not {key_type.value}")
        code = code_from_random(lambda n: bytes(self._s().generate_random(8 * n)), digits)
        ref = self._wrap_value(owner, key_type, code)
        self._audit.record("key.generate", owner, {"key_type": key_type.value, "digits": digits})
        return ref

    @_pooled
    def patch_keys(
        self, buf: bytearray, slots: Sequence[Slot], refs: Sequence[KeyRef],
        *, owner: str | None = None,
    ) -> None:
        """Write each ref's key into `buf` at its slot. Each key is unwrapped into a session
        object, read and destroyed: the bytes pass through host memory into `buf` only."""
        check_slots(buf, slots, refs)
        keys = [self._read(r, r.key_type, owner) for r in refs]
        for i, (slot, key) in enumerate(zip(slots, keys, strict=True)):
            if len(key) != slot.length:
                raise BadLength(f"patch_keys: slot {i} holds {slot.length} bytes, the "
                                f"{refs[i].key_type.value} key of {refs[i].owner} has {len(key)}")
        for slot, key in zip(slots, keys, strict=True):
            buf[slot.offset : slot.offset + slot.length] = key
        self._audit.record("key.patch", owner or (refs[0].owner if refs else "-"),
                           {"key_types": [r.key_type.value for r in refs]})

    @_pooled
    def reveal_code(self, ref: KeyRef, *, owner: str) -> str:
        """The digits of a PIN or PUK code: unwrapped into a readable session object, read
        and destroyed. ADM and keys refused (WrongKeyType), another owner's ref too
        (WrongOwner). Audited without the value."""
        check_revealable(ref)
        digits = code_digits(self._read(ref, ref.key_type, owner), ref)
        self._audit.record("key.reveal", owner, {"key_type": ref.key_type.value})
        return digits

    @_pooled
    def reveal_service_code(self, ref: KeyRef, *, owner: str) -> str:
        """The digits of a PIN, PUK or ADM code (a service centre re-programs the card); keys
        refused (WrongKeyType), another owner's ref too (WrongOwner). Audited without the
        value, under its own action."""
        check_service_revealable(ref)
        digits = code_digits(self._read(ref, ref.key_type, owner), ref)
        self._audit.record("key.reveal_service", owner, {"key_type": ref.key_type.value})
        return digits

    @_pooled
    def import_clear(self, owner: str, key_type: KeyType, key: bytes) -> KeyRef:
        key_type = KeyType(key_type)
        if key_type in CODE_TYPES:  # PIN/PUK/ADM: 8-byte values, as generate_code
            if len(key) != CODE_LENGTH:
                raise BadLength(f"a {key_type.value} code is stored as {CODE_LENGTH} bytes, "
                                f"got {len(key)}")
        elif len(key) not in (16, 24, 32):
            raise BadLength(f"the PKCS#11 backend keeps AES-sized keys only, got {len(key)}")
        ref = self._wrap_value(owner, key_type, key)
        self._audit.record("key.import_clear", owner, {"key_type": ref.key_type.value})
        return ref

    def import_clear_many(self, items: Sequence[tuple[str, KeyType, bytes]]) -> list[KeyRef]:
        """`import_clear` of many (owner, key type, key), in order."""
        return [self.import_clear(owner, key_type, key) for owner, key_type, key in items]

    def _decrypt(self, transport: str | Any, scheme: EkiScheme, data: bytes) -> bytes:
        tk = self._kek(transport, KekPurpose.TRANSPORT) if isinstance(transport, str) else transport
        scheme = EkiScheme(scheme)
        if scheme is EkiScheme.AES128_ECB:
            return bytes(tk.decrypt(data, mechanism=Mechanism.AES_ECB))
        if scheme is EkiScheme.AES128_CBC:
            return bytes(tk.decrypt(data, mechanism=Mechanism.AES_CBC, mechanism_param=bytes(16)))
        raise HsmError(f"scheme {scheme.value} is not supported by the pkcs11 backend")

    @_pooled
    def import_encrypted(
        self, owner: str, key_type: KeyType, data: bytes, transport: str, scheme: EkiScheme
    ) -> KeyRef:
        key = self._decrypt(transport, scheme, data)
        if len(key) not in (16, 24, 32):
            raise BadLength(f"the PKCS#11 backend keeps AES-sized keys only, got {len(key)}")
        ref = self._wrap_value(owner, KeyType(key_type), key)
        self._audit.record("key.import", owner, {"key_type": ref.key_type.value,
                                                 "transport": transport, "scheme": str(scheme)})
        return ref

    @_pooled
    def import_batch(
        self,
        rows: Sequence[tuple[str, bytes, bytes | None]],
        transport: str,
        scheme: EkiScheme,
    ) -> list[tuple[KeyRef, KeyRef | None]]:
        out: list[tuple[KeyRef, KeyRef | None]] = []
        tk = self._kek(transport, KekPurpose.TRANSPORT)  # one C_FindObjects per batch
        for owner, eki, eopc in rows:
            ki = self._wrap_value(owner, KeyType.KI, self._decrypt(tk, scheme, eki))
            opc = None
            if eopc is not None:
                value = self._decrypt(tk, scheme, eopc)
                if len(value) not in (16, 24, 32):
                    raise BadLength(f"the PKCS#11 backend keeps AES-sized keys only, got "
                                    f"{len(value)}")
                opc = self._wrap_value(owner, KeyType.OPC, value)
            out.append((ki, opc))
        self._audit.record("key.import_batch", transport, {"rows": len(rows),
                                                           "scheme": str(scheme)})
        return out

    @_pooled
    def derive_opc(self, ki: KeyRef, op: KeyRef) -> KeyRef:
        k = self._unwrap(ki, KeyType.KI)
        op_clear = self._read(op, KeyType.OP)
        e = bytes(k.encrypt(op_clear, mechanism=Mechanism.AES_ECB))
        k.destroy()
        opc = bytes(a ^ b for a, b in zip(e, op_clear, strict=True))
        ref = self._wrap_value(ki.owner, KeyType.OPC, opc)
        self._audit.record("key.derive_opc", ki.owner, {"op_owner": op.owner})
        return ref

    @_pooled
    def rewrap(self, refs: Sequence[KeyRef]) -> list[KeyRef]:
        """Each ref in the current blob format (docs/hsm.md "Blob format"): a v1 (RFC 5649)
        blob is unwrapped in the token, checked for its owner and type, and wrapped again as
        v2; a v2 ref comes back as it is. Audited as `key.rewrap` with counts only."""
        out: list[KeyRef] = []
        changed = 0
        for ref in refs:
            if is_v2(ref.blob):  # current already: only verified
                if ref.key_type is KeyType.KI:
                    self._check_ref(ref, ref.key_type, None)
                    self._check_token_key(ref)
                else:
                    self._read(ref, ref.key_type)
                out.append(ref)
                continue
            self._check_ref(ref, ref.key_type, None)
            if ref.key_type is KeyType.KI:
                out.append(self._wrap_object(ref.owner, ref.key_type,
                                             self._unwrap(ref, ref.key_type)))
            else:
                value = self._read(ref, ref.key_type)
                if len(value) % 8:
                    out.append(ref)
                    continue
                out.append(self._wrap_value(ref.owner, ref.key_type, value))
            changed += 1
        self._audit.record("key.rewrap", STORAGE, {"refs": len(refs), "rewrapped": changed})
        return out

    @_pooled
    def kcv(self, ref: KeyRef) -> bytes:
        obj = self._unwrap(ref, ref.key_type)
        try:
            return self._kcv_of(obj)[:3]
        finally:
            obj.destroy()

    # --- authentication ----------------------------------------------------------------------

    @_pooled
    def milenage(self, ki: KeyRef, opc: KeyRef) -> Milenage:
        """Milenage whose kernel runs in the token with Ki as a non-extractable session key.

        The key object lives as long as the session: for repeated use by one subscriber (an
        AuC cache). Prefer `milenage_session`, which destroys it afterwards. Any thread may
        use it: each kernel call holds the session the key lives in."""
        self._check_ref(ki, KeyType.KI, None)
        opc_clear = self._read(opc, KeyType.OPC, ki.owner)
        kernel = TokenKernel(self._unwrap_kernel_key(ki), self._pool.current().lock)
        return Milenage.with_kernel(kernel, opc_clear)

    @contextmanager
    def milenage_session(self, ki: KeyRef, opc: KeyRef) -> Iterator[Milenage]:
        """Milenage in the token for the duration of a `with` block; the Ki object is destroyed
        at its end. The block holds one pooled session.

        With a v2 Ki blob and a module that exports its functions (hsm_sim.p11raw): the tag is
        checked and Ki unwrapped by direct calls, and the kernel is one multi-part
        C_EncryptInit(CKM_AES_ECB) for the whole block — TEMP, then OUT1..OUT4 per vector."""
        self._check_ref(ki, KeyType.KI, None)
        with self._pool.entry(self._prepare) as entry:
            opc_clear = self._read(opc, KeyType.OPC, ki.owner)
            raw = entry.raw
            if raw is not None and is_v2(ki.blob):
                handle = self._direct_kernel_key(entry, raw, ki)
                kernel = raw.ecb_kernel(handle)
                try:
                    yield Milenage.with_kernel(kernel, opc_clear)
                finally:
                    try:
                        kernel.finish()
                    finally:
                        raw.destroy(handle)
                return
            key = self._unwrap_kernel_key(ki)
            try:
                yield Milenage.with_kernel(TokenKernel(key, entry.lock), opc_clear)
            finally:
                key.destroy()

    def _direct_kernel_key(self, entry: Entry, raw: RawSession, ki: KeyRef) -> int:
        """A v2 Ki as a non-extractable session key, by direct calls: its handle."""
        wrapped = self._check_token_key(ki, entry)
        try:
            return raw.unwrap_kernel_key(entry.kwp.handle, wrapped)
        except RawFailed:
            raise TamperedBlob(f"Ki blob for owner {ki.owner} fails its integrity check") from None

    def _unwrap_kernel_key(self, ki: KeyRef) -> Any:
        if ki.key_type is not KeyType.KI:
            raise WrongKeyType(f"expected a Ki key, got {ki.key_type.value}")
        template = {Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True,
                    Attribute.ENCRYPT: True}
        try:
            if is_v2(ki.blob):
                wrapped = self._check_token_key(ki)
                return self._pool.current().kwp.unwrap_key(
                    ObjectClass.SECRET_KEY, P11KeyType.AES, wrapped,
                    mechanism=Mechanism.AES_KEY_WRAP_PAD, store=False, template=template)
            with self._kwk(KeyType.KI, ki.owner) as kwk:
                return kwk.unwrap_key(
                    ObjectClass.SECRET_KEY, P11KeyType.AES, ki.blob,
                    mechanism=Mechanism.AES_KEY_WRAP_PAD, store=False, template=template,
                )
        except PKCS11Error:
            raise TamperedBlob(f"Ki blob for owner {ki.owner} fails its integrity check") from None

    @_pooled
    def milenage_vectors(
        self,
        ki: KeyRef,
        opc: KeyRef,
        sqns: Sequence[int],
        amf: bytes = DEFAULT_AMF,
        rands: Sequence[bytes] | None = None,
    ) -> list[AuthVector]:
        rs = rands if rands is not None else [os.urandom(16) for _ in sqns]
        if len(rs) != len(sqns):
            raise BadLength("give one RAND per SQN")
        entry = self._pool.current()
        raw = entry.raw
        if raw is None or not is_v2(ki.blob):
            with self.milenage_session(ki, opc) as m:
                out = [m.vector(r, s, amf) for r, s in zip(rs, sqns, strict=True)]
        else:  # milenage_session's direct path, without its context manager
            self._check_ref(ki, KeyType.KI, None)
            self._check_ref(opc, KeyType.OPC, ki.owner)
            opc_clear = (self._open_value(opc, entry) if is_v2(opc.blob)
                         else self._read(opc, KeyType.OPC, ki.owner))
            handle = self._direct_kernel_key(entry, raw, ki)
            kernel = raw.ecb_kernel(handle)
            try:
                out = [vector_on(kernel, opc_clear, r, s, amf)
                       for r, s in zip(rs, sqns, strict=True)]
            finally:
                try:
                    kernel.finish()
                finally:
                    raw.destroy(handle)
        self._audit.record("auth.milenage", ki.owner, {"count": len(out)})
        return out

    @_pooled
    def milenage_resync(self, ki: KeyRef, opc: KeyRef, rand: bytes, auts: bytes) -> int:
        with self.milenage_session(ki, opc) as m:
            sqn = m.resync(rand, auts)
        self._audit.record("auth.resync", ki.owner, {"sqn_ms": sqn})
        return sqn

    @_pooled
    def gsm_triplets(self, ki: KeyRef, opc: KeyRef, rands: Sequence[bytes]) -> list[GsmTriplet]:
        out = []
        with self.milenage_session(ki, opc) as m:
            for r in rands:
                res, ck, ik, _ = m.f2345(r)
                out.append(GsmTriplet(r, c2(res), c3(ck, ik)))
        self._audit.record("auth.gsm", ki.owner, {"count": len(out)})
        return out

    # --- export ------------------------------------------------------------------------------

    @_pooled
    def export(self, refs: Sequence[KeyRef], target: str, scheme: str = "kwp") -> list[bytes]:
        clear_target = self._find(self._label("export-clear", target)) is not None
        if clear_target:
            if scheme != "clear":
                raise ExportRefused(f"target {target!r} is a clear target: use scheme 'clear'")
            out = [self._read(r, r.key_type) for r in refs]
        else:
            if scheme != "kwp":
                raise ExportRefused(f"the pkcs11 backend exports with 'kwp' only, not {scheme!r}")
            ek = self._kek(target, KekPurpose.EXPORT)
            out = []
            for r in refs:
                obj = self._unwrap(r, r.key_type)
                out.append(bytes(ek.wrap_key(obj, mechanism=Mechanism.AES_KEY_WRAP_PAD)))
                obj.destroy()
        for r in refs:
            self._audit.record("key.export", r.owner, {"key_type": r.key_type.value,
                                                       "target": target, "scheme": scheme,
                                                       "insecure_clear": clear_target})
        return out
