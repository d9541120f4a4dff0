"""The PKCS#11 backend's signing-key hooks (hsm_sim.ec_signing): key pairs made in the token.

PKCS#11 v2.40 §2.3: CKM_EC_KEY_PAIR_GEN on secp256r1 or brainpoolP256r1 (CKA_EC_PARAMS =
the namedCurve OID, DER; SGP.22 §2.6.7's two curves) makes the pair as token objects (the
private key CKA_SENSITIVE, not CKA_EXTRACTABLE: it never leaves the token), labelled
`<prefix>:ec:<key type>:<label>` with a random CKA_ID; the KeyRef's blob is that CKA_ID, so a
ref names one object and a relabelled ref finds none. CKM_ECDSA signs the SHA-256 digest
(computed in host memory: a digest is not a secret) and returns r ‖ s as SGP.22 wants it.
An import is C_UnwrapKey with CKM_AES_KEY_WRAP_PAD under the transport KEK straight into a
token private key (the clear key is never in host memory); the public key comes with it (its
certificate), checked by a signature. Tested on SoftHSM2 2.6.1.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import DEFAULT, Attribute, Mechanism, ObjectClass
from pkcs11 import KeyType as P11KeyType
from pkcs11.exceptions import PKCS11Error
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from hsm_sim.ec_signing import CURVES, EcSigningKeys, public_key_der
from hsm_sim.errors import BadLength, HsmError, NoSuchKey, TamperedBlob
from hsm_sim.keyref import KeyRef, KeyType

__all__ = ["TOKEN_KEK", "Pkcs11EcSigningKeys"]

TOKEN_KEK = "token"  # KeyRef.kek of a key that lives in the token (its blob is the CKA_ID)
def _ec_params(curve: ec.EllipticCurve) -> bytes:
    """CKA_EC_PARAMS of a named curve: its OID, DER (PKCS#11 v2.40 §2.3.3, X9.62)."""
    return bytes(encode_named_curve_parameters(CURVES[curve.name][1]))

_ID_LENGTH = 16
# python-pkcs11 puts every capability into an unwrap template; SoftHSM2 refuses these on a
# private key (CKR_ATTRIBUTE_TYPE_INVALID). DEFAULT leaves them out.
_NOT_ON_A_PRIVATE_KEY = {Attribute.VERIFY: DEFAULT, Attribute.ENCRYPT: DEFAULT,
                         Attribute.WRAP: DEFAULT}


class Pkcs11EcSigningKeys(EcSigningKeys):
    """Hooks for hsm_sim.pkcs11.Pkcs11Hsm (its pool, labels and transport KEKs)."""

    def _run(self, fn: Any, *args: Any) -> Any:
        hsm: Any = self
        return hsm._pool.run(hsm._prepare, fn, *args)

    def _ec_label(self, key_type: KeyType, owner: str) -> str:
        hsm: Any = self
        label: str = hsm._label("ec", f"{key_type.value}:{owner}")
        return label

    def _ec_objects(self, ref: KeyRef) -> list[Any]:
        hsm: Any = self
        if ref.kek != TOKEN_KEK or len(ref.blob) != _ID_LENGTH:
            raise TamperedBlob(f"{ref.key_type.value} key {ref.owner}: not a token key reference")
        return list(hsm._s().get_objects({Attribute.LABEL: self._ec_label(ref.key_type,
                                                                          ref.owner),
                                          Attribute.ID: ref.blob}))

    def _ec_private(self, ref: KeyRef) -> Any:
        """The ref's private key object in the current pooled session (found once per
        session and ref; the handle is valid for the session's life)."""
        hsm: Any = self
        entry = hsm._pool.current()
        cache: dict[tuple[int, KeyRef], Any] | None = getattr(self, "_ec_handles", None)
        if cache is None:
            cache = {}
            self._ec_handles = cache
        slot = (id(entry), ref)
        obj = cache.get(slot)
        if obj is None:
            found = [o for o in self._ec_objects(ref)
                     if o[Attribute.CLASS] == ObjectClass.PRIVATE_KEY]
            if len(found) != 1:
                raise NoSuchKey(f"no {ref.key_type.value} key {ref.owner} with this id in the "
                                "token")
            obj = cache[slot] = found[0]
        return obj

    def _ec_new(self, owner: str, key_type: KeyType, curve: ec.EllipticCurve
                ) -> tuple[KeyRef, ec.EllipticCurvePublicKey]:
        return self._run(  # type: ignore[no-any-return]
            self._ec_new_in_session, owner, key_type, curve)

    def _ec_new_in_session(self, owner: str, key_type: KeyType, curve: ec.EllipticCurve
                           ) -> tuple[KeyRef, ec.EllipticCurvePublicKey]:
        hsm: Any = self
        ident = os.urandom(_ID_LENGTH)
        label = self._ec_label(key_type, owner)
        params = hsm._s().create_domain_parameters(
            P11KeyType.EC, {Attribute.EC_PARAMS: _ec_params(curve)}, local=True)
        public, _private = params.generate_keypair(
            store=True, label=label, id=ident,
            public_template={Attribute.VERIFY: True, Attribute.TOKEN: True},
            private_template={Attribute.SIGN: True, Attribute.SENSITIVE: True,
                              Attribute.EXTRACTABLE: False, Attribute.PRIVATE: True,
                              Attribute.TOKEN: True, Attribute.DERIVE: False})
        key = _public_of(public)
        return KeyRef(hsm.backend, key_type, owner, TOKEN_KEK, ident), key

    def _ec_unwrap_import(self, owner: str, key_type: KeyType, data: bytes, transport: str,
                          public: ec.EllipticCurvePublicKey | None
                          ) -> tuple[KeyRef, ec.EllipticCurvePublicKey]:
        if public is None:
            raise BadLength("the pkcs11 backend imports a signing key with its public key (the "
                            "certificate): the token never shows the clear key")
        return self._run(  # type: ignore[no-any-return]
            self._ec_import_in_session, owner, key_type, data, transport, public)

    def _ec_import_in_session(self, owner: str, key_type: KeyType, data: bytes, transport: str,
                              public: ec.EllipticCurvePublicKey
                              ) -> tuple[KeyRef, ec.EllipticCurvePublicKey]:
        from hsm_sim.hsm import KekPurpose

        hsm: Any = self
        tk = hsm._kek(transport, KekPurpose.TRANSPORT)
        if not tk[Attribute.UNWRAP]:
            raise HsmError(f"transport KEK {transport!r} was created without CKA_UNWRAP (before "
                           "signing-key imports); add it again to import keys under it")
        ident = os.urandom(_ID_LENGTH)
        label = self._ec_label(key_type, owner)
        try:
            tk.unwrap_key(ObjectClass.PRIVATE_KEY, P11KeyType.EC, data,
                          mechanism=Mechanism.AES_KEY_WRAP_PAD, label=label, id=ident,
                          store=True,
                          template={Attribute.SIGN: True, Attribute.SENSITIVE: True,
                                    Attribute.EXTRACTABLE: False, Attribute.PRIVATE: True,
                                    Attribute.TOKEN: True, **_NOT_ON_A_PRIVATE_KEY})
        except PKCS11Error:
            raise TamperedBlob(f"the wrapped {key_type.value} key does not unwrap under "
                               f"transport KEK {transport!r} into a {public.curve.name} private "
                               "key") from None
        hsm._s().create_object({
            Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: P11KeyType.EC,
            Attribute.TOKEN: True, Attribute.LABEL: label, Attribute.ID: ident,
            Attribute.VERIFY: True, Attribute.EC_PARAMS: _ec_params(public.curve),
            Attribute.EC_POINT: _ec_point_attribute(public)})
        return KeyRef(hsm.backend, key_type, owner, TOKEN_KEK, ident), public

    def _ec_import_clear(self, owner: str, key_type: KeyType, key: ec.EllipticCurvePrivateKey
                         ) -> KeyRef:
        return self._run(self._ec_create_in_session, owner, key_type, key)  # type: ignore[no-any-return]

    def _ec_create_in_session(self, owner: str, key_type: KeyType,
                              key: ec.EllipticCurvePrivateKey) -> KeyRef:
        hsm: Any = self
        ident = os.urandom(_ID_LENGTH)
        label = self._ec_label(key_type, owner)
        scalar = key.private_numbers().private_value.to_bytes(32, "big")
        hsm._s().create_object({
            Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: P11KeyType.EC,
            Attribute.TOKEN: True, Attribute.LABEL: label, Attribute.ID: ident,
            Attribute.EC_PARAMS: _ec_params(key.curve), Attribute.VALUE: scalar,
            Attribute.SIGN: True,
            Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.PRIVATE: True})
        hsm._s().create_object({
            Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: P11KeyType.EC,
            Attribute.TOKEN: True, Attribute.LABEL: label, Attribute.ID: ident,
            Attribute.VERIFY: True, Attribute.EC_PARAMS: _ec_params(key.curve),
            Attribute.EC_POINT: _ec_point_attribute(key.public_key())})
        return KeyRef(hsm.backend, key_type, owner, TOKEN_KEK, ident)

    def _ec_public(self, ref: KeyRef) -> ec.EllipticCurvePublicKey:
        return self._run(self._ec_public_in_session, ref)  # type: ignore[no-any-return]

    def _ec_public_in_session(self, ref: KeyRef) -> ec.EllipticCurvePublicKey:
        found = [o for o in self._ec_objects(ref) if o[Attribute.CLASS] == ObjectClass.PUBLIC_KEY]
        if len(found) != 1:
            raise NoSuchKey(f"no {ref.key_type.value} public key {ref.owner} with this id in the "
                            "token")
        return _public_of(found[0])

    def _ec_sign(self, ref: KeyRef, message: bytes) -> bytes:
        return self._run(self._ec_sign_in_session, ref, message)  # type: ignore[no-any-return]

    def _ec_sign_in_session(self, ref: KeyRef, message: bytes) -> bytes:
        import hashlib

        digest = hashlib.sha256(message).digest()
        return bytes(self._ec_private(ref).sign(digest, mechanism=Mechanism.ECDSA))

    def _ec_destroy(self, ref: KeyRef) -> None:
        self._run(self._ec_destroy_in_session, ref)

    def _ec_destroy_in_session(self, ref: KeyRef) -> None:
        cache: dict[tuple[int, KeyRef], Any] = getattr(self, "_ec_handles", {})
        for slot in [s for s in cache if s[1] == ref]:
            del cache[slot]
        for obj in self._ec_objects(ref):
            obj.destroy()


def _ec_point_attribute(public: ec.EllipticCurvePublicKey) -> bytes:
    """CKA_EC_POINT: the uncompressed point as a DER OCTET STRING (PKCS#11 v2.40 §2.3.3)."""
    from cryptography.hazmat.primitives import serialization

    point = public.public_bytes(serialization.Encoding.X962,
                                serialization.PublicFormat.UncompressedPoint)
    return b"\x04" + bytes([len(point)]) + point


def _public_of(obj: Any) -> ec.EllipticCurvePublicKey:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_der_public_key(encode_ec_public_key(obj))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    public_key_der(key)
    return key
