"""Notifications the eUICC signs and the SM-DP+ receives (ES9+.HandleNotification).

GSMA SGP.22 v2.x §5.6.4 (ES9+.HandleNotification), §5.7.6 / §5.5.3 (ProfileInstallationResult,
the answer to the BPP), §5.7.9–5.7.10 (PendingNotification, OtherSignedNotification), §4.4
(NotificationEvent: install, enable, disable, delete; exactly one bit set).

A PendingNotification is read first (`read_pending_notification`): the SM-DP+ learns which
session (transactionId) or which eUICC (the certificates) it is about, then verifies the
signature with that eUICC's key — `InstallationResult.verify(key)` over
profileInstallationResultData exactly as received, `OtherNotification.verify(cis)` with the
enclosed certificate chain. The eUICC side builds both (`profile_installation_result`,
`other_signed_notification`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from esim.sgp22 import certificates, schema, signatures
from esim.sgp22.certificates import EuiccIdentity, TrustedCis
from esim.sgp22.errors import Asn1Error, AuthenticationError
from esim.sgp22.signatures import PublicKeySource, SignedObject, Signer
from esim.sgp22.tlv import encode_tlv, read_tlv


class NotificationEvent(enum.IntEnum):
    """NotificationEvent bits (SGP.22 §4.4 / Annex H)."""

    INSTALL = 0
    ENABLE = 1
    DISABLE = 2
    DELETE = 3

    def encode(self) -> tuple[bytes, int]:
        """asn1tools' BIT STRING value: one bit set, DER minimal length."""
        return bytes([0x80 >> self.value]), self.value + 1

    @classmethod
    def decode(cls, value: tuple[bytes, int], check: str) -> NotificationEvent:
        data, nbits = value
        bits = [i for i in range(nbits) if data[i // 8] & (0x80 >> (i % 8))]
        if len(bits) != 1 or bits[0] > cls.DELETE:
            raise AuthenticationError(check, "malformed",
                                      "profileManagementOperation must have exactly one of "
                                      "install, enable, disable, delete set")
        return cls(bits[0])


# Named INTEGER values of Annex H (asn1tools decodes named INTEGERs to their number).
BPP_COMMAND_IDS = {0: "initialiseSecureChannel", 1: "configureISDP", 2: "storeMetadata",
                   3: "storeMetadata2", 4: "replaceSessionKeys", 5: "loadProfileElements"}
ERROR_REASONS = {1: "incorrectInputValues", 2: "invalidSignature", 3: "invalidTransactionId",
                 4: "unsupportedCrtValues", 5: "unsupportedRemoteOperationType",
                 6: "unsupportedProfileClass", 7: "scp03tStructureError",
                 8: "scp03tSecurityError", 9: "installFailedDueToIccidAlreadyExistsOnEuicc",
                 10: "installFailedDueToInsufficientMemoryForProfile",
                 11: "installFailedDueToInterruption", 12: "installFailedDueToPEProcessingError",
                 13: "installFailedDueToIccidMismatch",
                 14: "testProfileInstallFailedDueToInvalidNaaKey", 15: "pprNotAllowed",
                 127: "installFailedDueToUnknownError"}
ERROR_REASON_VALUES = {name: number for number, name in ERROR_REASONS.items()}


@dataclass(frozen=True)
class InstallationResult:
    """A ProfileInstallationResult as received (not yet verified until `verify`)."""

    transaction_id: bytes
    seq_number: int
    notification_address: str
    iccid: bytes | None
    smdp_oid: str | None
    success: bool
    isdp_aid: bytes | None
    sima_response: bytes | None
    bpp_command: str | None  # BppCommandId name, on error
    error_reason: str | None  # ErrorReason name (or number when unknown), on error
    signed: SignedObject

    def verify(self, euicc_key: PublicKeySource) -> None:
        """euiccSignPIR over profileInstallationResultData, with the session's eUICC key."""
        signatures.verify(euicc_key, self.signed.signed, self.signed.signature_tlv,
                          "euiccSignPIR")


@dataclass(frozen=True)
class OtherNotification:
    """An OtherSignedNotification (enable, disable, delete, or install on other SM-DP+s)."""

    event: NotificationEvent
    seq_number: int
    notification_address: str
    iccid: bytes | None
    euicc_certificate: bytes
    eum_certificate: bytes
    signed: SignedObject

    def verify(self, cis: TrustedCis, *, eid: str | None = None,
               now: datetime | None = None) -> EuiccIdentity:
        """The enclosed chain to a trusted CI, then euiccNotificationSignature over
        tbsOtherNotification exactly as received; returns the eUICC (its EID)."""
        identity = certificates.verify_euicc_chain(self.euicc_certificate, self.eum_certificate,
                                                   cis, eid=eid, now=now)
        signatures.verify(identity.public_key, self.signed.signed, self.signed.signature_tlv,
                          "euiccNotificationSignature")
        return identity


def _error_reason_name(value: int) -> str:
    return ERROR_REASONS.get(int(value), str(value))


def read_pending_notification(der: bytes) -> InstallationResult | OtherNotification:
    """Decode a PendingNotification (ES9+.HandleNotification's `pendingNotification`)."""
    try:
        choice, value = schema.decode("PendingNotification", der)
    except Asn1Error as exc:
        raise AuthenticationError("pendingNotification", "malformed", str(exc)) from None
    if choice == "profileInstallationResult":
        data = value["profileInstallationResultData"]
        meta = data["notificationMetadata"]
        result_choice, result = data["finalResult"]
        success = result_choice == "successResult"
        return InstallationResult(
            transaction_id=bytes(data["transactionId"]), seq_number=meta["seqNumber"],
            notification_address=meta["notificationAddress"],
            iccid=bytes(meta["iccid"]) if "iccid" in meta else None,
            smdp_oid=data.get("smdpOid"), success=success,
            isdp_aid=bytes(result["aid"]) if success else None,
            sima_response=bytes(result["simaResponse"]) if "simaResponse" in result else None,
            bpp_command=None if success else BPP_COMMAND_IDS.get(result["bppCommandId"],
                                                                 str(result["bppCommandId"])),
            error_reason=None if success else _error_reason_name(result["errorReason"]),
            signed=signatures.profile_installation_result_parts(der))
    meta = value["tbsOtherNotification"]
    outer = read_tlv(der, where="OtherSignedNotification")
    return OtherNotification(
        event=NotificationEvent.decode(meta["profileManagementOperation"],
                                       "tbsOtherNotification.profileManagementOperation"),
        seq_number=meta["seqNumber"], notification_address=meta["notificationAddress"],
        iccid=bytes(meta["iccid"]) if "iccid" in meta else None,
        euicc_certificate=bytes(value["euiccCertificate"]),
        eum_certificate=bytes(value["eumCertificate"]),
        signed=signatures.signed_pair(der, outer, "euiccNotificationSignature"))


def _metadata(seq_number: int, event: NotificationEvent, notification_address: str,
              iccid: bytes | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"seqNumber": seq_number, "profileManagementOperation": event.encode(),
                            "notificationAddress": notification_address}
    if iccid is not None:
        meta["iccid"] = iccid
    return meta


def profile_installation_result(*, signer: Signer, transaction_id: bytes, seq_number: int,
                                notification_address: str, iccid: bytes | None,
                                smdp_oid: str | None, isdp_aid: bytes | None = None,
                                sima_response: bytes | None = None,
                                error: tuple[str, str] | None = None) -> bytes:
    """ProfileInstallationResult (BF37), eUICC side: success with the ISD-P AID and
    simaResponse, or `error` = (BppCommandId name, ErrorReason name). Signed with SK.EUICC."""
    if error is None:
        if isdp_aid is None or sima_response is None:
            raise ValueError("a successful installation names the ISD-P AID and simaResponse")
        final: tuple[str, dict[str, Any]] = ("successResult", {
            "aid": isdp_aid, "simaResponse": sima_response})
    else:
        commands = {v: k for k, v in BPP_COMMAND_IDS.items()}
        failure: dict[str, Any] = {"bppCommandId": commands[error[0]],
                                   "errorReason": ERROR_REASON_VALUES[error[1]]}
        if sima_response is not None:
            failure["simaResponse"] = sima_response
        final = ("errorResult", failure)
    data: dict[str, Any] = {
        "transactionId": transaction_id,
        "notificationMetadata": _metadata(seq_number, NotificationEvent.INSTALL,
                                          notification_address, iccid),
        "finalResult": final}
    if smdp_oid is not None:
        data["smdpOid"] = smdp_oid
    signed = schema.encode("ProfileInstallationResultData", data)
    signature = signatures.sign(signer, signed, "euiccSignPIR")
    return encode_tlv(b"\xbf\x37", signed + signature)


def other_signed_notification(*, signer: Signer, euicc_certificate: x509.Certificate,
                              eum_certificate: x509.Certificate, seq_number: int,
                              event: NotificationEvent, notification_address: str,
                              iccid: bytes | None) -> bytes:
    """OtherSignedNotification, eUICC side: tbsOtherNotification signed with SK.EUICC, with the
    eUICC and EUM certificates."""
    tbs = schema.encode("NotificationMetadata",
                        _metadata(seq_number, event, notification_address, iccid))
    signature = signatures.sign(signer, tbs, "euiccNotificationSignature")
    certs = b"".join(c.public_bytes(serialization.Encoding.DER)
                     for c in (euicc_certificate, eum_certificate))
    return encode_tlv(b"\x30", tbs + signature + certs)
