"""The soft HSM: key custody in-process on `cryptography` (design §2; docs/hsm.md).

Hierarchy: master key (ceremony: XOR of 2..n components, or a dev passphrase through scrypt) →
KEKs (the default storage KEK derived from the master with HKDF-SHA256, RFC 5869; named KEKs
wrapped under the master in the keystore file) → data keys wrapped by hsm_sim.binding (AES-GCM,
bound to owner and key type). Clear data keys exist only in local variables of these methods.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, keywrap
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hsm_sim import ceremony
from hsm_sim.binding import Binder, is_v2
from hsm_sim.ec_signing import SoftEcSigningKeys
from hsm_sim.eki import TDES_SCHEMES, EkiScheme, decrypt_eki, encrypt_eki, key_length
from hsm_sim.errors import (
    BadKCV,
    BadLength,
    DevModeWarning,
    DuplicateKey,
    ExportRefused,
    HsmLocked,
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
from hsm_sim.kcv import kcv, tdes_kcv
from hsm_sim.keyref import KeyRef, KeyType
from hsm_sim.keystore import KekRecord, Keystore
from hsm_sim.milenage import AuthVector, Milenage
from hsm_sim.milenage import derive_opc as _derive_opc
from hsm_sim.milenage import vector as milenage_vector
from hsm_sim.suci_keys import SoftSuciKeys
from hsm_sim.tuak import Tuak, TuakVector

__all__ = ["STORAGE", "SoftHsm", "default_directory"]

STORAGE = "storage"
_SEALED = "dev-master.sealed"
# The sealed dev file is obfuscation, not protection: this key is public (it is right here).
_SEAL_KEY = HKDF(hashes.SHA256(), 32, None, b"simsmith insecure dev seal v1").derive(b"\x00" * 32)


def default_directory() -> Path:
    """`$SIMSMITH_HOME/hsm` (SIMSMITH_HOME defaults to ./.simsmith)."""
    return Path(os.environ.get("SIMSMITH_HOME", ".simsmith")) / "hsm"


def _hkdf(master: bytes, info: str) -> bytes:
    return HKDF(hashes.SHA256(), 32, None, info.encode()).derive(master)


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


class SoftHsm(SoftSuciKeys, SoftEcSigningKeys):
    """In-process HSM. Open it with `init(...)` once, then `open(...)` with the same secret."""

    backend = "soft"

    def __init__(self, store: Keystore, master: bytes, audit: AuditSink | None = None) -> None:
        ceremony.check_kcv(master, store.master_kcv, "the master key")
        self._store = store
        self._master: bytes | None = master
        self._audit: AuditSink = audit or NullAudit()
        self._binders: dict[str, Binder] = {}
        self._store_lock = threading.Lock()  # keystore changes (kek_add): one at a time

    def __repr__(self) -> str:
        state = "open" if self._master else "locked"
        return f"SoftHsm({self._store.directory}, {state})"

    # --- ceremony ---------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        directory: Path,
        *,
        components: Sequence[bytes] | None = None,
        passphrase: str | None = None,
        audit: AuditSink | None = None,
        scrypt_n: int = 2**15,
    ) -> SoftHsm:
        """Create the keystore: master key from components (XOR) or, dev only, a passphrase."""
        if Keystore.exists(directory):
            raise DuplicateKey(f"an HSM keystore already exists in {directory}")
        scrypt: dict[str, Any] | None = None
        if components is not None and passphrase is None:
            master = ceremony.combine_components(components)
            source, n = "components", len(components)
        elif passphrase is not None and components is None:
            warnings.warn(ceremony.DEV_WARNING, DevModeWarning, stacklevel=2)
            salt = os.urandom(16)
            scrypt = {"salt": salt.hex(), "n": scrypt_n, "r": 8, "p": 1}
            master = ceremony.key_from_passphrase(passphrase, salt, scrypt_n)
            source, n = "dev-passphrase", 0
        else:
            raise BadLength("give either custodian components or a dev passphrase")
        check = ceremony.key_check(master)
        store = Keystore(Path(directory), source, n, check.kcv, check.legacy_kcv, scrypt)
        storage = _hkdf(master, f"simsmith/storage-kek/v1/{STORAGE}")
        sc = ceremony.key_check(storage)
        store.add(KekRecord(STORAGE, "storage", sc.kcv, sc.legacy_kcv, derived=True,
                            created=_now()))
        store.save()
        hsm = cls(store, master, audit)
        hsm._audit.record("hsm.init", str(directory), {"source": source, "components": n,
                                                       "master_kcv": check.kcv})
        return hsm

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        components: Sequence[bytes] | None = None,
        passphrase: str | None = None,
        audit: AuditSink | None = None,
    ) -> SoftHsm:
        """Open an existing keystore; a wrong component or passphrase is refused by KCV."""
        store = Keystore.load(Path(directory))
        if store.master_source == "components":
            if components is None:
                raise HsmLocked("this HSM opens with its custodian components")
            master = ceremony.combine_components(components)
        else:
            if passphrase is None:
                raise HsmLocked("this (dev) HSM opens with its passphrase")
            warnings.warn(ceremony.DEV_WARNING, DevModeWarning, stacklevel=2)
            s = store.scrypt or {}
            master = ceremony.key_from_passphrase(
                passphrase, bytes.fromhex(s["salt"]), s["n"], s["r"], s["p"]
            )
        try:
            return cls(store, master, audit)
        except BadKCV:
            raise BadKCV(
                f"the master key does not match the keystore's KCV {store.master_kcv}: "
                "a component or the passphrase is wrong"
            ) from None

    def seal_dev(self) -> Path:
        """Write the INSECURE sealed dev file so `make run` can open the HSM unattended."""
        master = self._require_master()
        path = self._store.directory / _SEALED
        blob = base64.b64encode(keywrap.aes_key_wrap_with_padding(_SEAL_KEY, master)).decode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("# INSECURE simsmith dev seal: whoever reads this file has the master key.\n")
            f.write(blob + "\n")
        self._audit.record("hsm.seal_dev", str(path), {"insecure": True})
        return path

    @classmethod
    def open_sealed_dev(cls, directory: Path, audit: AuditSink | None = None) -> SoftHsm:
        """Open with the sealed dev file (insecure; for `make run` and demos only)."""
        warnings.warn("opening the HSM with the INSECURE sealed dev file", DevModeWarning,
                      stacklevel=2)
        lines = (Path(directory) / _SEALED).read_text().splitlines()
        blob = base64.b64decode(next(ln for ln in lines if ln and not ln.startswith("#")))
        try:
            master = keywrap.aes_key_unwrap_with_padding(_SEAL_KEY, blob)
        except keywrap.InvalidUnwrap:
            raise TamperedBlob("the sealed dev file is corrupt") from None
        return cls(Keystore.load(Path(directory)), master, audit)

    @classmethod
    def dev(cls, directory: Path, audit: AuditSink | None = None) -> SoftHsm:
        """`make run`: open the dev HSM in `directory` from its sealed file, creating both (random
        dev passphrase, sealed) on first use. INSECURE by design; warns every time."""
        d = Path(directory)
        if not Keystore.exists(d):
            hsm = cls.init(d, passphrase=base64.b64encode(os.urandom(24)).decode(), audit=audit)
            hsm.seal_dev()
            return hsm
        return cls.open_sealed_dev(d, audit)

    def close(self) -> None:
        self._master = None
        self._binders.clear()

    def status(self) -> dict[str, Any]:
        s = self._store
        return {
            "backend": self.backend,
            "directory": str(s.directory),
            "open": self._master is not None,
            "master_source": s.master_source,
            "master_components": s.master_components,
            "master_kcv": s.master_kcv,
            "master_legacy_kcv": s.master_legacy_kcv,
            "keks": len(s.keks),
        }

    # --- KEKs ------------------------------------------------------------------------------

    def _require_master(self) -> bytes:
        if self._master is None:
            raise HsmLocked("the HSM is closed: open it with its components or passphrase")
        return self._master

    def _kek_wrapping_key(self, name: str, purpose: str) -> bytes:
        return _hkdf(self._require_master(), f"simsmith/kek-wrap/v1/{purpose}/{name}")

    def kek_add(
        self,
        name: str,
        purpose: KekPurpose,
        components: Sequence[bytes] | None = None,
        *,
        insecure_clear: bool = False,
        expected_kcv: str | None = None,
    ) -> KekInfo:
        """Add a named KEK from 1..n components (XOR), a random one (storage), or a clear target.

        `expected_kcv`, the KCV announced with the key (AES-CMAC or legacy), refuses a wrong
        component before anything is stored."""
        purpose = KekPurpose(purpose)
        KeyRef("soft", KeyType.KI, "check", name, b"")  # validates the name's characters
        if insecure_clear:
            if purpose is not KekPurpose.EXPORT or components:
                raise BadLength("only an export target without a key can be marked insecure")
            rec = KekRecord(name, purpose.value, "", "", insecure_clear=True, created=_now())
        else:
            if components:
                key = ceremony.combine_components(components, minimum=1)
                if expected_kcv is not None:
                    ceremony.check_announced_kcv(key, expected_kcv, f"KEK {name!r}")
            elif purpose is KekPurpose.STORAGE:
                key = os.urandom(32)
            else:
                raise BadLength(f"a {purpose.value} KEK needs at least one --component")
            check = ceremony.key_check(key)
            wrapped = keywrap.aes_key_wrap_with_padding(
                self._kek_wrapping_key(name, purpose.value), key
            )
            rec = KekRecord(name, purpose.value, check.kcv, check.legacy_kcv,
                            base64.b64encode(wrapped).decode(), created=_now())
        with self._store_lock:
            self._store.add(rec)
            self._store.save()
        self._audit.record("kek.add", name, {"purpose": purpose.value, "kcv": rec.kcv,
                                              "insecure_clear": insecure_clear})
        return rec.info()

    def kek_list(self) -> list[KekInfo]:
        return [r.info() for r in self._store.keks.values()]

    def transport_kcvs(self, name: str, scheme: EkiScheme) -> dict[str, str]:
        """KCVs of a transport KEK in the convention of `scheme`'s algorithm: AES-CMAC and
        legacy AES-ECB for AES schemes; 3DES-ECB of 8 zero bytes for 3DES (2-key: 16 bytes,
        3-key: 24 bytes)."""
        scheme = EkiScheme(scheme)
        key = self._kek(name, KekPurpose.TRANSPORT)
        if scheme in TDES_SCHEMES:
            if len(key) != key_length(scheme):
                raise BadLength(f"KEK {name!r} has {len(key)} bytes: a {scheme.value} transport "
                                f"key has {key_length(scheme)}")
            return {"3DES KCV": tdes_kcv(key).hex()}
        check = ceremony.key_check(key)
        return {"KCV": check.kcv, "legacy": check.legacy_kcv}

    def _kek(self, name: str, purpose: KekPurpose) -> bytes:
        rec = self._store.kek(name)
        if rec.purpose != purpose.value:
            raise WrongPurpose(f"KEK {name!r} is a {rec.purpose} key, not {purpose.value}")
        if rec.derived:
            key = _hkdf(self._require_master(), f"simsmith/storage-kek/v1/{name}")
        else:
            try:
                key = keywrap.aes_key_unwrap_with_padding(
                    self._kek_wrapping_key(name, rec.purpose), rec.blob_bytes()
                )
            except keywrap.InvalidUnwrap:
                raise TamperedBlob(f"KEK {name!r} fails its integrity check") from None
        ceremony.check_kcv(key, rec.kcv, f"KEK {name!r}")
        return key

    def _binder(self, kek: str) -> Binder:
        b = self._binders.get(kek)
        if b is None:
            b = self._binders[kek] = Binder(self._kek(kek, KekPurpose.STORAGE))
        return b

    # --- data keys -------------------------------------------------------------------------

    def _wrap(self, owner: str, key_type: KeyType, key: bytes, kek: str = STORAGE) -> KeyRef:
        return KeyRef(self.backend, key_type, owner, kek, self._binder(kek).wrap(key_type, owner,
                                                                                  key))

    def _unwrap(self, ref: KeyRef, key_type: KeyType, owner: str | None = None) -> bytes:
        if ref.backend != self.backend:
            raise WrongKeyType(f"{ref!r} belongs to the {ref.backend} backend")
        if ref.key_type is not key_type:
            raise WrongKeyType(f"expected a {key_type.value} key, got {ref.key_type.value}")
        if owner is not None and ref.owner != owner:
            raise WrongOwner(f"{ref.key_type.value} key of {ref.owner} used for {owner}")
        binder = self._binders.get(ref.kek) or self._binder(ref.kek)
        return binder.unwrap(key_type, ref.owner, ref.blob)

    def generate(self, owner: str, key_type: KeyType, length: int = 16) -> KeyRef:
        ref = self._wrap(owner, KeyType(key_type), os.urandom(length))
        self._audit.record("key.generate", owner, {"key_type": ref.key_type.value,
                                                   "length": length})
        return ref

    def import_clear(self, owner: str, key_type: KeyType, key: bytes) -> KeyRef:
        """Wrap a key given in clear (an operator's OP; a vendor file's PIN/PUK/ADM codes, which
        must have the stored form: 8 bytes, ASCII digits padded with 'FF')."""
        key_type = KeyType(key_type)
        if key_type in CODE_TYPES and len(key) != CODE_LENGTH:
            raise BadLength(f"a {key_type.value} code is stored as {CODE_LENGTH} bytes, "
                            f"got {len(key)}")
        ref = self._wrap(owner, key_type, key)
        check = {"length": len(key)} if key_type in CODE_TYPES else {"kcv": kcv(key).hex()}
        self._audit.record("key.import_clear", owner, {"key_type": ref.key_type.value, **check})
        return ref

    def import_clear_many(self, items: Sequence[tuple[str, KeyType, bytes]]) -> list[KeyRef]:
        """`import_clear` for many (owner, key type, key) at once — a vendor file's codes and OTA
        keys: names checked once per owner, one random call for all nonces, one audit record
        (counts per key type; no KCVs, which would cost a CMAC per key)."""
        checked = ""
        counts: dict[str, int] = {}
        typed: list[tuple[KeyType, str, bytes]] = []
        for owner, key_type, key in items:
            if owner != checked:
                KeyRef.check_name("owner", owner)
                checked = owner
            if key_type.__class__ is not KeyType:
                key_type = KeyType(key_type)
            if len(key) != CODE_LENGTH and key_type in CODE_TYPES:
                raise BadLength(f"a {key_type.value} code is stored as {CODE_LENGTH} bytes, "
                                f"got {len(key)}")
            typed.append((key_type, owner, key))
        for t, _, _ in typed:
            counts[t.value] = counts.get(t.value, 0) + 1
        wrapped = self._binder(STORAGE).wrap_many(typed)
        trusted, backend = KeyRef.trusted, self.backend
        refs = [trusted(backend, t, o, STORAGE, w)
                for (t, o, _), w in zip(typed, wrapped, strict=True)]
        if refs:
            # Key types as a list: a mapping named PIN, ADM, … would read as secret fields.
            self._audit.record("key.import_clear", "batch",
                               {"count": len(refs), "key_types": sorted(counts),
                                "owners": len({o for _, o, _ in typed})})
        return refs

    def generate_code(self, owner: str, key_type: KeyType, digits: int = 8) -> KeyRef:
        """A random PIN/PUK/ADM code of `digits` digits, ASCII padded with 'FF' to 8 bytes."""
        key_type = KeyType(key_type)
        if key_type not in CODE_TYPES:
            raise WrongKeyType(f"generate_code makes PIN, PUK or ADM codes, not {key_type.value}")
        ref = self._wrap(owner, key_type, code_from_random(os.urandom, digits))
        self._audit.record("key.generate", owner, {"key_type": key_type.value, "digits": digits})
        return ref

    def patch_keys(
        self, buf: bytearray, slots: Sequence[Slot], refs: Sequence[KeyRef],
        *, owner: str | None = None,
    ) -> None:
        """Write each ref's key into `buf` at its slot (a package or an APDU being built)."""
        check_slots(buf, slots, refs)
        keys = [self._unwrap(r, r.key_type, owner) for r in refs]
        for i, (slot, key) in enumerate(zip(slots, keys, strict=True)):
            if len(key) != slot.length:
                raise BadLength(f"patch_keys: slot {i} holds {slot.length} bytes, the "
                                f"{refs[i].key_type.value} key of {refs[i].owner} has {len(key)}")
        for slot, key in zip(slots, keys, strict=True):
            buf[slot.offset : slot.offset + slot.length] = key
        self._audit.record("key.patch", owner or (refs[0].owner if refs else "-"),
                           {"key_types": [r.key_type.value for r in refs]})

    def reveal_code(self, ref: KeyRef, *, owner: str) -> str:
        """The digits of a PIN or PUK code; ADM and keys refused (WrongKeyType), another owner's
        ref too (WrongOwner). Audited without the value."""
        check_revealable(ref)
        digits = code_digits(self._unwrap(ref, ref.key_type, owner), ref)
        self._audit.record("key.reveal", owner, {"key_type": ref.key_type.value})
        return digits

    def reveal_service_code(self, ref: KeyRef, *, owner: str) -> str:
        """The digits of a PIN, PUK or ADM code (a service centre re-programs the card); keys
        refused (WrongKeyType), another owner's ref too (WrongOwner). Audited without the
        value, under its own action."""
        check_service_revealable(ref)
        digits = code_digits(self._unwrap(ref, ref.key_type, owner), ref)
        self._audit.record("key.reveal_service", owner, {"key_type": ref.key_type.value})
        return digits

    def import_encrypted(
        self, owner: str, key_type: KeyType, data: bytes, transport: str, scheme: EkiScheme
    ) -> KeyRef:
        key = decrypt_eki(scheme, self._kek(transport, KekPurpose.TRANSPORT), data)
        ref = self._wrap(owner, KeyType(key_type), key)
        self._audit.record("key.import", owner, {"key_type": ref.key_type.value,
                                                 "transport": transport, "scheme": str(scheme)})
        return ref

    def import_batch(
        self,
        rows: Sequence[tuple[str, bytes, bytes | None]],
        transport: str,
        scheme: EkiScheme,
    ) -> list[tuple[KeyRef, KeyRef | None]]:
        """Many (owner, EKI, EOPC or None) at once: one decryption call, one derivation call."""
        tk = self._kek(transport, KekPurpose.TRANSPORT)
        sizes = {len(r[1]) for r in rows} | {len(r[2]) for r in rows if r[2] is not None}
        if len(sizes) > 1 or (sizes and next(iter(sizes)) % 16):
            raise BadLength("every encrypted key of a batch must have one length, a multiple of 16")
        size = next(iter(sizes)) if sizes else 16
        blobs = [b for r in rows for b in (r[1], r[2]) if b is not None]
        if EkiScheme(scheme) is EkiScheme.AES128_CBC and size > 16:
            # CBC chains within one key only: decrypt key by key.
            clear = b"".join(decrypt_eki(scheme, tk, b) for b in blobs)
        else:
            # ECB (and CBC with a zero IV over one block, which is ECB) batches in one call.
            one = EkiScheme.AES128_ECB if scheme == EkiScheme.AES128_CBC else EkiScheme(scheme)
            clear = decrypt_eki(one, tk, b"".join(blobs)) if blobs else b""
        items: list[tuple[KeyType, str, bytes]] = []
        pos = 0
        for owner, _, eopc in rows:
            KeyRef.check_name("owner", owner)
            items.append((KeyType.KI, owner, clear[pos : pos + size]))
            pos += size
            if eopc is not None:
                items.append((KeyType.OPC, owner, clear[pos : pos + size]))
                pos += size
        wrapped = self._binder(STORAGE).wrap_many(items)
        trusted = KeyRef.trusted
        out: list[tuple[KeyRef, KeyRef | None]] = []
        j = 0
        for owner, _, eopc in rows:
            ki = trusted(self.backend, KeyType.KI, owner, STORAGE, wrapped[j])
            j += 1
            opc = None
            if eopc is not None:
                opc = trusted(self.backend, KeyType.OPC, owner, STORAGE, wrapped[j])
                j += 1
            out.append((ki, opc))
        self._audit.record(
            "key.import_batch", transport, {"rows": len(rows), "scheme": str(scheme)}
        )
        return out

    def derive_opc(self, ki: KeyRef, op: KeyRef) -> KeyRef:
        k = self._unwrap(ki, KeyType.KI)
        opc = _derive_opc(k, self._unwrap(op, KeyType.OP))
        ref = self._wrap(ki.owner, KeyType.OPC, opc)
        self._audit.record("key.derive_opc", ki.owner, {"op_owner": op.owner})
        return ref

    def kcv(self, ref: KeyRef) -> bytes:
        return kcv(self._unwrap(ref, ref.key_type))

    def rewrap(self, refs: Sequence[KeyRef]) -> list[KeyRef]:
        """Each ref in the current blob format (docs/hsm.md "Blob format"): a v1 (RFC 5649) blob
        is unwrapped, checked for its owner and type, and wrapped again as v2 (AES-GCM);
        a ref already in v2 comes back as it is. Keys never leave the boundary; audited as
        `key.rewrap` with owner, type and count only."""
        out: list[KeyRef] = []
        changed = 0
        for ref in refs:
            key = self._unwrap(ref, ref.key_type)  # refuses what does not verify, either format
            if is_v2(ref.blob) or len(key) % 8:  # current already, or a length v2 does not take
                out.append(ref)
                continue
            out.append(self._wrap(ref.owner, ref.key_type, key, ref.kek))
            changed += 1
        self._audit.record("key.rewrap", "storage", {"refs": len(refs), "rewrapped": changed})
        return out

    # --- authentication ---------------------------------------------------------------------

    def _milenage(self, ki: KeyRef, opc: KeyRef) -> Milenage:
        return Milenage(self._unwrap(ki, KeyType.KI), self._unwrap(opc, KeyType.OPC, ki.owner))

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
        if len(sqns) == 1:  # the distinct-subscriber hot path: no per-subscriber object
            k, o = self._unwrap(ki, KeyType.KI), self._unwrap(opc, KeyType.OPC, ki.owner)
            out = [milenage_vector(k, o, rs[0], sqns[0], amf)]
        else:
            m = self._milenage(ki, opc)
            out = [m.vector(r, s, amf) for r, s in zip(rs, sqns, strict=True)]
        self._audit.record("auth.milenage", ki.owner, {"count": len(out)})
        return out

    def milenage_resync(self, ki: KeyRef, opc: KeyRef, rand: bytes, auts: bytes) -> int:
        sqn = self._milenage(ki, opc).resync(rand, auts)
        self._audit.record("auth.resync", ki.owner, {"sqn_ms": sqn})
        return sqn

    def gsm_triplets(self, ki: KeyRef, opc: KeyRef, rands: Sequence[bytes]) -> list[GsmTriplet]:
        m = self._milenage(ki, opc)
        out = []
        for r in rands:
            res, ck, ik, _ = m.f2345(r)
            out.append(GsmTriplet(r, c2(res), c3(ck, ik)))
        self._audit.record("auth.gsm", ki.owner, {"count": len(out)})
        return out

    def tuak_vectors(
        self,
        k: KeyRef,
        topc: KeyRef,
        sqns: Sequence[int],
        amf: bytes = DEFAULT_AMF,
        rands: Sequence[bytes] | None = None,
        **lengths: int,
    ) -> list[TuakVector]:
        t = Tuak(self._unwrap(k, KeyType.KI), self._unwrap(topc, KeyType.TOPC, k.owner), **lengths)
        rs = rands if rands is not None else [os.urandom(16) for _ in sqns]
        out = [t.vector(r, s, amf) for r, s in zip(rs, sqns, strict=True)]
        self._audit.record("auth.tuak", k.owner, {"count": len(out)})
        return out

    # --- export ----------------------------------------------------------------------------

    def export(self, refs: Sequence[KeyRef], target: str, scheme: str = "kwp") -> list[bytes]:
        """Re-wrap keys for a named export target: RFC 5649 (`kwp`) or a vendor EKI scheme under
        the target's key; clear only for a target marked insecure. Always audited."""
        rec = self._store.kek(target)
        if rec.purpose != KekPurpose.EXPORT.value:
            raise WrongPurpose(f"{target!r} is a {rec.purpose} key, not an export target")
        clear = [self._unwrap(r, r.key_type) for r in refs]
        if rec.insecure_clear:
            if scheme != "clear":
                raise ExportRefused(f"target {target!r} is a clear target: use scheme 'clear'")
            out = clear
        else:
            if scheme == "clear":
                raise ExportRefused(f"target {target!r} is not marked insecure: no clear export")
            ek = self._kek(target, KekPurpose.EXPORT)
            if scheme == "kwp":
                out = [keywrap.aes_key_wrap_with_padding(ek, c) for c in clear]
            else:
                out = [encrypt_eki(EkiScheme(scheme), ek, c) for c in clear]
        for r in refs:
            self._audit.record("key.export", r.owner, {"key_type": r.key_type.value,
                                                       "target": target, "scheme": scheme,
                                                       "insecure_clear": rec.insecure_clear})
        return out

    def same_key(self, a: KeyRef, b: KeyRef) -> bool:
        """Whether two references hold the same key (constant-time; for tests and checks)."""
        return hmac.compare_digest(self._unwrap(a, a.key_type), self._unwrap(b, b.key_type))
