"""The PKCS#11 backend's SUCI hooks (hsm_sim.suci_keys): ECDH in the token.

Tested on SoftHSM2 2.6.1, whose mechanism list has CKM_EC_KEY_PAIR_GEN and CKM_ECDH1_DERIVE for
secp256r1 (Profile B) and, for X25519 (Profile A), takes a CKK_EC_EDWARDS key with the curve25519
OID (1.3.101.110) in CKM_ECDH1_DERIVE; it has no CKM_EC_MONTGOMERY_KEY_PAIR_GEN and only CKD_NULL
as the derivation's KDF, and refuses C_WrapKey/C_UnwrapKey of such private keys. Hence:

- storage: the 32-octet private key sealed by the token like an OPc (02 || N || AES-GCM under the
  storage KEK's v2 key, owner and type as associated data; docs/hsm.md "Blob format");
- de-concealment: the sealed value opened by the token into a sensitive, non-extractable session
  private key (CKK_EC with secp256r1 parameters, or CKK_EC_EDWARDS with the X25519 OID), kept
  in that pooled session for the next SUCI; CKM_ECDH1_DERIVE (CKD_NULL) gives Z as a session
  secret read back; the X9.63 KDF, AES-CTR and HMAC of TS 33.501 C.3 run in host memory (Z is
  per SUCI; the token has no X9.63 KDF with 64 output octets here).

Limit (docs/suci.md): the private key passes through host memory when a session first loads it,
on import (decrypted under the transport KEK) and on export, as OPc does in this backend.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pkcs11 import KDF, Attribute, Mechanism, ObjectClass
from pkcs11 import KeyType as P11KeyType
from pkcs11.exceptions import PKCS11Error
from pkcs11.util.ec import encode_named_curve_parameters

from hsm_sim.ecies import MalformedSchemeOutput, ProtectionScheme
from hsm_sim.eki import EkiScheme
from hsm_sim.keyref import KeyRef, KeyType
from hsm_sim.suci_keys import SCHEMES, SuciKeys

__all__ = ["Pkcs11SuciKeys"]

_X25519_OID = bytes.fromhex("06032b656e")  # DER OBJECT IDENTIFIER 1.3.101.110 (RFC 8410)
_P256_PARAMS = encode_named_curve_parameters("secp256r1")
_Z = {Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True}


class Pkcs11SuciKeys(SuciKeys):
    """Hooks for hsm_sim.pkcs11.Pkcs11Hsm (its pool, sealed values and transport KEKs)."""

    def _run(self, fn: Any, *args: Any) -> Any:
        hsm: Any = self
        return hsm._pool.run(hsm._prepare, fn, *args)

    def _suci_seal(self, owner: str, key_type: KeyType, private: bytes) -> KeyRef:
        hsm: Any = self
        ref: KeyRef = self._run(hsm._wrap_value, owner, key_type, private)
        return ref

    def _suci_open(self, ref: KeyRef) -> bytes:
        hsm: Any = self
        value: bytes = self._run(hsm._read, ref, ref.key_type)
        return value

    def _suci_transport(self, transport: str, scheme: EkiScheme, data: bytes) -> bytes:
        hsm: Any = self
        value: bytes = self._run(hsm._decrypt, transport, scheme, data)
        return value

    def _suci_shared(self, ref: KeyRef, ephemeral: bytes) -> bytes:
        return bytes(self._run(self._token_ecdh, ref, ephemeral))

    def _session_private(self, ref: KeyRef) -> Any:
        """The ref's private key as a session object of the current pooled session."""
        hsm: Any = self
        entry = hsm._pool.current()
        objects: dict[tuple[int, KeyRef], Any] | None = getattr(self, "_suci_objects", None)
        if objects is None:
            objects = {}
            self._suci_objects = objects
        slot = (id(entry), ref)  # the whole ref: a relabelled blob is opened (and refused)
        obj = objects.get(slot)
        if obj is None:
            value = hsm._read(ref, ref.key_type)  # the token opens the sealed value
            if SCHEMES[ref.key_type] is ProtectionScheme.PROFILE_A:
                p11_type, params = P11KeyType.EC_EDWARDS, _X25519_OID
            else:
                p11_type, params = P11KeyType.EC, _P256_PARAMS
            obj = hsm._s().create_object({
                Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: p11_type,
                Attribute.EC_PARAMS: params, Attribute.VALUE: value, Attribute.DERIVE: True,
                Attribute.TOKEN: False, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                Attribute.PRIVATE: True,
            })
            objects[slot] = obj
        return obj

    def _token_ecdh(self, ref: KeyRef, ephemeral: bytes) -> bytes:
        scheme = SCHEMES[ref.key_type]
        bad = MalformedSchemeOutput(
            f"{scheme.label}: the ephemeral public key (octets 0-{len(ephemeral) - 1} of the "
            "scheme output) is not a valid "
            + ("X25519 public key (low-order point)" if scheme is ProtectionScheme.PROFILE_A
               else "compressed secp256r1 point"))
        if scheme is ProtectionScheme.PROFILE_B:
            if ephemeral[:1] not in (b"\x02", b"\x03"):
                raise bad
            try:  # the token takes the uncompressed form; this also checks the point
                point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ephemeral)
            except ValueError:
                raise bad from None
            peer = point.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        else:
            peer = ephemeral
        try:
            z = self._session_private(ref).derive_key(
                P11KeyType.GENERIC_SECRET, 256, mechanism=Mechanism.ECDH1_DERIVE,
                mechanism_param=(KDF.NULL, None, peer), store=False, template=_Z)
        except PKCS11Error:
            raise bad from None
        try:
            shared = bytes(z[Attribute.VALUE])
        finally:
            z.destroy()
        if shared == bytes(len(shared)):  # X25519 with a low-order point (RFC 7748 §6.1)
            raise bad
        return shared
