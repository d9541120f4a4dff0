"""SGP.22 notifications and CancelSession (esim.sgp22.notifications, esim.sgp22.cancel_session):
the recorded ProfileInstallationResult is read, verified and rebuilt byte-exact (signature
aside); other signed notifications and cancellations round-trip; tampering is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from esim.sgp22 import schema
from esim.sgp22 import signatures as sig
from esim.sgp22.cancel_session import (
    CancelSessionReason,
    cancel_session_response,
    check_cancel_session_response,
)
from esim.sgp22.certificates import TrustedCis
from esim.sgp22.errors import AuthenticationError, CertificateError, SignatureError
from esim.sgp22.notifications import (
    InstallationResult,
    NotificationEvent,
    OtherNotification,
    other_signed_notification,
    profile_installation_result,
    read_pending_notification,
)
from simcore.identifiers import encode_swapped_bcd
from tests.esim.sgp22_vectors import cert_pem, field, h, session

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _cert(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert_pem(name))


def _euicc_signer() -> sig.Signer:
    key = serialization.load_pem_private_key(cert_pem("SK_EUICC_ECDSA_NIST.pem"), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return sig.software_signer(key)


def _ef_iccid(recorded: str) -> bytes:
    """The session's ICCID ('8949…163f', F-padded) as coded in EF.ICCID / Iccid ('5A')."""
    return encode_swapped_bcd(recorded.rstrip("fF"), 10)


def _pir() -> bytes:
    return field("HandleNotification", "request.pendingNotification")


def _installation(der: bytes) -> InstallationResult:
    result = read_pending_notification(der)
    assert isinstance(result, InstallationResult)
    return result


def _other(der: bytes) -> OtherNotification:
    result = read_pending_notification(der)
    assert isinstance(result, OtherNotification)
    return result


def test_recorded_installation_result_is_read_and_verified() -> None:
    result = _installation(_pir())
    pir = session()["pir"]
    assert result.transaction_id == h(pir["transaction_id"])
    assert result.seq_number == pir["sequence_nr"]
    assert result.iccid == _ef_iccid(pir["iccid"])
    assert result.smdp_oid == pir["smdp_oid"] == "2.999.10"
    assert result.success and result.isdp_aid == h(pir["isdp_aid"])
    assert result.sima_response == h(pir["sima_response"])
    assert result.notification_address == session()["smdp_address"]
    result.verify(_cert("CERT_EUICC_ECDSA_NIST.pem"))
    with pytest.raises(SignatureError, match="euiccSignPIR"):
        result.verify(_cert("CERT_S_SM_DPpb_ECDSA_NIST.pem"))


def test_recorded_installation_result_rebuilt_byte_exact() -> None:
    pir = session()["pir"]
    mine = profile_installation_result(
        signer=_euicc_signer(), transaction_id=h(pir["transaction_id"]),
        seq_number=pir["sequence_nr"], notification_address=session()["smdp_address"],
        iccid=_ef_iccid(pir["iccid"]), smdp_oid=pir["smdp_oid"], isdp_aid=h(pir["isdp_aid"]),
        sima_response=h(pir["sima_response"]))
    assert (sig.profile_installation_result_parts(mine).signed
            == sig.profile_installation_result_parts(_pir()).signed)
    _installation(mine).verify(_cert("CERT_EUICC_ECDSA_NIST.pem"))


def test_tampered_installation_result_fails_its_signature() -> None:
    tampered = bytearray(_pir())
    tampered[tampered.index(h(session()["pir"]["isdp_aid"])) + 15] ^= 0x01
    with pytest.raises(SignatureError) as info:
        _installation(bytes(tampered)).verify(_cert("CERT_EUICC_ECDSA_NIST.pem"))
    assert info.value.reason == "mismatch"


