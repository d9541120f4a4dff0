"""ECDSA signing keys held by the HSM: the SM-DP+'s SK.DPauth and SK.DPpb.

GSMA SGP.22 v2.x §2.6.7 (ECDSA with SHA-256 on NIST P-256 or brainpoolP256r1 — an SM-DP+ may
hold a key set per CI, one CI per curve; a signature is the plain r ‖ s of BSI TR-03111, 64
bytes on either 256-bit curve), §4.5.2 (CERT.DPauth.ECDSA / CERT.DPpb.ECDSA carry the public
keys).
FIPS 186-4 ECDSA; PKCS#11 v2.40 §2.3 (CKM_EC_KEY_PAIR_GEN, CKM_ECDSA).

A signing key is a data key like a Ki (design §2): made inside the boundary (`ec_generate`) or
imported under a transport KEK (`ec_import`: the key's PKCS#8 PrivateKeyInfo wrapped with AES
key wrap with padding, RFC 5649 — what a PKCS#11 token's C_WrapKey with CKM_AES_KEY_WRAP_PAD
gives for a private key), then referenced by a KeyRef:

    key type  SKDPauth or SKDPpb (SIGNING_KEY_TYPES)
    owner     the key's label, e.g. "smdp" (one label per SM-DP+ identity)

Callers hold the KeyRef and the public key (SubjectPublicKeyInfo DER); `ec_sign` takes a
message and returns r ‖ s, never the key. Every signature is reported to the backend's audit
sink as `key.sign` with the label, key type and message length — never the key.

This module is a mixin of both backends (as hsm_sim.suci_keys): the soft backend seals the
32-octet private scalar like an OPc (hsm_sim.binding, bound to type and label; a
brainpoolP256r1 scalar is sealed after its curve's OID, DER — a bare 32-octet scalar is P-256,
as every key made before brainpool was) and keeps the loaded key in memory for the next
signature; the PKCS#11 backend (hsm_sim.ec_signing_pkcs11) generates the pair in the token as
non-extractable token objects (CKA_EC_PARAMS = the curve's OID) and signs with CKM_ECDSA.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from hsm_sim.errors import BadLength, KeyMismatch, TamperedBlob, WrongKeyType
from hsm_sim.hsm import AuditSink
from hsm_sim.keyref import KeyRef, KeyType

__all__ = ["CURVES", "SIGNATURE_LENGTH", "SIGNING_KEY_TYPES", "EcSigningKeys",
           "SoftEcSigningKeys", "curve_named", "hsm_signer", "public_key_der",
           "wrap_private_key"]

SIGNING_KEY_TYPES = frozenset({KeyType.SK_DPAUTH, KeyType.SK_DPPB})
SIGNATURE_LENGTH = 64  # r ‖ s on a 256-bit curve
_SCALAR = 32
_CACHE_MAX = 64  # loaded keys per HSM: an SM-DP+ signs with two per CI (more while rotating)
# The curves of SGP.22 §2.6.7: name -> (cryptography class, namedCurve OID)
CURVES: dict[str, tuple[type[ec.EllipticCurve], str]] = {
    "secp256r1": (ec.SECP256R1, "1.2.840.10045.3.1.7"),
    "brainpoolP256r1": (ec.BrainpoolP256R1, "1.3.36.3.3.2.8.1.1.7"),
}
# DER of the brainpoolP256r1 OID: the prefix of a sealed brainpool scalar (module docstring)
_BRAINPOOL_SEAL_PREFIX = bytes.fromhex("06092b2403030208010107")


def curve_named(curve: str) -> ec.EllipticCurve:
    """secp256r1 or brainpoolP256r1 (WrongKeyType for any other curve, named)."""
    if curve not in CURVES:
        raise WrongKeyType(f"curve {curve!r} is not secp256r1 or brainpoolP256r1 "
                           "(SGP.22 §2.6.7)")
    return CURVES[curve][0]()


def public_key_der(key: ec.EllipticCurvePublicKey) -> bytes:
    """SubjectPublicKeyInfo DER of a public key (RFC 5480)."""
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _sgp22_public(data: bytes, what: str) -> ec.EllipticCurvePublicKey:
    """A P-256 or brainpoolP256r1 public key from SubjectPublicKeyInfo DER (or a PEM
    certificate / key)."""
    from cryptography import x509

    try:
        if data.lstrip().startswith(b"-----BEGIN CERTIFICATE"):
            key: Any = x509.load_pem_x509_certificate(data).public_key()
        elif data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
        elif data[:1] == b"\x30" and len(data) > 200:
            key = x509.load_der_x509_certificate(data).public_key()
        else:
            key = serialization.load_der_public_key(data)
    except ValueError:
        raise BadLength(f"{what}: not a public key or certificate") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in CURVES:
        raise WrongKeyType(f"{what}: not a NIST P-256 or brainpoolP256r1 public key "
                           "(SGP.22 §2.6.7)")
    return key


def wrap_private_key(key: ec.EllipticCurvePrivateKey, transport_key: bytes) -> bytes:
    """What `ec_import` takes: PKCS#8 PrivateKeyInfo under `transport_key` (RFC 5649). For an
    operator (or a test) preparing an import; the HSM never calls it."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return keywrap.aes_key_wrap_with_padding(transport_key, der)


