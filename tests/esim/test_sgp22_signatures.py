"""SGP.22 §5.6 / §5.7 signatures (esim.sgp22.signatures): every signature of the recorded
session verifies over exactly the received bytes; tampered bytes or signatures are refused."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from esim.sgp22 import signatures as sig
from esim.sgp22.errors import SignatureError
from esim.sgp22.tlv import children, read_tlv
from tests.esim.sgp22_vectors import cert_pem, field, h, segments, session


def _cert(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert_pem(name))


def _key(name: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(cert_pem(name), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


EUICC = "CERT_EUICC_ECDSA_NIST.pem"
DPAUTH = "CERT_S_SM_DPauth_ECDSA_NIST.pem"
DPPB = "CERT_S_SM_DPpb_ECDSA_NIST.pem"


def _recorded() -> dict[str, tuple[str, bytes, bytes]]:
    """name -> (signer certificate, signed input, 5F37 signature) from the recorded session."""
    server_signed1 = field("InitiateAuthentication", "response.serverSigned1")
    server_signature1 = field("InitiateAuthentication", "response.serverSignature1")
    asr = sig.authenticate_server_response_parts(
        field("AuthenticateClient", "request.authenticateServerResponse"))
    smdp_signed2 = field("AuthenticateClient", "response.smdpSigned2")
    smdp_signature2 = field("AuthenticateClient", "response.smdpSignature2")
    pdr = sig.prepare_download_response_parts(
        field("GetBoundProfilePackage", "request.prepareDownloadResponse"))
    pir = sig.profile_installation_result_parts(
        field("HandleNotification", "request.pendingNotification"))
    isc = h(segments()["initialiseSecureChannelRequest_BF23"])
    parts = children(isc, read_tlv(isc))
    isc_objects = b"".join(p.raw(isc) for p in parts[:-1])
    otpk = h(session()["ephemeral_keys"]["otPK.EUICC.ECKA"])
    return {
        "serverSignature1": (DPAUTH, sig.server_signature1_input(server_signed1),
                             server_signature1),
        "euiccSignature1": (EUICC, sig.euicc_signature1_input(asr.signed), asr.signature_tlv),
        "smdpSignature2": (DPPB, sig.smdp_signature2_input(smdp_signed2, asr.signature_tlv),
                           smdp_signature2),
        "euiccSignature2": (EUICC, sig.euicc_signature2_input(pdr.signed, smdp_signature2),
                            pdr.signature_tlv),
        "smdpSign": (DPPB, sig.isc_signature_input(isc_objects, otpk), parts[-1].raw(isc)),
        "euiccSignPIR": (EUICC, pir.signed, pir.signature_tlv),
    }


@pytest.mark.parametrize("name", list(_recorded()))
def test_recorded_signature_verifies(name: str) -> None:
    signer, message, signature = _recorded()[name]
    sig.verify(_cert(signer), message, signature, name)


@pytest.mark.parametrize("name", list(_recorded()))
def test_recorded_signature_refused_over_tampered_bytes(name: str) -> None:
    signer, message, signature = _recorded()[name]
    for position in (0, len(message) // 2, len(message) - 1):
        tampered = bytearray(message)
        tampered[position] ^= 0x40
        with pytest.raises(SignatureError) as info:
            sig.verify(_cert(signer), bytes(tampered), signature, name)
        assert (info.value.signature, info.value.reason) == (name, "mismatch")


@pytest.mark.parametrize("name", list(_recorded()))
def test_tampered_signature_is_refused(name: str) -> None:
    signer, message, signature = _recorded()[name]
    bad = bytearray(signature)
    bad[10] ^= 0x01
    with pytest.raises(SignatureError, match=name):
        sig.verify(_cert(signer), message, bytes(bad), name)
    # signed by somebody else
    other = EUICC if signer != EUICC else DPAUTH
    with pytest.raises(SignatureError) as info:
        sig.verify(_cert(other), message, signature, name)
    assert info.value.reason == "mismatch"


@pytest.mark.parametrize("bad", [b"", bytes(67), b"\x5f\x37\x40" + bytes(63),
                                 b"\x5f\x37\x41" + bytes(65), b"\x30\x44" + bytes(68)])
def test_malformed_signature_objects(bad: bytes) -> None:
    _, message, _ = _recorded()["serverSignature1"]
    with pytest.raises(SignatureError) as info:
        sig.verify(_cert(DPAUTH), message, bad, "serverSignature1")
    assert info.value.reason == "malformed"


def test_signing_with_the_recorded_keys_round_trips() -> None:
    for key_file, cert_file in [("SK_S_SM_DPauth_ECDSA_NIST.pem", DPAUTH),
                                ("SK_S_SM_DPpb_ECDSA_NIST.pem", DPPB),
                                ("SK_EUICC_ECDSA_NIST.pem", EUICC)]:
        signer = sig.software_signer(_key(key_file))
        message = field("InitiateAuthentication", "response.serverSigned1")
        signature = sig.sign(signer, message, "x")
        assert signature[:3] == b"\x5f\x37\x40" and len(signature) == 67
        sig.verify(_cert(cert_file), message, signature, "x")


def test_a_signer_returning_der_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives import hashes
    with pytest.raises(SignatureError, match="r ‖ s"):
        sig.sign(lambda m: key.sign(m, ec.ECDSA(hashes.SHA256())), b"m", "serverSignature1")


def test_signed_parts_need_the_right_structure() -> None:
    with pytest.raises(SignatureError, match="authenticateResponseOk"):
        sig.authenticate_server_response_parts(
            field("GetBoundProfilePackage", "request.prepareDownloadResponse"))
    with pytest.raises(SignatureError, match="downloadResponseOk"):
        sig.prepare_download_response_parts(
            field("AuthenticateClient", "request.authenticateServerResponse"))
    with pytest.raises(SignatureError, match="ProfileInstallationResult"):
        sig.profile_installation_result_parts(
            field("InitiateAuthentication", "response.serverSigned1"))


@settings(max_examples=25, deadline=None)
@given(message=st.binary(max_size=300))
def test_sign_verify_with_random_keys(message: bytes) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signature = sig.sign(sig.software_signer(key), message, "euiccSignature2")
    sig.verify(key.public_key(), message, signature, "euiccSignature2")
    with pytest.raises(SignatureError):
        sig.verify(key.public_key(), message + b"\x00", signature, "euiccSignature2")
