"""CERT.DPauth and CERT.DPpb must chain to the CI the session named (SGP.22 §5.7.13, §5.7.5),
even when the eUICC trusts several CIs."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization

from esim.euicc.es10 import EuiccCore
from esim.sgp22 import schema
from esim.sgp22 import signatures as sig
from esim.sgp22.authentication import EuiccCredentials, server_signed1
from esim.sgp22.certificates import RspRole, TrustedCis, subject_key_id
from esim.sgp22.tlv import encode_tlv
from tests.esim import sgp22_pki
from tests.esim.sgp22_vectors import h, session
from tests.euicc.recorded import (
    authenticate_server_request,
    cert,
    prepare_download_request,
    recorded_euicc,
    replaying_signer,
)

CI1 = cert("CERT_CI_ECDSA_NIST.pem")


def _two_ci_euicc(ci2: sgp22_pki.Party) -> EuiccCore:
    return recorded_euicc(credentials=EuiccCredentials(
        signer=replaying_signer(), certificate=cert("CERT_EUICC_ECDSA_NIST.pem"),
        eum_certificate=cert("CERT_EUM_ECDSA_NIST.pem"), cis=TrustedCis([CI1, ci2.cert])))


def _request_from(dpauth: sgp22_pki.Party, ci_key_id: bytes) -> bytes:
    signed = server_signed1(transaction_id=h(session()["transactionId"]),
                            euicc_challenge=h(session()["euiccChallenge"]),
                            server_address=session()["smdp_address"],
                            server_challenge=h(session()["serverChallenge"]))
    signature = sig.sign(sig.software_signer(dpauth.key), signed, "serverSignature1")
    return authenticate_server_request(
        serverSigned1=signed, serverSignature1=signature,
        euiccCiPKIdToBeUsed=encode_tlv(b"\x04", ci_key_id),
        serverCertificate=dpauth.cert.public_bytes(serialization.Encoding.DER))


def _auth_code(answer: bytes) -> tuple[str, int]:
    kind, value = schema.decode("AuthenticateServerResponse", answer)
    return kind, int(value.get("authenticateErrorCode", 0))


def test_dpauth_from_another_ci_than_named_is_refused() -> None:
    ci2 = sgp22_pki.ci()
    dpauth2 = sgp22_pki.dp(ci2, RspRole.DP_AUTH)
    euicc = _two_ci_euicc(ci2)
    euicc.handle(bytes.fromhex("BF2E00"))
    # names the recorded CI, but its DPauth is CI2's: invalidCertificate(1)
    answer = euicc.handle(_request_from(dpauth2, subject_key_id(CI1)))
    assert _auth_code(answer) == ("authenticateResponseError", 1)
    # the same server naming CI2 is accepted
    euicc.handle(bytes.fromhex("BF2E00"))
    answer = euicc.handle(_request_from(dpauth2, subject_key_id(ci2.cert)))
    assert _auth_code(answer)[0] == "authenticateResponseOk"
    # … and then a DPpb of the other CI (the recorded one) is refused: invalidCertificate(1)
    kind, value = schema.decode("PrepareDownloadResponse",
                                euicc.handle(prepare_download_request()))
    assert (kind, value["downloadErrorCode"]) == ("downloadResponseError", 1)
    assert euicc.state.profiles == []


def test_recorded_request_still_accepted_with_two_cis() -> None:
    euicc = _two_ci_euicc(sgp22_pki.ci())
    euicc.handle(bytes.fromhex("BF2E00"))
    assert _auth_code(euicc.handle(authenticate_server_request()))[0] == \
        "authenticateResponseOk"