def test_installation_error_round_trips_with_names() -> None:
    der = profile_installation_result(
        signer=_euicc_signer(), transaction_id=bytes(16), seq_number=7,
        notification_address="smdp.simsmith.test", iccid=None, smdp_oid="2.999.10",
        error=("loadProfileElements", "installFailedDueToIccidAlreadyExistsOnEuicc"))
    result = _installation(der)
    assert not result.success
    assert result.bpp_command == "loadProfileElements"
    assert result.error_reason == "installFailedDueToIccidAlreadyExistsOnEuicc"
    assert result.iccid is None and result.isdp_aid is None
    result.verify(_cert("CERT_EUICC_ECDSA_NIST.pem"))


def _other_der(event: NotificationEvent = NotificationEvent.DELETE) -> bytes:
    return other_signed_notification(
        signer=_euicc_signer(), euicc_certificate=_cert("CERT_EUICC_ECDSA_NIST.pem"),
        eum_certificate=_cert("CERT_EUM_ECDSA_NIST.pem"), seq_number=3, event=event,
        notification_address="smdp.simsmith.test", iccid=_ef_iccid(session()["iccid"]))


@pytest.mark.parametrize("event", list(NotificationEvent))
def test_other_signed_notifications_round_trip(event: NotificationEvent) -> None:
    der = _other_der(event)
    assert schema.decode("PendingNotification", der)[0] == "otherSignedNotification"
    notification = _other(der)
    assert notification.event is event and notification.seq_number == 3
    assert notification.iccid == _ef_iccid(session()["iccid"])
    identity = notification.verify(TrustedCis([_cert("CERT_CI_ECDSA_NIST.pem")]), now=NOW)
    assert identity.eid == session()["eid"]


def test_other_notification_refusals() -> None:
    der = _other_der()
    cis = TrustedCis([_cert("CERT_CI_ECDSA_NIST.pem")])
    tampered = bytearray(der)
    tampered[der.index(b"smdp.simsmith") + 2] ^= 0x01
    with pytest.raises(SignatureError):
        _other(bytes(tampered)).verify(cis, now=NOW)
    with pytest.raises(CertificateError) as info:
        _other(der).verify(cis, eid="89049032123451234512345678901243", now=NOW)
    assert info.value.reason == "eid-mismatch"
    with pytest.raises(AuthenticationError, match="exactly one"):
        NotificationEvent.decode((b"\x60", 3), "profileManagementOperation")
    with pytest.raises(AuthenticationError) as info2:
        read_pending_notification(b"\xbf\x37\x00")
    assert info2.value.reason == "malformed"


def test_cancel_session_round_trip_and_refusals() -> None:
    tid = h(session()["transactionId"])
    euicc = _cert("CERT_EUICC_ECDSA_NIST.pem")
    der = cancel_session_response(signer=_euicc_signer(), transaction_id=tid,
                                  smdp_oid="2.999.10",
                                  reason=CancelSessionReason.END_USER_REJECTION)
    assert schema.decode("CancelSessionResponse", der)[0] == "cancelSessionResponseOk"
    cancelled = check_cancel_session_response(der, euicc_key=euicc, transaction_id=tid,
                                              smdp_oid="2.999.10")
    assert cancelled.reason is CancelSessionReason.END_USER_REJECTION
    with pytest.raises(AuthenticationError) as info:
        check_cancel_session_response(der, euicc_key=euicc, transaction_id=bytes(16),
                                      smdp_oid="2.999.10")
    assert info.value.check == "euiccCancelSessionSigned.transactionId"
    with pytest.raises(AuthenticationError) as info:
        check_cancel_session_response(der, euicc_key=euicc, transaction_id=tid,
                                      smdp_oid="2.999.11")
    assert info.value.check == "euiccCancelSessionSigned.smdpOid"
    with pytest.raises(SignatureError):
        check_cancel_session_response(der, euicc_key=_cert("CERT_S_SM_DPpb_ECDSA_NIST.pem"),
                                      transaction_id=tid, smdp_oid="2.999.10")
    error = schema.encode("CancelSessionResponse", ("cancelSessionResponseError", 5))
    with pytest.raises(AuthenticationError) as info:
        check_cancel_session_response(error, euicc_key=euicc, transaction_id=tid,
                                      smdp_oid="2.999.10")
    assert info.value.check == "cancelSessionResponseError"
