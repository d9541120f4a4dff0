"""SK.DPauth / SK.DPpb in the HSM (hsm_sim.ec_signing) on both backends (SoftHSM2 real): made
inside the boundary, imported under a transport KEK (RFC 6979 A.2.5's P-256 key as the published
vector), r ‖ s signatures that verify, audit records without secrets, refusals."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from esim.sgp22 import signatures
from hsm_sim.ec_signing import hsm_signer, wrap_private_key
from hsm_sim.errors import BadLength, KeyMismatch, TamperedBlob, WrongKeyType
from hsm_sim.hsm import KekPurpose
from hsm_sim.keyref import KeyRef, KeyType
from tests.helpers.hsm import Recorder

# RFC 6979 §A.2.5 (ECDSA, NIST P-256): private key x and public key U = xG.
X = int("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721", 16)
UX = int("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6", 16)
UY = int("7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299", 16)


@pytest.fixture
def made(hsm: Any) -> Iterator[list[KeyRef]]:
    """Refs a test makes, destroyed afterwards (the PKCS#11 ones are token objects)."""
    refs: list[KeyRef] = []
    yield refs
    for ref in refs:
        hsm.ec_destroy(ref)


def _verify(public_der: bytes, message: bytes, rs: bytes) -> None:
    key = serialization.load_der_public_key(public_der)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    der = utils.encode_dss_signature(int.from_bytes(rs[:32], "big"), int.from_bytes(rs[32:], "big"))
    key.verify(der, message, ec.ECDSA(hashes.SHA256()))


def _transport(hsm: Any) -> tuple[str, bytes]:
    name, key = f"dp-t-{os.urandom(4).hex()}", os.urandom(32)
    hsm.kek_add(name, KekPurpose.TRANSPORT, [key])
    return name, key


@pytest.mark.parametrize("key_type", [KeyType.SK_DPAUTH, KeyType.SK_DPPB])
def test_generated_key_signs_r_s_that_verify(hsm: Any, made: list[KeyRef],
                                             key_type: KeyType) -> None:
    ref, public = hsm.ec_generate("smdp-test", key_type)
    made.append(ref)
    assert (ref.key_type, ref.owner) == (key_type, "smdp-test")
    assert hsm.ec_public(ref) == public
    for message in (b"", b"serverSigned1" * 10):
        rs = hsm.ec_sign(ref, message)
        assert len(rs) == 64
        _verify(public, message, rs)
    # a Signer for esim.sgp22: the 5F37 object verifies with the public key
    key = serialization.load_der_public_key(public)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    tlv = signatures.sign(hsm_signer(hsm, ref), b"smdpSigned2", "smdpSignature2")
    signatures.verify(key, b"smdpSigned2", tlv, "smdpSignature2")
    # the ref survives its token round trip and names no key material
    again = KeyRef.from_token(ref.to_token())
    _verify(public, b"x", hsm.ec_sign(again, b"x"))


def test_two_keys_are_two_keys(hsm: Any, made: list[KeyRef]) -> None:
    a, pa = hsm.ec_generate("smdp-test", KeyType.SK_DPAUTH)
    b, pb = hsm.ec_generate("smdp-test", KeyType.SK_DPPB)
    made += [a, b]
    assert pa != pb
    with pytest.raises(InvalidSignature):
        _verify(pa, b"m", hsm.ec_sign(b, b"m"))


def test_import_published_key_under_transport_kek(hsm: Any, made: list[KeyRef]) -> None:
    name, tk = _transport(hsm)
    key = ec.derive_private_key(X, ec.SECP256R1())
    public = key.public_key()
    assert (public.public_numbers().x, public.public_numbers().y) == (UX, UY)
    cert_key = public.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    ref, spki = hsm.ec_import("smdp-test", KeyType.SK_DPPB, wrap_private_key(key, tk), name,
                              public_key=cert_key)
    made.append(ref)
    assert spki == cert_key == hsm.ec_public(ref)
    _verify(cert_key, b"sample", hsm.ec_sign(ref, b"sample"))
    # the clear scalar is nowhere in the ref
    assert X.to_bytes(32, "big") not in ref.blob and f"{X:x}" not in ref.to_token().lower()


def test_import_refuses_wrong_public_key_and_wrong_transport(hsm: Any, made: list[KeyRef]
                                                             ) -> None:
    name, tk = _transport(hsm)
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(KeyMismatch):
        hsm.ec_import("smdp-test", KeyType.SK_DPAUTH, wrap_private_key(key, tk), name,
                      public_key=other)
    with pytest.raises(TamperedBlob):
        hsm.ec_import("smdp-test", KeyType.SK_DPAUTH, wrap_private_key(key, os.urandom(32)),
                      name, public_key=other)
    with pytest.raises(BadLength):
        hsm.ec_import("smdp-test", KeyType.SK_DPAUTH, b"\x00" * 7, name, public_key=other)
    with pytest.raises(WrongKeyType):
        hsm.ec_import("smdp-test", KeyType.KI, wrap_private_key(key, tk), name)
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises((WrongKeyType, TamperedBlob, KeyMismatch)):
        hsm.ec_import("smdp-test", KeyType.SK_DPAUTH, wrap_private_key(p384, tk), name,
                      public_key=other)


def test_wrong_types_refused(hsm: Any, made: list[KeyRef]) -> None:
    with pytest.raises(WrongKeyType):
        hsm.ec_generate("smdp-test", KeyType.OPC)
    ki = hsm.generate("8949000000000000001", KeyType.KI)
    with pytest.raises(WrongKeyType):
        hsm.ec_sign(ki, b"m")
    ref, _ = hsm.ec_generate("smdp-test", KeyType.SK_DPAUTH)
    made.append(ref)
    # the same blob presented as the other role, or under another label, does not sign
    for forged in (KeyRef(ref.backend, KeyType.SK_DPPB, ref.owner, ref.kek, ref.blob),
                   KeyRef(ref.backend, ref.key_type, "other", ref.kek, ref.blob)):
        with pytest.raises(Exception) as info:
            hsm.ec_sign(forged, b"m")
        assert "TamperedBlob" in type(info.value).__name__ or "NoSuchKey" in type(
            info.value).__name__


def test_signatures_audited_without_secrets(hsm: Any, made: list[KeyRef]) -> None:
    recorder = Recorder()
    saved, hsm._audit = hsm._audit, recorder
    try:
        ref, _ = hsm.ec_generate("smdp-audit", KeyType.SK_DPAUTH)
        made.append(ref)
        hsm.ec_sign(ref, b"\x01" * 40)
    finally:
        hsm._audit = saved
    actions = [(a, s, d) for a, s, d in recorder.records]
    assert ("key.sign", "smdp-audit", {"key_type": "SKDPauth", "length": 40}) in actions
    assert ("key.generate", "smdp-audit", {"key_type": "SKDPauth", "curve": "secp256r1"}) \
        in actions
    text = repr(actions).lower()
    assert ref.blob.hex() not in text


def test_import_password_encrypted_pkcs8(hsm: Any, made: list[KeyRef]) -> None:
    key = ec.derive_private_key(X, ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(b"operator passphrase"))
    ref, spki = hsm.ec_import_pkcs8("smdp-test", KeyType.SK_DPAUTH, pem, b"operator passphrase")
    made.append(ref)
    assert serialization.load_der_public_key(spki).public_numbers() == key.public_key() \
        .public_numbers()  # type: ignore[union-attr]
    _verify(spki, b"sample", hsm.ec_sign(ref, b"sample"))
    with pytest.raises(TamperedBlob):
        hsm.ec_import_pkcs8("smdp-test", KeyType.SK_DPAUTH, pem, b"wrong")
    clear = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    with pytest.raises(BadLength):
        hsm.ec_import_pkcs8("smdp-test", KeyType.SK_DPAUTH, clear, b"x")
    other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(KeyMismatch):
        hsm.ec_import_pkcs8("smdp-test", KeyType.SK_DPAUTH, pem, b"operator passphrase",
                            public_key=other)


# brainpoolP256r1 (SGP.22 §2.6.7): RFC 7027 §A.1's private key dA and its public key, the
# published vector for the curve (the same key the ECDH vector test in tests/esim uses)
BP_D = int("81DB1EE100150FF2EA338D708271BE38300CB54241D79950F77B063039804F1D", 16)
BP_X = int("44106E913F92BC02A1705D9953A8414DB95E1AAA49E81D9E85F929A8E3100BE5", 16)
BP_Y = int("8AB4846F11CACCB73CE49CBDD120F5A900A69FD32C272223F789EF10EB089BDC", 16)
BRAINPOOL_OID = "1.3.36.3.3.2.8.1.1.7"


def _curve_of(public_der: bytes) -> str:
    key = serialization.load_der_public_key(public_der)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key.curve.name


@pytest.mark.parametrize("key_type", [KeyType.SK_DPAUTH, KeyType.SK_DPPB])
def test_brainpool_key_generated_in_the_boundary(hsm: Any, made: list[KeyRef],
                                                 key_type: KeyType) -> None:
    ref, public = hsm.ec_generate("smdp-bp", key_type, curve="brainpoolP256r1")
    made.append(ref)
    # SubjectPublicKeyInfo names the curve by its OID (RFC 5480), CKA_EC_PARAMS on PKCS#11
    assert _curve_of(public) == "brainpoolP256r1"
    assert bytes.fromhex("06092b2403030208010107") in public
    assert hsm.ec_public(ref) == public
    rs = hsm.ec_sign(ref, b"smdpSigned2")
    assert len(rs) == 64
    _verify(public, b"smdpSigned2", rs)
    again = KeyRef.from_token(ref.to_token())
    _verify(public, b"x", hsm.ec_sign(again, b"x"))
    # a P-256 key of the same label and role stays a P-256 key beside it
    p256, p256_public = hsm.ec_generate("smdp-bp", key_type)
    made.append(p256)
    assert _curve_of(p256_public) == "secp256r1"
    _verify(p256_public, b"y", hsm.ec_sign(p256, b"y"))


def test_brainpool_published_key_imported(hsm: Any, made: list[KeyRef]) -> None:
    name, tk = _transport(hsm)
    key = ec.derive_private_key(BP_D, ec.BrainpoolP256R1())
    numbers = key.public_key().public_numbers()
    assert (numbers.x, numbers.y) == (BP_X, BP_Y)
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    ref, got = hsm.ec_import("smdp-bp", KeyType.SK_DPPB, wrap_private_key(key, tk), name,
                             public_key=spki)
    made.append(ref)
    assert got == spki == hsm.ec_public(ref)
    _verify(spki, b"sample", hsm.ec_sign(ref, b"sample"))
    assert BP_D.to_bytes(32, "big") not in ref.blob


def test_other_curves_refused_by_name(hsm: Any) -> None:
    with pytest.raises(WrongKeyType, match="secp384r1"):
        hsm.ec_generate("smdp-bp", KeyType.SK_DPAUTH, curve="secp384r1")
    p384 = ec.generate_private_key(ec.SECP384R1())
    pem = p384.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(b"pass"))
    with pytest.raises(WrongKeyType, match="brainpoolP256r1"):
        hsm.ec_import_pkcs8("smdp-bp", KeyType.SK_DPAUTH, pem, b"pass")