def _check_type(ref: KeyRef, backend: str) -> None:
    if ref.backend != backend:
        raise WrongKeyType(f"{ref!r} belongs to the {ref.backend} backend")
    if ref.key_type not in SIGNING_KEY_TYPES:
        raise WrongKeyType(f"expected a signing key (SKDPauth or SKDPpb), got "
                           f"{ref.key_type.value}")


def _signing_type(key_type: KeyType) -> KeyType:
    key_type = KeyType(key_type)
    if key_type not in SIGNING_KEY_TYPES:
        raise WrongKeyType(f"signing keys are SKDPauth or SKDPpb, not {key_type.value}")
    return key_type


def _verify_pair(sign: Any, public: ec.EllipticCurvePublicKey, what: str) -> None:
    """Sign a random challenge with the new private key and verify it with `public`: refuses
    an import whose certificate (or public key) belongs to another key."""
    challenge = os.urandom(32)
    rs = sign(challenge)
    der = utils.encode_dss_signature(int.from_bytes(rs[:_SCALAR], "big"),
                                     int.from_bytes(rs[_SCALAR:], "big"))
    from cryptography.exceptions import InvalidSignature

    try:
        public.verify(der, challenge, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise KeyMismatch(f"{what}: the private key does not belong to the public key given"
                          ) from None


class EcSigningKeys:
    """Signing-key operations of an HSM backend (mixed into SoftHsm and Pkcs11Hsm)."""

    backend: str
    _audit: AuditSink

    # --- hooks a backend provides ------------------------------------------------------------

    def _ec_new(self, owner: str, key_type: KeyType, curve: ec.EllipticCurve
                ) -> tuple[KeyRef, ec.EllipticCurvePublicKey]:
        raise NotImplementedError

    def _ec_unwrap_import(self, owner: str, key_type: KeyType, data: bytes, transport: str,
                          public: ec.EllipticCurvePublicKey | None
                          ) -> tuple[KeyRef, ec.EllipticCurvePublicKey]:
        raise NotImplementedError

    def _ec_import_clear(self, owner: str, key_type: KeyType, key: ec.EllipticCurvePrivateKey
                         ) -> KeyRef:
        raise NotImplementedError

    def _ec_public(self, ref: KeyRef) -> ec.EllipticCurvePublicKey:
        raise NotImplementedError

    def _ec_sign(self, ref: KeyRef, message: bytes) -> bytes:
        raise NotImplementedError

    def _ec_destroy(self, ref: KeyRef) -> None:
        """Remove the key from the token (PKCS#11); nothing to do where the ref is the key."""

    # --- operations ----------------------------------------------------------------------------

    def ec_generate(self, owner: str, key_type: KeyType, curve: str = "secp256r1"
                    ) -> tuple[KeyRef, bytes]:
        """A new key pair on `curve` (secp256r1 or brainpoolP256r1) made inside the boundary
        for label `owner`: its KeyRef and its public key (SubjectPublicKeyInfo DER, for a CSR
        or a certificate)."""
        key_type = _signing_type(key_type)
        KeyRef.check_name("owner", owner)
        ref, public = self._ec_new(owner, key_type, curve_named(curve))
        self._audit.record("key.generate", owner, {"key_type": key_type.value,
                                                   "curve": curve})
        return ref, public_key_der(public)

    def ec_import(self, owner: str, key_type: KeyType, data: bytes, transport: str, *,
                  public_key: bytes | None = None) -> tuple[KeyRef, bytes]:
        """Import an operator's existing key: `data` is its PKCS#8 PrivateKeyInfo wrapped under
        transport KEK `transport` (RFC 5649; `wrap_private_key`). `public_key` (its certificate
        or SubjectPublicKeyInfo) is required by the PKCS#11 backend, which never sees the clear
        key, and checked by both: a signature with the imported key must verify with it
        (KeyMismatch otherwise). Returns the KeyRef and the public key (SPKI DER)."""
        key_type = _signing_type(key_type)
        KeyRef.check_name("owner", owner)
        if not 40 <= len(data) <= 512 or len(data) % 8:
            raise BadLength(f"a wrapped private key is 40 to 512 bytes in 8-byte units, not "
                            f"{len(data)}")
        given = _sgp22_public(public_key, "public_key") if public_key is not None else None
        ref, public = self._ec_unwrap_import(owner, key_type, data, transport, given)
        try:
            _verify_pair(lambda m: self._ec_sign(ref, m), given or public, f"{key_type.value} "
                         f"key {owner}")
        except KeyMismatch:
            self._ec_destroy(ref)
            raise
        self._audit.record("key.import", owner, {"key_type": key_type.value,
                                                 "transport": transport, "format": "pkcs8-kwp"})
        return ref, public_key_der(public)

    def ec_import_pkcs8(self, owner: str, key_type: KeyType, data: bytes, passphrase: bytes, *,
                        public_key: bytes | None = None) -> tuple[KeyRef, bytes]:
        """Import an operator's key as it often comes: a password-encrypted PKCS#8 file
        (EncryptedPrivateKeyInfo, PEM or DER, e.g. `openssl pkcs8 -topk8 -v2 aes-256-cbc`).
        Decrypted in host memory inside this call — unlike `ec_import`, whose key only the
        token ever sees on PKCS#11 — then sealed (soft) or created as a token object (PKCS#11).
        `public_key`, when given, must be the key's (KeyMismatch)."""
        key_type = _signing_type(key_type)
        KeyRef.check_name("owner", owner)
        if not 64 <= len(data) <= 8192:
            raise BadLength(f"an encrypted PKCS#8 key is 64 to 8192 bytes, not {len(data)}")
        try:
            load = (serialization.load_pem_private_key if data.lstrip().startswith(b"-----")
                    else serialization.load_der_private_key)
            key = load(data, passphrase)
        except TypeError:
            raise BadLength("the PKCS#8 key is not encrypted: give it encrypted, or wrapped "
                            "under a transport KEK (ec_import)") from None
        except ValueError:
            raise TamperedBlob(f"the encrypted {key_type.value} key does not decrypt with this "
                               "passphrase (or is not PKCS#8)") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in CURVES:
            raise WrongKeyType(f"the imported {key_type.value} key is not a NIST P-256 or "
                               "brainpoolP256r1 key")
        given = _sgp22_public(public_key, "public_key") if public_key is not None else None
        if given is not None and public_key_der(given) != public_key_der(key.public_key()):
            raise KeyMismatch(f"{key_type.value} key {owner}: the private key does not belong "
                              "to the public key given")
        ref = self._ec_import_clear(owner, key_type, key)
        del key
        self._audit.record("key.import", owner, {"key_type": key_type.value,
                                                 "format": "pkcs8-encrypted"})
        return ref, public_key_der(self._ec_public(ref))

    def ec_public(self, ref: KeyRef) -> bytes:
        """The public key of a signing key (SubjectPublicKeyInfo DER): to check a certificate
        against the key it is meant to certify."""
        _check_type(ref, self.backend)
        return public_key_der(self._ec_public(ref))

    def ec_sign(self, ref: KeyRef, message: bytes) -> bytes:
        """ECDSA with SHA-256 over `message` with the key of `ref`: r ‖ s, 64 bytes (SGP.22
        §2.6.7). Audited as `key.sign` (label, key type, message length)."""
        _check_type(ref, self.backend)
        rs = self._ec_sign(ref, bytes(message))
        if len(rs) != SIGNATURE_LENGTH:
            raise BadLength(f"the token returned a {len(rs)}-byte signature, not r ‖ s")
        self._audit.record("key.sign", ref.owner, {"key_type": ref.key_type.value,
                                                   "length": len(message)})
        return rs

    def ec_destroy(self, ref: KeyRef) -> None:
        """Retire a signing key: the PKCS#11 backend deletes its token objects; the soft
        backend's key is its (wrapped) ref, which the caller forgets. Audited."""
        _check_type(ref, self.backend)
        self._ec_destroy(ref)
        self._audit.record("key.destroy", ref.owner, {"key_type": ref.key_type.value})


def hsm_signer(hsm: Any, ref: KeyRef) -> Any:
    """A Signer (esim.sgp22.signatures: message → r ‖ s) over the HSM key of `ref`."""
    _check_type(ref, hsm.backend)
    sign = hsm.ec_sign

    def signer(message: bytes) -> bytes:
        return bytes(sign(ref, message))

    return signer


class SoftEcSigningKeys(EcSigningKeys):
    """The soft backend's hooks: the scalar sealed by hsm_sim.binding under the storage KEK."""

    def _ec_loaded(self, ref: KeyRef) -> ec.EllipticCurvePrivateKey:
        hsm: Any = self
        hsm._require_master()  # a loaded key must not outlive `close`
        cache: dict[KeyRef, ec.EllipticCurvePrivateKey] | None = getattr(self, "_ec_cache", None)
        if cache is None:
            cache = {}
            self._ec_cache = cache
            self._ec_lock = threading.Lock()
        key = cache.get(ref)
        if key is None:
            sealed: bytes = hsm._unwrap(ref, ref.key_type)
            curve: ec.EllipticCurve = ec.SECP256R1()
            if sealed.startswith(_BRAINPOOL_SEAL_PREFIX):
                sealed, curve = sealed[len(_BRAINPOOL_SEAL_PREFIX):], ec.BrainpoolP256R1()
            if len(sealed) != _SCALAR:
                raise TamperedBlob(f"{ref.key_type.value} key {ref.owner} is not a "
                                   f"{curve.name} scalar")
            key = ec.derive_private_key(int.from_bytes(sealed, "big"), curve)
            with self._ec_lock:
                if len(cache) >= _CACHE_MAX:
                    cache.clear()
                cache[ref] = key
        return key

    def _ec_seal(self, owner: str, key_type: KeyType, key: ec.EllipticCurvePrivateKey) -> KeyRef:
        hsm: Any = self
        scalar = key.private_numbers().private_value.to_bytes(_SCALAR, "big")
        if key.curve.name == "brainpoolP256r1":
            scalar = _BRAINPOOL_SEAL_PREFIX + scalar
        elif key.curve.name != "secp256r1":
            raise WrongKeyType(f"a {key.curve.name} key cannot be sealed (SGP.22 §2.6.7)")
        ref: KeyRef = hsm._wrap(owner, key_type, scalar)
        return ref

    def _ec_import_clear(self, owner: str, key_type: KeyType, key: ec.EllipticCurvePrivateKey
                         ) -> KeyRef:
        return self._ec_seal(owner, key_type, key)

    def _ec_new(self, owner: str, key_type: KeyType, curve: ec.EllipticCurve
                ) -> tuple[KeyRef, ec.EllipticCurvePublicKey]:
        hsm: Any = self
        hsm._require_master()
        key = ec.generate_private_key(curve)
        return self._ec_seal(owner, key_type, key), key.public_key()

    def _ec_unwrap_import(self, owner: str, key_type: KeyType, data: bytes, transport: str,
                          public: ec.EllipticCurvePublicKey | None
                          ) -> tuple[KeyRef, ec.EllipticCurvePublicKey]:
        from hsm_sim.hsm import KekPurpose

        hsm: Any = self
        tk = hsm._kek(transport, KekPurpose.TRANSPORT)
        try:
            der = keywrap.aes_key_unwrap_with_padding(tk, data)
        except keywrap.InvalidUnwrap:
            raise TamperedBlob(f"the wrapped {key_type.value} key does not unwrap under "
                               f"transport KEK {transport!r}") from None
        try:
            key = serialization.load_der_private_key(der, None)
        except (ValueError, TypeError):
            raise BadLength(f"the {key_type.value} key unwrapped under {transport!r} is not a "
                            "PKCS#8 PrivateKeyInfo") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in CURVES:
            raise WrongKeyType(f"the imported {key_type.value} key is not a NIST P-256 or "
                               "brainpoolP256r1 key")
        return self._ec_seal(owner, key_type, key), key.public_key()

    def _ec_public(self, ref: KeyRef) -> ec.EllipticCurvePublicKey:
        return self._ec_loaded(ref).public_key()

    def _ec_sign(self, ref: KeyRef, message: bytes) -> bytes:
        der = self._ec_loaded(ref).sign(message, ec.ECDSA(hashes.SHA256()))
        r, s = utils.decode_dss_signature(der)
        return r.to_bytes(_SCALAR, "big") + s.to_bytes(_SCALAR, "big")
