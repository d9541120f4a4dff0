"""ES9+ on the wire (SM-DP+ ⇄ LPA): paths, headers, base64 fields and status codes.

GSMA SGP.22 v2.x §5.6 (the functions and their status codes) and §6.5 (HTTP binding: JSON over
HTTPS, POST to /gsma/rsp2/es9plus/<function>, `X-Admin-Protocol: gsma/rsp/v2.x.y`, ASN.1 fields
as base64 DER, transactionId as hex, answers with `header.functionExecutionStatus`; HTTP 200 for
every answer with a body, 204 for HandleNotification).

The subject/reason pairs are those of the ES9+ function tables (subject 8.1 eUICC, 8.1.1 EID,
8.1.2 EUM Certificate, 8.1.3 eUICC Certificate, 8.2 Profile, 8.2.6 Matching ID, 8.2.7
Confirmation Code, 8.8 SM-DP+, 8.8.1 SM-DP+ Address, 8.8.2 Security configuration, 8.8.3
Specification Version Number, 8.8.4 Certificate, 8.8.5 Download order, 8.10.1 TransactionId,
8.11.1 CI Public Key; reasons 1.2 Not Allowed, 2.1 Invalid, 2.2 Mandatory Element Missing, 3.1
Unsupported, 3.7 Unavailable, 3.8 Refused, 3.9 Unknown, 3.10 Invalid Association, 4.10 Time to
Live Expired, 6.1 Verification Failed, 6.3 Expired, 6.4 Maximum number of attempts exceeded).
Every pair below was checked, with its meaning, against the SGP.22 v2.x ES9+ tables as two
independent implementations reproduce them — an open LPA's table of ES9+ status codes per
function with the specification's descriptions, and an open SM-DP+ whose checks quote the
specification's text (8.8 / 3.10 of CancelSession: that one only) — and 1.6 / 2.1, 1.6 / 2.2
against the GSMA common status codes (the
message names the parameter). docs/sgp22.md lists which check gives which pair. Both the SM-DP+
(simcore) and simsmith's LPA use this module.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from esim.es2plus.codes import FunctionExecutionStatus, StatusCode
from esim.sgp22.errors import Sgp22Error

ADMIN_PROTOCOL = "gsma/rsp/v2.5.0"
ADMIN_PROTOCOL_HEADER = "X-Admin-Protocol"
PATH_PREFIX = "/gsma/rsp2/es9plus"
FUNCTIONS = ("initiateAuthentication", "authenticateClient", "getBoundProfilePackage",
             "handleNotification", "cancelSession")

S = StatusCode

# The refusals of an SM-DP+ on ES9+, by name.
EUICC_VERIFICATION_FAILED = S("8.1", "6.1")  # euiccSignature1 / euiccSignature2 / cancel
EID_REFUSED = S("8.1.1", "3.8")  # the order is for another eUICC
EUM_CERTIFICATE_INVALID = S("8.1.2", "6.1")
EUM_CERTIFICATE_EXPIRED = S("8.1.2", "6.3")
EUICC_CERTIFICATE_INVALID = S("8.1.3", "6.1")
EUICC_CERTIFICATE_EXPIRED = S("8.1.3", "6.3")
PROFILE_NOT_RELEASED = S("8.2", "1.2")  # AuthenticateClient: ordered, not released yet
PROFILE_UNAVAILABLE = S("8.2", "3.7")  # GetBoundProfilePackage: no BPP for a new binding
MATCHING_ID_REFUSED = S("8.2.6", "3.8")
CONFIRMATION_CODE_MISSING = S("8.2.7", "2.2")
CONFIRMATION_CODE_REFUSED = S("8.2.7", "3.8")
CONFIRMATION_CODE_RETRIES_EXCEEDED = S("8.2.7", "6.4")
SMDP_INVALID_ASSOCIATION = S("8.8", "3.10")  # CancelSession for another SM-DP+ OID
SMDP_ADDRESS_REFUSED = S("8.8.1", "3.8")
SECURITY_CONFIGURATION_UNSUPPORTED = S("8.8.2", "3.1")  # no CI in common
SVN_UNSUPPORTED = S("8.8.3", "3.1")
CERTIFICATE_UNAVAILABLE = S("8.8.4", "3.7")
DOWNLOAD_ORDER_EXPIRED = S("8.8.5", "4.10")
DOWNLOAD_ORDER_RETRIES_EXCEEDED = S("8.8.5", "6.4")
TRANSACTION_ID_UNKNOWN = S("8.10.1", "3.9")
CI_PUBLIC_KEY_UNKNOWN = S("8.11.1", "3.9")
EXECUTION_ERROR = S("1.2", "4.2")  # Function provider - Execution error (internal)
FUNCTION_MISSING_ELEMENT = S("1.6", "2.2")
FUNCTION_INVALID = S("1.6", "2.1")


class Es9PlusFieldError(Sgp22Error, ValueError):
    """A field of an ES9+ JSON body is missing or not what SGP.22 §6.5 says it is."""

    def __init__(self, field: str, message: str, missing: bool = False) -> None:
        self.field = field
        self.missing = missing
        super().__init__(f"{field}: {message}")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def field_b64(body: dict[str, Any], name: str, *, optional: bool = False,
              max_length: int = 1 << 20) -> bytes | None:
    """A base64 (DER) field of a request body, decoded."""
    value = body.get(name)
    if value is None:
        if optional:
            return None
        raise Es9PlusFieldError(name, "missing", missing=True)
    if not isinstance(value, str) or len(value) > max_length:
        raise Es9PlusFieldError(name, "not a base64 string of acceptable length")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Es9PlusFieldError(name, "not valid base64") from None


def field_text(body: dict[str, Any], name: str, *, max_length: int = 255) -> str:
    value = body.get(name)
    if value is None:
        raise Es9PlusFieldError(name, "missing", missing=True)
    if not isinstance(value, str) or not 0 < len(value) <= max_length:
        raise Es9PlusFieldError(name, f"not a string of 1 to {max_length} characters")
    return value


def field_transaction_id(body: dict[str, Any]) -> bytes:
    """transactionId: 1 to 16 bytes as hex (upper case on the wire, either case accepted)."""
    value = field_text(body, "transactionId", max_length=32)
    try:
        tid = bytes.fromhex(value)
    except ValueError:
        raise Es9PlusFieldError("transactionId", "not hexadecimal") from None
    if not 1 <= len(tid) <= 16 or len(value) % 2:
        raise Es9PlusFieldError("transactionId", "not 1 to 16 bytes")
    return tid


def transaction_id_text(tid: bytes) -> str:
    return tid.hex().upper()


def success(**fields: Any) -> dict[str, Any]:
    """A successful answer: header first, then the given fields (None ones left out)."""
    body: dict[str, Any] = {"header": {"functionExecutionStatus": {
        "status": str(FunctionExecutionStatus.EXECUTED_SUCCESS)}}}
    body.update({k: v for k, v in fields.items() if v is not None})
    return body


def failure(code: StatusCode, message: str | None = None,
            transaction_id: bytes | None = None) -> dict[str, Any]:
    """A refusal: status Failed with the subject/reason pair."""
    data: dict[str, Any] = {"subjectCode": code.subject, "reasonCode": code.reason}
    if message:
        data["message"] = message
    body: dict[str, Any] = {"header": {"functionExecutionStatus": {
        "status": str(FunctionExecutionStatus.FAILED), "statusCodeData": data}}}
    if transaction_id is not None:
        body["transactionId"] = transaction_id_text(transaction_id)
    return body


def status_of(body: dict[str, Any]) -> tuple[FunctionExecutionStatus, StatusCode | None]:
    """The execution status (and subject/reason, when given) of an ES9+ answer (LPA side)."""
    try:
        status = body["header"]["functionExecutionStatus"]
        data = status.get("statusCodeData")
        code = S(data["subjectCode"], data["reasonCode"]) if data else None
        return FunctionExecutionStatus(status["status"]), code
    except (KeyError, TypeError, ValueError):
        raise Es9PlusFieldError("header.functionExecutionStatus",
                                "missing or malformed") from None
