"""CancelSession: the eUICC's signed cancellation and the SM-DP+'s check of it.

GSMA SGP.22 v2.x §5.7.14 (ES10b.CancelSession: the eUICC signs euiccCancelSessionSigned —
transactionId, the SM-DP+ OID from CERT.DPauth, the reason) and §5.6.5 (ES9+.CancelSession: the
SM-DP+ checks the transaction, its own OID and euiccCancelSessionSignature with the eUICC key of
the session, then ends the session).
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass

from esim.sgp22 import schema, signatures
from esim.sgp22.errors import Asn1Error, AuthenticationError
from esim.sgp22.signatures import PublicKeySource, Signer
from esim.sgp22.tlv import encode_tlv, read_tlv


class CancelSessionReason(enum.IntEnum):
    """CancelSessionReason (Annex H)."""

    END_USER_REJECTION = 0
    POSTPONED = 1
    TIMEOUT = 2
    PPR_NOT_ALLOWED = 3
    METADATA_MISMATCH = 4
    LOAD_BPP_EXECUTION_ERROR = 5
    UNDEFINED_REASON = 127


def cancel_session_response(*, signer: Signer, transaction_id: bytes, smdp_oid: str,
                            reason: CancelSessionReason) -> bytes:
    """CancelSessionResponse (BF41, cancelSessionResponseOk), eUICC side."""
    signed = schema.encode("EuiccCancelSessionSigned", {
        "transactionId": transaction_id, "smdpOid": smdp_oid, "reason": int(reason)})
    signature = signatures.sign(signer, signed, "euiccCancelSessionSignature")
    return encode_tlv(b"\xbf\x41", encode_tlv(b"\xa0", signed + signature))


@dataclass(frozen=True)
class Cancellation:
    """A verified cancellation: the session ends for `reason`."""

    transaction_id: bytes
    reason: CancelSessionReason


def check_cancel_session_response(der: bytes, *, euicc_key: PublicKeySource,
                                  transaction_id: bytes, smdp_oid: str) -> Cancellation:
    """ES9+.CancelSession (§5.6.5), SM-DP+ side: this session's transaction, this SM-DP+'s OID,
    and euiccCancelSessionSignature over euiccCancelSessionSigned as received."""
    try:
        choice, value = schema.decode("CancelSessionResponse", der)
    except Asn1Error as exc:
        raise AuthenticationError("cancelSessionResponse", "malformed", str(exc)) from None
    if choice != "cancelSessionResponseOk":
        raise AuthenticationError("cancelSessionResponseError", str(value),
                                  f"the eUICC could not cancel the session ({value})")
    signed = value["euiccCancelSessionSigned"]
    if not hmac.compare_digest(bytes(signed["transactionId"]), transaction_id):
        raise AuthenticationError("euiccCancelSessionSigned.transactionId", "mismatch",
                                  "not the transaction of this session")
    if signed["smdpOid"] != smdp_oid:
        raise AuthenticationError("euiccCancelSessionSigned.smdpOid", "mismatch",
                                  f"{signed['smdpOid']} is not this SM-DP+'s OID {smdp_oid}")
    outer = read_tlv(der, where="CancelSessionResponse")
    ok = read_tlv(der, outer.value_start, outer.end, "CancelSessionResponse")
    parts = signatures.signed_pair(der, ok, "euiccCancelSessionSignature")
    signatures.verify(euicc_key, parts.signed, parts.signature_tlv, "euiccCancelSessionSignature")
    try:
        reason = CancelSessionReason(signed["reason"])
    except ValueError:
        reason = CancelSessionReason.UNDEFINED_REASON
    return Cancellation(transaction_id=transaction_id, reason=reason)
