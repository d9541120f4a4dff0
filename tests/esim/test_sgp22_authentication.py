"""SGP.22 common mutual authentication and download preparation (esim.sgp22.authentication):
the recorded eUICC messages pass the SM-DP+ checks and the recorded SM-DP+ messages pass the
eUICC's; simsmith's own messages reproduce the recorded ones (signatures aside); every tampered
element is refused by name."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from esim.sgp22 import authentication as auth
from esim.sgp22 import schema
from esim.sgp22 import signatures as sig
from esim.sgp22.certificates import TrustedCis
from esim.sgp22.errors import AuthenticationError, CertificateError, SignatureError
from esim.sgp22.tlv import encode_tlv
from tests.esim.sgp22_vectors import cert_pem, field, h, session

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _cert(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert_pem(name))


def _key(name: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(cert_pem(name), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _cis() -> TrustedCis:
    return TrustedCis([_cert("CERT_CI_ECDSA_NIST.pem")])


def _tid() -> bytes:
    return h(session()["transactionId"])


def _asr() -> bytes:
    return field("AuthenticateClient", "request.authenticateServerResponse")


def _check_asr(der: bytes | None = None, **overrides: Any) -> auth.AuthenticatedEuicc:
    args: dict[str, Any] = dict(cis=_cis(), transaction_id=_tid(),
                                server_address=session()["smdp_address"],
                                server_challenge=h(session()["serverChallenge"]), now=NOW)
    args.update(overrides)
    return auth.check_authenticate_server_response(der or _asr(), **args)


def _flip(der: bytes, needle: bytes, delta: int = 0) -> bytes:
    out = bytearray(der)
    out[der.index(needle) + delta] ^= 0x01
    return bytes(out)


# SM-DP+ side ------------------------------------------------------------------------------

def test_server_signed1_reproduced_byte_exact() -> None:
    s = session()
    assert auth.server_signed1(
        transaction_id=_tid(), euicc_challenge=h(s["euiccChallenge"]),
        server_address=s["smdp_address"], server_challenge=h(s["serverChallenge"]),
    ) == field("InitiateAuthentication", "response.serverSigned1")


def test_smdp_signed2_reproduced_byte_exact() -> None:
    assert auth.smdp_signed2(transaction_id=_tid(), cc_required=False) == field(
        "AuthenticateClient", "response.smdpSigned2")


def test_recorded_authenticate_server_response_is_accepted() -> None:
    euicc = _check_asr(ci_key_id=bytes.fromhex("c528f01fcb51330014799f97493782829e1e55f5"))
    assert euicc.eid == session()["eid"]
    assert euicc.matching_id == session()["matchingId"]
    assert euicc.device_info["tac"] == bytes.fromhex("35230145")
    assert euicc.euicc_info2["svn"] == b"\x02\x04\x00"
    # smdpSignature2 of the session covers smdpSigned2 ‖ this euiccSignature1
    sig.verify(_cert("CERT_S_SM_DPpb_ECDSA_NIST.pem"),
               sig.smdp_signature2_input(field("AuthenticateClient", "response.smdpSigned2"),
                                         euicc.euicc_signature1),
               field("AuthenticateClient", "response.smdpSignature2"), "smdpSignature2")


@pytest.mark.parametrize(("overrides", "check"), [
    ({"transaction_id": bytes(16)}, "euiccSigned1.transactionId"),
    ({"server_address": "smdp.simsmith.test"}, "euiccSigned1.serverAddress"),
    ({"server_challenge": bytes(16)}, "euiccSigned1.serverChallenge"),
])
def test_session_mismatches_are_refused(overrides: dict[str, Any], check: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        _check_asr(**overrides)
    assert (info.value.check, info.value.reason) == (check, "mismatch")


def test_tampered_euicc_signed1_fails_euicc_signature1() -> None:
    # a byte of the TAC inside euiccSigned1's deviceInfo: still decodes, signature breaks
    with pytest.raises(SignatureError) as info:
        _check_asr(_flip(_asr(), bytes.fromhex("800435230145"), 3))
    assert (info.value.signature, info.value.reason) == ("euiccSignature1", "mismatch")
    with pytest.raises(SignatureError):
        _check_asr(_flip(_asr(), b"\x5f\x37\x40", 10))


def test_untrusted_ci_expired_or_foreign_certificate_is_refused() -> None:
    from tests.esim import sgp22_pki as pki
    with pytest.raises(CertificateError) as info:
        _check_asr(cis=TrustedCis([pki.ci().cert]))
    assert (info.value.certificate, info.value.reason) == ("CERT.EUM.ECDSA", "unknown-ci")
    with pytest.raises(CertificateError) as info:
        _check_asr(ci_key_id=bytes(20))
    assert info.value.reason == "unknown-ci"
    with pytest.raises(CertificateError) as info:
        _check_asr(now=datetime(2055, 1, 1, tzinfo=UTC))
    assert info.value.reason == "expired"


def test_authenticate_response_error_and_garbage() -> None:
    error = schema.encode("AuthenticateServerResponse", (
        "authenticateResponseError", {"transactionId": _tid(), "authenticateErrorCode": 2}))
    with pytest.raises(AuthenticationError) as info:
        _check_asr(error)
    assert info.value.check == "authenticateResponseError"
    with pytest.raises(AuthenticationError) as info:
        _check_asr(b"\xbf\x38\x01")
    assert info.value.reason == "malformed"


def test_recorded_prepare_download_response_is_accepted() -> None:
    euicc = _check_asr()
    prepared = auth.check_prepare_download_response(
        field("GetBoundProfilePackage", "request.prepareDownloadResponse"),
        euicc=euicc.identity, transaction_id=_tid(),
        smdp_signature2=field("AuthenticateClient", "response.smdpSignature2"))
    assert prepared.otpk_euicc == h(session()["ephemeral_keys"]["otPK.EUICC.ECKA"])
    assert prepared.hash_cc is None


def test_prepare_download_response_refusals() -> None:
    euicc = _check_asr().identity
    pdr = field("GetBoundProfilePackage", "request.prepareDownloadResponse")
    smdp_signature2 = field("AuthenticateClient", "response.smdpSignature2")
    with pytest.raises(AuthenticationError) as info:
        auth.check_prepare_download_response(pdr, euicc=euicc, transaction_id=bytes(16),
                                             smdp_signature2=smdp_signature2)
    assert info.value.check == "euiccSigned2.transactionId"
    with pytest.raises(SignatureError) as sig_info:  # otPK.EUICC changed in transit
        auth.check_prepare_download_response(_flip(pdr, b"\x5f\x49\x41", 20), euicc=euicc,
                                             transaction_id=_tid(),
                                             smdp_signature2=smdp_signature2)
    assert sig_info.value.signature == "euiccSignature2"
    with pytest.raises(SignatureError):  # signed over another smdpSignature2
        auth.check_prepare_download_response(pdr, euicc=euicc, transaction_id=_tid(),
                                             smdp_signature2=_flip(smdp_signature2,
                                                                   b"\x5f\x37", 9))
    error = schema.encode("PrepareDownloadResponse", (
        "downloadResponseError", {"transactionId": _tid(), "downloadErrorCode": 2}))
    with pytest.raises(AuthenticationError) as info:
        auth.check_prepare_download_response(error, euicc=euicc, transaction_id=_tid(),
                                             smdp_signature2=smdp_signature2)
    assert info.value.check == "downloadResponseError"


# eUICC side -------------------------------------------------------------------------------

def _credentials() -> auth.EuiccCredentials:
    return auth.EuiccCredentials(signer=sig.software_signer(_key("SK_EUICC_ECDSA_NIST.pem")),
                                 certificate=_cert("CERT_EUICC_ECDSA_NIST.pem"),
                                 eum_certificate=_cert("CERT_EUM_ECDSA_NIST.pem"), cis=_cis())


def _recorded_signed1() -> dict[str, Any]:
    return schema.decode("AuthenticateServerResponse", _asr())[1]["euiccSigned1"]


def _authenticate_server_request(**replace: bytes) -> bytes:
    """AuthenticateServerRequest as the LPA builds it from InitiateAuthentication's answer."""
    parts = {
        "serverSigned1": field("InitiateAuthentication", "response.serverSigned1"),
        "serverSignature1": field("InitiateAuthentication", "response.serverSignature1"),
        "euiccCiPKIdToBeUsed": field("InitiateAuthentication", "response.euiccCiPKIdToBeUsed"),
        "serverCertificate": field("InitiateAuthentication", "response.serverCertificate"),
        "ctxParams1": schema.encode("CtxParams1", _recorded_signed1()["ctxParams1"]),
    }
    parts.update(replace)
    body = b"".join(parts.values())
    return encode_tlv(b"\xbf\x38", body)


