"""The eUICC checks of issue 17 item 1 not covered by the recorded download's tamper tests:
transactionId continuity and the confirmation-code flag in PrepareDownload (SGP.22 §5.7.5), a
UPP that does not parse as SAIP, a UPP whose ICCID is not StoreMetadata's, a BPP larger than the
eUICC's memory (§5.7.6 ErrorReason), CancelSession (§5.7.14) and the ES10a addresses (§5.7.3,
§5.7.4). Each refusal carries its SGP.22 code and leaves nothing installed."""

from __future__ import annotations

import os

import pytest

from esim.euicc.es10 import Es10Refused, EuiccCore
from esim.lpa.functions import Es10Functions
from esim.sgp22 import authentication as auth
from esim.sgp22 import schema
from esim.sgp22 import signatures as sig
from esim.sgp22.cancel_session import check_cancel_session_response
from esim.sgp22.notifications import InstallationResult, read_pending_notification
from esim.sgp22.tlv import encode_tlv
from simcore.euicc import EuiccLoopback, es10_session, virtual_euicc
from tests.esim.sgp22_vectors import field, h, session
from tests.euicc.recorded import (
    authenticate_server_request,
    cert,
    key,
    prepare_download_request,
    recorded_euicc,
)
from tests.euicc.smdp_side import download, milenage_upp

EUICC_SIGNATURE1 = sig.authenticate_server_response_parts(
    field("AuthenticateClient", "request.authenticateServerResponse")).signature_tlv


def _authenticated() -> EuiccCore:
    euicc = recorded_euicc()
    euicc.handle(bytes.fromhex("BF2E00"))
    kind, _ = schema.decode("AuthenticateServerResponse",
                            euicc.handle(authenticate_server_request()))
    assert kind == "authenticateResponseOk"
    return euicc


def _signed2(transaction_id: bytes, cc_required: bool) -> dict[str, bytes]:
    """smdpSigned2 and a valid smdpSignature2 over it (the recorded DPpb key): only the field
    under test is wrong."""
    signed2 = auth.smdp_signed2(transaction_id=transaction_id, cc_required=cc_required)
    signature = sig.sign(sig.software_signer(key("SK_S_SM_DPpb_ECDSA_NIST.pem")),
                         sig.smdp_signature2_input(signed2, EUICC_SIGNATURE1), "smdpSignature2")
    return {"smdpSigned2": signed2, "smdpSignature2": signature}


@pytest.mark.parametrize(("transaction_id", "cc_required", "code"), [
    (bytes(16), False, 5),  # another transaction than the session's: invalidTransactionId
    (h(session()["transactionId"]), True, 127),  # ccRequiredFlag, no hashCc: undefinedError
])
def test_prepare_download_refusals(transaction_id: bytes, cc_required: bool,
                                   code: int) -> None:
    euicc = _authenticated()
    answer = euicc.handle(prepare_download_request(**_signed2(transaction_id, cc_required)))
    kind, value = schema.decode("PrepareDownloadResponse", answer)
    assert (kind, value["downloadErrorCode"]) == ("downloadResponseError", code)
    with pytest.raises(Es10Refused) as refused:  # the session is gone
        euicc.handle(bytes.fromhex("BF3600"))
    assert refused.value.status == 0x6985
    assert euicc.state.profiles == []


def test_the_right_signed2_is_accepted() -> None:
    """The re-signed smdpSigned2 of the test above passes when nothing in it is wrong."""
    euicc = _authenticated()
    answer = euicc.handle(prepare_download_request(**_signed2(h(session()["transactionId"]),
                                                              False)))
    assert schema.decode("PrepareDownloadResponse", answer)[0] == "downloadResponseOk"


ICCID, OTHER = "8949440000000000058", "8949440000000000066"


@pytest.mark.parametrize(("upp", "reason"), [
    (milenage_upp(OTHER, "001010000000066"), "installFailedDueToIccidMismatch"),
    # well-formed DER, but not a SAIP ProfileElement sequence
    (encode_tlv(b"\x30", encode_tlv(b"\x04", bytes(200))), "installFailedDueToPEProcessingError"),
])
def test_upp_refused_after_decryption(upp: bytes, reason: str) -> None:
    card = virtual_euicc(recorded_euicc(random=os.urandom))
    with es10_session(EuiccLoopback(card)) as es10:
        pir = download(Es10Functions(es10.call), upp, ICCID, session()["eid"])
    result = read_pending_notification(pir)
    assert isinstance(result, InstallationResult) and not result.success
    result.verify(cert("CERT_EUICC_ECDSA_NIST.pem"))
    assert (result.bpp_command, result.error_reason) == ("loadProfileElements", reason)
    assert card.core.state.profiles == []
    assert [n.event for n in card.core.state.notifications] == ["install"]


def test_bpp_larger_than_memory() -> None:
    euicc = _authenticated()
    euicc.handle(prepare_download_request())
    # BF36 announcing 1 MiB + 1 byte (its content never comes)
    answer = euicc.handle(bytes.fromhex("BF3683100001"))
    result = read_pending_notification(answer)
    assert isinstance(result, InstallationResult) and not result.success
    assert result.error_reason == "installFailedDueToInsufficientMemoryForProfile"
    assert euicc.state.profiles == []


def test_cancel_session() -> None:
    euicc = _authenticated()
    tid = h(session()["transactionId"])
    wrong = schema.encode("CancelSessionRequest", {"transactionId": bytes(16), "reason": 0})
    assert schema.decode("CancelSessionResponse", euicc.handle(wrong)) == (
        "cancelSessionResponseError", 5)  # invalidTransactionId
    answer = euicc.handle(schema.encode("CancelSessionRequest",
                                        {"transactionId": tid, "reason": 0}))
    cancelled = check_cancel_session_response(
        answer, euicc_key=cert("CERT_EUICC_ECDSA_NIST.pem"), transaction_id=tid,
        smdp_oid="2.999.10")
    assert cancelled.reason.value == 0  # endUserRejection, signed by the eUICC
    # the session is over: PrepareDownload has no context (noSessionContext 4)
    kind, value = schema.decode("PrepareDownloadResponse",
                                euicc.handle(prepare_download_request()))
    assert (kind, value["downloadErrorCode"]) == ("downloadResponseError", 4)


def test_configured_addresses_and_default_dp_address() -> None:
    euicc = recorded_euicc()
    answer = euicc.handle(bytes.fromhex("BF3C00"))
    assert answer[:2] == b"\xbf\x3c" and b"\x80" not in answer[2:4]  # no default yet
    set_request = encode_tlv(b"\xbf\x3f", encode_tlv(b"\x80", b"smdp.simsmith.test"))
    assert euicc.handle(set_request) == bytes.fromhex("BF3F03800100")  # ok
    answer = euicc.handle(bytes.fromhex("BF3C00"))
    assert encode_tlv(b"\x80", b"smdp.simsmith.test") in answer
    assert euicc.state.default_dp_address == "smdp.simsmith.test"
    with pytest.raises(Es10Refused) as refused:
        euicc.handle(bytes.fromhex("BF3F00"))
    assert refused.value.status == 0x6A80
