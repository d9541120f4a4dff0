"""The virtual eUICC's ES10b download path against the recorded, independent SM-DP+
(tests/vectors/sgp22/download): its messages pass every eUICC check, and the BPP, sent segment
by segment as separate commands, installs upp.der byte for byte (ReplaceSessionKeys included,
1,036-byte segments accepted and logged). Tampered messages are refused with the SGP.22 code and
nothing is installed."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from esim.euicc.es10 import Es10Refused, EuiccCore
from esim.lpa.bpp_segments import segment_bpp
from esim.sgp22 import schema
from esim.sgp22 import signatures as sig
from esim.sgp22.notifications import InstallationResult, read_pending_notification
from esim.sgp22.tlv import encode_tlv
from tests.esim.sgp22_vectors import data, field, h, session
from tests.euicc.recorded import (
    authenticate_server_request,
    cert,
    flip,
    prepare_download_request,
    recorded_asr,
    recorded_euicc,
)

GET_CHALLENGE = bytes.fromhex("BF2E00")


def _authenticated(euicc: EuiccCore) -> bytes:
    assert euicc.handle(GET_CHALLENGE) == encode_tlv(
        b"\xbf\x2e", encode_tlv(b"\x80", h(session()["euiccChallenge"])))
    return euicc.handle(authenticate_server_request())


def _prepared(euicc: EuiccCore) -> bytes:
    _authenticated(euicc)
    return euicc.handle(prepare_download_request())


def _load(euicc: EuiccCore, bpp: bytes) -> list[bytes]:
    return [euicc.handle(command) for command in segment_bpp(bpp)]


def test_lpa_segmentation_of_the_recorded_bpp() -> None:
    commands = segment_bpp(data("bpp.der"))
    # BF36+BF23, A0+87, A1, 88, A2+87, A3, 13 x 86
    assert len(commands) == 6 + 13
    assert [c[:1].hex() for c in commands[:6]] == ["bf", "a0", "a1", "88", "a2", "a3"]
    assert b"".join(commands) == data("bpp.der")


def test_recorded_download_installs_upp_byte_for_byte(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "euicc.json"
    euicc = recorded_euicc(state)
    answer = _authenticated(euicc)
    recorded = field("AuthenticateClient", "request.authenticateServerResponse")
    assert answer == recorded  # euiccSigned1 byte-exact, the recorded signature replayed
    prepared = euicc.handle(prepare_download_request())
    assert (sig.prepare_download_response_parts(prepared).signed
            == sig.prepare_download_response_parts(
                field("GetBoundProfilePackage", "request.prepareDownloadResponse")).signed)
    with caplog.at_level(logging.WARNING, logger="esim.euicc.loader"):
        answers = _load(euicc, data("bpp.der"))
    assert answers[:-1] == [b""] * (len(answers) - 1)
    assert "1036 bytes exceeds" in caplog.text
    result = read_pending_notification(answers[-1])
    assert isinstance(result, InstallationResult)
    result.verify(cert("CERT_EUICC_ECDSA_NIST.pem"))  # euiccSignPIR by SK.EUICC
    assert result.success and result.transaction_id == h(session()["transactionId"])
    assert result.smdp_oid == "2.999.10"
    [profile] = euicc.state.profiles
    assert bytes.fromhex(profile.upp) == data("upp.der")
    assert profile.iccid == session()["iccid"].rstrip("f") and profile.state == "disabled"
    # the state file survives a restart, mode 0600; the notification is kept until removed
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    again = recorded_euicc(state)
    assert [p.iccid for p in again.state.profiles] == [session()["iccid"].rstrip("f")]
    listed = schema.decode("ListNotificationResponse", again.handle(bytes.fromhex("BF2800")))
    assert [m["seqNumber"] for m in listed[1]] == [1]
    retrieved = again.handle(bytes.fromhex("BF2B00"))
    assert answers[-1] in retrieved
    removed = again.handle(encode_tlv(b"\xbf\x30", b"\x80\x01\x01"))
    assert schema.decode("NotificationSentResponse", removed)["deleteNotificationStatus"] == 0
    assert recorded_euicc(state).state.notifications == []


def test_info_and_eid() -> None:
    euicc = recorded_euicc()
    assert euicc.handle(bytes.fromhex("BF3E00")) == bytes.fromhex(
        "BF3E125A10" + session()["eid"])
    info2 = schema.decode("EUICCInfo2", euicc.handle(bytes.fromhex("BF2200")))
    assert info2 == recorded_asr()["euiccSigned1"]["euiccInfo2"]
    info1 = schema.decode("EUICCInfo1", euicc.handle(bytes.fromhex("BF2000")))
    assert info1["euiccCiPKIdListForVerification"] == info2["euiccCiPKIdListForVerification"]
    with pytest.raises(Es10Refused) as refused:
        euicc.handle(bytes.fromhex("BF7F00"))
    assert refused.value.status == 0x6A88


def _auth_error(answer: bytes) -> int:
    kind, value = schema.decode("AuthenticateServerResponse", answer)
    assert kind == "authenticateResponseError"
    return int(value["authenticateErrorCode"])


@pytest.mark.parametrize(("request_parts", "code"), [
    # flipped serverSignature1 -> invalidSignature(2)
    ({"serverSignature1": flip(field("InitiateAuthentication", "response.serverSignature1"),
                               b"\x5f\x37", 20)}, 2),
    # a CI this eUICC does not know -> ciPKUnknown(7)
    ({"euiccCiPKIdToBeUsed": bytes.fromhex("0414") + bytes(20)}, 7),
    # CERT.DPauth replaced by CERT.DPpb (wrong role) -> invalidCertificate(1)
    ({"serverCertificate": field("AuthenticateClient", "response.smdpCertificate")}, 1),
])
def test_authenticate_server_tampered(request_parts: dict[str, bytes], code: int) -> None:
    euicc = recorded_euicc()
    euicc.handle(GET_CHALLENGE)
    assert _auth_error(euicc.handle(authenticate_server_request(**request_parts))) == code
    # the session is gone: PrepareDownload has no context (noSessionContext 4)
    kind, value = schema.decode("PrepareDownloadResponse",
                                euicc.handle(prepare_download_request()))
    assert (kind, value["downloadErrorCode"]) == ("downloadResponseError", 4)
    assert euicc.state.profiles == []


def test_challenge_mismatch_and_no_challenge() -> None:
    euicc = recorded_euicc(random=lambda n: bytes(n))
    assert _auth_error(euicc.handle(authenticate_server_request())) == 4  # noSessionContext
    euicc.handle(GET_CHALLENGE)
    assert _auth_error(euicc.handle(authenticate_server_request())) == 6  # mismatch


def test_prepare_download_flipped_smdp_signature2() -> None:
    euicc = recorded_euicc()
    _authenticated(euicc)
    answer = euicc.handle(prepare_download_request(smdpSignature2=flip(
        field("AuthenticateClient", "response.smdpSignature2"), b"\x5f\x37", 30)))
    kind, value = schema.decode("PrepareDownloadResponse", answer)
    assert (kind, value["downloadErrorCode"]) == ("downloadResponseError", 2)
    with pytest.raises(Es10Refused):
        _load(euicc, data("bpp.der"))
    assert euicc.state.profiles == []


def _pir_error(answer: bytes) -> tuple[str | None, str | None]:
    result = read_pending_notification(answer)
    assert isinstance(result, InstallationResult)
    result.verify(cert("CERT_EUICC_ECDSA_NIST.pem"))
    assert not result.success
    return result.bpp_command, result.error_reason


def _tampered_run(euicc: EuiccCore, commands: list[bytes]) -> bytes:
    _prepared(euicc)
    for command in commands:
        answer = euicc.handle(command)
        if answer:
            return answer
    raise AssertionError("no ProfileInstallationResult")


@pytest.mark.parametrize(("index", "offset", "expected"), [
    (0, -10, ("initialiseSecureChannel", "invalidSignature")),  # smdpSign
    (1, -3, ("configureISDP", "scp03tSecurityError")),  # MAC of the 87 segment
    (3, -3, ("storeMetadata", "scp03tSecurityError")),
    (4, -3, ("replaceSessionKeys", "scp03tSecurityError")),
    (10, -3, ("loadProfileElements", "scp03tSecurityError")),  # a profile segment's MAC
])
def test_bpp_tampered_segment_refused(index: int, offset: int,
                                      expected: tuple[str, str]) -> None:
    euicc = recorded_euicc()
    commands = segment_bpp(data("bpp.der"))
    bad = bytearray(commands[index])
    bad[offset] ^= 0x01
    commands[index] = bytes(bad)
    assert _pir_error(_tampered_run(euicc, commands)) == expected
    assert euicc.state.profiles == []
    # the failed installation is a pending notification too
    assert [n.event for n in euicc.state.notifications] == ["install"]


def test_bpp_out_of_order_and_duplicate_iccid() -> None:
    euicc = recorded_euicc()
    commands = segment_bpp(data("bpp.der"))
    commands[3], commands[5] = commands[5], commands[3]  # A3 before the 88 segment
    assert _pir_error(_tampered_run(euicc, commands))[1] == "scp03tStructureError"
    _prepared(euicc)
    _load(euicc, data("bpp.der"))
    assert len(euicc.state.profiles) == 1
    _prepared(euicc)
    assert _pir_error(_load(euicc, data("bpp.der"))[-1]) == (
        "loadProfileElements", "installFailedDueToIccidAlreadyExistsOnEuicc")
    assert len(euicc.state.profiles) == 1