def _authenticate(request: bytes | None = None, **overrides: Any) -> auth.ServerAuthenticated:
    args: dict[str, Any] = dict(credentials=_credentials(),
                                euicc_challenge=h(session()["euiccChallenge"]),
                                euicc_info2=_recorded_signed1()["euiccInfo2"], now=NOW)
    args.update(overrides)
    return auth.authenticate_server(request or _authenticate_server_request(), **args)


def test_euicc_answers_the_recorded_server_and_reproduces_euicc_signed1() -> None:
    answer = _authenticate()
    recorded = sig.authenticate_server_response_parts(_asr())
    mine = sig.authenticate_server_response_parts(answer.response)
    assert mine.signed == recorded.signed  # byte-exact euiccSigned1
    assert len(answer.response) == len(_asr())
    # simsmith's own SM-DP+ checks accept the virtual eUICC's answer
    euicc = _check_asr(answer.response)
    assert euicc.eid == session()["eid"]
    assert answer.transaction_id == _tid()


@pytest.mark.parametrize(("replace", "overrides", "check", "reason"), [
    ({}, {"euicc_challenge": bytes(16)}, "serverSigned1.euiccChallenge",
     "euiccChallengeMismatch"),
    ({"euiccCiPKIdToBeUsed": bytes.fromhex("0414") + bytes(20)}, {}, "euiccCiPKIdToBeUsed",
     "ciPKUnknown"),
    ({"serverSignature1": _flip(field("InitiateAuthentication", "response.serverSignature1"),
                                b"\x5f\x37", 20)}, {}, "serverSignature1", "invalidSignature"),
    ({"serverSigned1": _flip(field("InitiateAuthentication", "response.serverSigned1"),
                             b"testsmdpplus1")}, {}, "serverSignature1", "invalidSignature"),
    ({"serverCertificate": field("AuthenticateClient", "response.smdpCertificate")}, {},
     "serverCertificate", "invalidCertificate"),
    ({}, {"now": datetime(2031, 1, 1, tzinfo=UTC)}, "serverCertificate", "invalidCertificate"),
])
def test_euicc_refuses_a_bad_server(replace: dict[str, bytes], overrides: dict[str, Any],
                                    check: str, reason: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        _authenticate(_authenticate_server_request(**replace), **overrides)
    assert (info.value.check, info.value.reason) == (check, reason)


def _prepare_download_request(hash_cc: bytes | None = None, **replace: bytes) -> bytes:
    parts = {
        "smdpSigned2": field("AuthenticateClient", "response.smdpSigned2"),
        "smdpSignature2": field("AuthenticateClient", "response.smdpSignature2"),
        "smdpCertificate": field("AuthenticateClient", "response.smdpCertificate"),
    }
    parts.update(replace)
    cc = b"\x04\x20" + hash_cc if hash_cc else b""
    return encode_tlv(b"\xbf\x21", parts["smdpSigned2"] + parts["smdpSignature2"] + cc
                     + parts["smdpCertificate"])


def _recorded_session() -> auth.ServerAuthenticated:
    """The eUICC's state after the recorded AuthenticateServer (its real euiccSignature1)."""
    recorded = sig.authenticate_server_response_parts(_asr())
    return auth.ServerAuthenticated(response=_asr(), transaction_id=_tid(),
                                    server_address=session()["smdp_address"],
                                    dpauth=_cert("CERT_S_SM_DPauth_ECDSA_NIST.pem"),
                                    euicc_signature1=recorded.signature_tlv)


def test_euicc_prepares_the_recorded_download_byte_exact() -> None:
    otsk = ec.derive_private_key(int(session()["ephemeral_keys"]["otSK.EUICC.ECKA"], 16),
                                 ec.SECP256R1())
    prepared = auth.prepare_download(_prepare_download_request(), credentials=_credentials(),
                                     session=_recorded_session(), otsk_euicc=otsk, now=NOW)
    recorded = field("GetBoundProfilePackage", "request.prepareDownloadResponse")
    assert (sig.prepare_download_response_parts(prepared.response).signed
            == sig.prepare_download_response_parts(recorded).signed)
    # and simsmith's SM-DP+ side accepts it
    result = auth.check_prepare_download_response(
        prepared.response, euicc=_check_asr().identity, transaction_id=_tid(),
        smdp_signature2=field("AuthenticateClient", "response.smdpSignature2"))
    assert result.otpk_euicc == h(session()["ephemeral_keys"]["otPK.EUICC.ECKA"])
    assert "DownloadPrepared(" in repr(prepared)


def test_confirmation_code_goes_into_euicc_signed2() -> None:
    from esim.confirmation_code import hash_confirmation_code, verify_confirmation_code
    code_hash = hash_confirmation_code("12345678")
    hash_cc = hashlib.sha256(code_hash + _tid()).digest()
    prepared = auth.prepare_download(_prepare_download_request(hash_cc=hash_cc),
                                     credentials=_credentials(), session=_recorded_session(),
                                     hash_cc=hash_cc, now=NOW)
    result = auth.check_prepare_download_response(
        prepared.response, euicc=_check_asr().identity, transaction_id=_tid(),
        smdp_signature2=field("AuthenticateClient", "response.smdpSignature2"))
    assert result.hash_cc == hash_cc
    verify_confirmation_code(code_hash, _tid(), result.hash_cc)


@pytest.mark.parametrize(("replace", "check", "reason"), [
    ({"smdpSignature2": _flip(field("AuthenticateClient", "response.smdpSignature2"),
                              b"\x5f\x37", 30)}, "smdpSignature2", "invalidSignature"),
    ({"smdpCertificate": field("InitiateAuthentication", "response.serverCertificate")},
     "smdpCertificate", "invalidCertificate"),
])
def test_euicc_refuses_a_bad_prepare_download(replace: dict[str, bytes], check: str,
                                              reason: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        auth.prepare_download(_prepare_download_request(**replace), credentials=_credentials(),
                              session=_recorded_session(), now=NOW)
    assert (info.value.check, info.value.reason) == (check, reason)


def test_euicc_refuses_a_prepare_download_of_another_session() -> None:
    other = auth.ServerAuthenticated(response=b"", transaction_id=bytes(16),
                                     server_address="x", dpauth=_cert(
                                         "CERT_S_SM_DPauth_ECDSA_NIST.pem"),
                                     euicc_signature1=_recorded_session().euicc_signature1)
    with pytest.raises(AuthenticationError) as info:
        auth.prepare_download(_prepare_download_request(), credentials=_credentials(),
                              session=other, now=NOW)
    assert info.value.reason == "invalidTransactionId"
    # smdpSignature2 covers euiccSignature1: another authentication's signature breaks it
    forged = auth.ServerAuthenticated(response=b"", transaction_id=_tid(), server_address="x",
                                      dpauth=other.dpauth,
                                      euicc_signature1=b"\x5f\x37\x40" + bytes(64))
    with pytest.raises(AuthenticationError) as info:
        auth.prepare_download(_prepare_download_request(), credentials=_credentials(),
                              session=forged, now=NOW)
    assert info.value.reason == "invalidSignature"
