"""The PKCS#11 backend: key custody in a token through python-pkcs11 (tested on SoftHSM2).

PKCS#11 v2.40 mechanisms used: CKM_AES_ECB_ENCRYPT_DATA (per-(type, owner) wrapping keys, the same
derivation as hsm_sim.binding, so blobs are identical to the soft backend's for the same storage
KEK), CKM_AES_KEY_WRAP_PAD (RFC 5649 blobs), CKM_AES_ECB (Milenage kernel: TEMP first, then the
output blocks in one C_Encrypt), CKM_AES_CMAC (KCVs).

Ki is unwrapped into a non-extractable session key and never leaves the token. Limits, also in
docs/hsm.md: OPc/OP are unwrapped into host memory for Milenage's XOR steps; SoftHSM2 has no
C_UnwrapKey with CKM_AES_ECB/CBC, so vendor EKIs are C_Decrypt-ed and pass through host memory
on import; TDES transport keys are not supported here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pkcs11
from pkcs11 import Attribute, Mechanism, ObjectClass
from pkcs11 import KeyType as P11KeyType
from pkcs11.exceptions import PKCS11Error

from hsm_sim import ceremony
from hsm_sim.binding import binding_block
from hsm_sim.eki import EkiScheme
from hsm_sim.errors import (
    BadLength,
    DuplicateKey,
    ExportRefused,
    HsmError,
    HsmLocked,
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
    check_slots,
    code_digits,
    code_from_random,
)
from hsm_sim.keyref import KeyRef, KeyType
from hsm_sim.milenage import AuthVector, Milenage

__all__ = ["Pkcs11Hsm", "TokenKernel"]

STORAGE = "storage"
_SESSION = {Attribute.TOKEN: False}


class TokenKernel:
    """E_K as C_Encrypt(CKM_AES_ECB) with a key object inside the token."""

    __slots__ = ("_key",)

    def __init__(self, key: Any) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "TokenKernel(<token key>)"

    def update(self, data: bytes) -> bytes:
        return bytes(self._key.encrypt(data, mechanism=Mechanism.AES_ECB))


class Pkcs11Hsm:
    """HSM operations on a PKCS#11 token found by label (log in once per process)."""

    backend = "pkcs11"

    def __init__(
        self,
        module: str,
        token_label: str,
        pin: str,
        *,
        audit: AuditSink | None = None,
        prefix: str = "simsmith",
    ) -> None:
        lib = pkcs11.lib(module)
        try:
            token = lib.get_token(token_label=token_label)
        except (pkcs11.NoSuchToken, pkcs11.MultipleTokensReturned):
            raise NoSuchKey(f"no single PKCS#11 token labelled {token_label!r}") from None
        try:
            self._session: Any = token.open(user_pin=pin, rw=True)
        except pkcs11.PinIncorrect:
            raise HsmLocked(f"the PIN for token {token_label!r} is wrong") from None
        except pkcs11.exceptions.UserAlreadyLoggedIn:
            # Login state is per process: another session of ours already logged in.
            self._session = token.open(rw=True)
        self._token_label = token_label
        self._prefix = prefix
        self._audit: AuditSink = audit or NullAudit()
        self._storage = self._find_or_create_storage()

    def __repr__(self) -> str:
        return f"Pkcs11Hsm(token={self._token_label!r})"

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _s(self) -> Any:
        if self._session is None:
            raise HsmLocked("the PKCS#11 session is closed")
        return self._session

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
        try:
            with self._kwk(key_type, owner) as kwk:
                blob = bytes(kwk.wrap_key(obj, mechanism=Mechanism.AES_KEY_WRAP_PAD))
        finally:
            obj.destroy()
        return KeyRef(self.backend, key_type, owner, STORAGE, blob)

    def _session_key(self, value: bytes) -> Any:
        if len(value) not in (16, 24, 32):
            raise BadLength(f"the PKCS#11 backend keeps AES-sized keys only, got {len(value)}")
        return self._s().create_object({
            Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: P11KeyType.AES,
            Attribute.VALUE: value, Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: True,
            **_SESSION,
        })

    def _unwrap(
        self, ref: KeyRef, key_type: KeyType, owner: str | None = None, *, readable: bool = False
    ) -> Any:
        if ref.backend != self.backend:
            raise WrongKeyType(f"{ref!r} belongs to the {ref.backend} backend")
        if ref.key_type is not key_type:
            raise WrongKeyType(f"expected a {key_type.value} key, got {ref.key_type.value}")
        if owner is not None and ref.owner != owner:
            raise WrongOwner(f"{ref.key_type.value} key of {ref.owner} used for {owner}")
        if ref.key_type in CODE_TYPES:  # PIN/PUK/ADM codes: 8-byte generic secrets
            p11_type, usage = P11KeyType.GENERIC_SECRET, {}
        else:
            p11_type, usage = P11KeyType.AES, {Attribute.ENCRYPT: True, Attribute.SIGN: True}
        try:
            with self._kwk(ref.key_type, ref.owner) as kwk:
                return kwk.unwrap_key(
                    ObjectClass.SECRET_KEY, p11_type, ref.blob,
                    mechanism=Mechanism.AES_KEY_WRAP_PAD, store=False,
                    template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: not readable,
                              **usage},
                )
        except PKCS11Error:
            raise TamperedBlob(
                f"{ref.key_type.value} blob for owner {ref.owner} fails its integrity check"
            ) from None

    def _read(self, ref: KeyRef, key_type: KeyType, owner: str | None = None) -> bytes:
        obj = self._unwrap(ref, key_type, owner, readable=True)
        try:
            return bytes(obj[Attribute.VALUE])
        finally:
            obj.destroy()

    def generate(self, owner: str, key_type: KeyType, length: int = 16) -> KeyRef:
        if length not in (16, 24, 32):
            raise BadLength(f"the PKCS#11 backend generates AES-sized keys only, got {length}")
        obj = self._s().generate_key(
            P11KeyType.AES, length * 8, store=False,
            template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: True},
        )
        ref = self._wrap_object(owner, KeyType(key_type), obj)
        self._audit.record("key.generate", owner, {"key_type": ref.key_type.value})
        return ref

    def generate_code(self, owner: str, key_type: KeyType, digits: int = 8) -> KeyRef:
        """A random PIN/PUK/ADM code from the token's RNG, kept as an 8-byte generic secret.
        Limit: the digits are formed from the random bytes in host memory."""
        key_type = KeyType(key_type)
        if key_type not in CODE_TYPES:
            raise WrongKeyType(f"generate_code makes PIN, PUK or ADM codes, not {key_type.value}")
        code = code_from_random(lambda n: bytes(self._s().generate_random(8 * n)), digits)
        obj = self._s().create_object({
            Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: P11KeyType.GENERIC_SECRET,
            Attribute.VALUE: code, Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: True,
            **_SESSION,
        })
        ref = self._wrap_object(owner, key_type, obj)
        self._audit.record("key.generate", owner, {"key_type": key_type.value, "digits": digits})
        return ref

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

    def reveal_code(self, ref: KeyRef, *, owner: str) -> str:
        """The digits of a PIN or PUK code: unwrapped into a readable session object, read
        and destroyed. ADM and keys refused (WrongKeyType), another owner's ref too
        (WrongOwner). Audited without the value."""
        check_revealable(ref)
        digits = code_digits(self._read(ref, ref.key_type, owner), ref)
        self._audit.record("key.reveal", owner, {"key_type": ref.key_type.value})
        return digits

    def import_clear(self, owner: str, key_type: KeyType, key: bytes) -> KeyRef:
        key_type = KeyType(key_type)
        if key_type in CODE_TYPES:  # PIN/PUK/ADM: 8-byte generic secrets, as generate_code
            if len(key) != CODE_LENGTH:
                raise BadLength(f"a {key_type.value} code is stored as {CODE_LENGTH} bytes, "
                                f"got {len(key)}")
            obj = self._s().create_object({
                Attribute.CLASS: ObjectClass.SECRET_KEY,
                Attribute.KEY_TYPE: P11KeyType.GENERIC_SECRET, Attribute.VALUE: key,
                Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: True, **_SESSION,
            })
        else:
            obj = self._session_key(key)
        ref = self._wrap_object(owner, key_type, obj)
        self._audit.record("key.import_clear", owner, {"key_type": ref.key_type.value})
        return ref

    def _decrypt(self, transport: str, scheme: EkiScheme, data: bytes) -> bytes:
        tk = self._kek(transport, KekPurpose.TRANSPORT)
        scheme = EkiScheme(scheme)
        if scheme is EkiScheme.AES128_ECB:
            return bytes(tk.decrypt(data, mechanism=Mechanism.AES_ECB))
        if scheme is EkiScheme.AES128_CBC:
            return bytes(tk.decrypt(data, mechanism=Mechanism.AES_CBC, mechanism_param=bytes(16)))
        raise HsmError(f"scheme {scheme.value} is not supported by the pkcs11 backend")

    def import_encrypted(
        self, owner: str, key_type: KeyType, data: bytes, transport: str, scheme: EkiScheme
    ) -> KeyRef:
        key = self._session_key(self._decrypt(transport, scheme, data))
        ref = self._wrap_object(owner, KeyType(key_type), key)
        self._audit.record("key.import", owner, {"key_type": ref.key_type.value,
                                                 "transport": transport, "scheme": str(scheme)})
        return ref

    def import_batch(
        self,
        rows: Sequence[tuple[str, bytes, bytes | None]],
        transport: str,
        scheme: EkiScheme,
    ) -> list[tuple[KeyRef, KeyRef | None]]:
        out: list[tuple[KeyRef, KeyRef | None]] = []
        for owner, eki, eopc in rows:
            ki = self._wrap_object(owner, KeyType.KI,
                                   self._session_key(self._decrypt(transport, scheme, eki)))
            opc = None
            if eopc is not None:
                opc = self._wrap_object(owner, KeyType.OPC,
                                        self._session_key(self._decrypt(transport, scheme, eopc)))
            out.append((ki, opc))
        self._audit.record("key.import_batch", transport, {"rows": len(rows),
                                                           "scheme": str(scheme)})
        return out

    def derive_opc(self, ki: KeyRef, op: KeyRef) -> KeyRef:
        k = self._unwrap(ki, KeyType.KI)
        op_clear = self._read(op, KeyType.OP)
        e = bytes(k.encrypt(op_clear, mechanism=Mechanism.AES_ECB))
        k.destroy()
        opc = bytes(a ^ b for a, b in zip(e, op_clear, strict=True))
        ref = self._wrap_object(ki.owner, KeyType.OPC, self._session_key(opc))
        self._audit.record("key.derive_opc", ki.owner, {"op_owner": op.owner})
        return ref

    def kcv(self, ref: KeyRef) -> bytes:
        obj = self._unwrap(ref, ref.key_type)
        try:
            return self._kcv_of(obj)[:3]
        finally:
            obj.destroy()

    # --- authentication ----------------------------------------------------------------------

    def milenage(self, ki: KeyRef, opc: KeyRef) -> Milenage:
        """Milenage whose kernel runs in the token with Ki as a non-extractable session key.

        The key object lives as long as the session: for repeated use by one subscriber (an
        AuC cache). Prefer `milenage_session`, which destroys it afterwards."""
        if ki.backend != self.backend:
            raise WrongKeyType(f"{ki!r} belongs to the {ki.backend} backend")
        opc_clear = self._read(opc, KeyType.OPC, ki.owner)
        return Milenage.with_kernel(TokenKernel(self._unwrap_kernel_key(ki)), opc_clear)

    @contextmanager
    def milenage_session(self, ki: KeyRef, opc: KeyRef) -> Iterator[Milenage]:
        """Milenage in the token for the duration of a `with` block; the Ki object is destroyed
        at its end."""
        if ki.backend != self.backend:
            raise WrongKeyType(f"{ki!r} belongs to the {ki.backend} backend")
        opc_clear = self._read(opc, KeyType.OPC, ki.owner)
        key = self._unwrap_kernel_key(ki)
        try:
            yield Milenage.with_kernel(TokenKernel(key), opc_clear)
        finally:
            key.destroy()

    def _unwrap_kernel_key(self, ki: KeyRef) -> Any:
        if ki.key_type is not KeyType.KI:
            raise WrongKeyType(f"expected a Ki key, got {ki.key_type.value}")
        try:
            with self._kwk(KeyType.KI, ki.owner) as kwk:
                return kwk.unwrap_key(
                    ObjectClass.SECRET_KEY, P11KeyType.AES, ki.blob,
                    mechanism=Mechanism.AES_KEY_WRAP_PAD, store=False,
                    template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True,
                              Attribute.ENCRYPT: True},
                )
        except PKCS11Error:
            raise TamperedBlob(f"Ki blob for owner {ki.owner} fails its integrity check") from None

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
        with self.milenage_session(ki, opc) as m:
            out = [m.vector(r, s, amf) for r, s in zip(rs, sqns, strict=True)]
        self._audit.record("auth.milenage", ki.owner, {"count": len(out)})
        return out

    def milenage_resync(self, ki: KeyRef, opc: KeyRef, rand: bytes, auts: bytes) -> int:
        with self.milenage_session(ki, opc) as m:
            sqn = m.resync(rand, auts)
        self._audit.record("auth.resync", ki.owner, {"sqn_ms": sqn})
        return sqn

    def gsm_triplets(self, ki: KeyRef, opc: KeyRef, rands: Sequence[bytes]) -> list[GsmTriplet]:
        out = []
        with self.milenage_session(ki, opc) as m:
            for r in rands:
                res, ck, ik, _ = m.f2345(r)
                out.append(GsmTriplet(r, c2(res), c3(ck, ik)))
        self._audit.record("auth.gsm", ki.owner, {"count": len(out)})
        return out

    # --- export ------------------------------------------------------------------------------

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
