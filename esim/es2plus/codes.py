"""ES2+ execution statuses and status codes, GSMA SGP.22 v2.5.

A response header carries `functionExecutionStatus.status` (§6.5.1.4: Executed-Success,
Executed-WithWarning, Failed, Expired) and, unless the call succeeded plainly, `statusCodeData`:
a subject code (what the problem is about: the EID, the Profile ICCID, the Matching ID …) and a
reason code (what is wrong with it: unknown, already in use, invalid transition …). A pair such
as 8.2.6 / 3.3 reads "Matching ID – Already in use".

The subject and reason descriptions below follow SGP.22's error tables for ES2+ (§5.3.1 – §5.3.5)
and the common subject and reason codes shared with SGP.02 (§5.1.6.4 there): the function-level
pairs are 1.1 Function Requester (1.1 unknown, 1.2 not allowed), 1.2 Function Provider (4.2
execution error — only when no more accurate code applies — and 4.4 busy), 1.2.1 Validity Period
(3.8 refused) and 1.6 Function (2.1 invalid, 2.2 mandatory element missing, 2.3 conditional
element missing, 5.3 time to live expired, 5.4 delivered with no response). Checked against the
GSMA common code table as published by an eSIM platform vendor (docs/es2plus.md), not the PDF.
A code this table does not know is still carried through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FunctionExecutionStatus(StrEnum):
    """SGP.22 §6.5.1.4 functionExecutionStatus.status."""

    EXECUTED_SUCCESS = "Executed-Success"
    EXECUTED_WITH_WARNING = "Executed-WithWarning"
    FAILED = "Failed"
    EXPIRED = "Expired"

    @property
    def executed(self) -> bool:
        return self in (FunctionExecutionStatus.EXECUTED_SUCCESS,
                        FunctionExecutionStatus.EXECUTED_WITH_WARNING)


# Subject codes: what a status is about.
SUBJECTS: dict[str, str] = {
    "1.1": "Function Requester",
    "1.2": "Function Provider",
    "1.2.1": "Validity Period",
    "1.6": "Function",
    "8.1": "eUICC",
    "8.1.1": "EID",
    "8.2": "Profile",
    "8.2.1": "Profile ICCID",
    "8.2.5": "Profile Type",
    "8.2.6": "Matching ID",
    "8.2.7": "Confirmation Code",
    "8.8": "SM-DP+",
    "8.8.1": "SM-DP+ Address",
    "8.9": "SM-DS",
    "8.9.5": "Event Record",
}

# Reason codes: what is wrong with the subject.
REASONS: dict[str, str] = {
    "1.1": "Unknown (Identification or Authentication)",
    "1.2": "Not Allowed (Authorisation)",
    "2.1": "Invalid",
    "2.2": "Mandatory Element Missing",
    "2.3": "Conditional Element Missing",
    "3.1": "Unsupported",
    "3.3": "Already in Use",
    "3.5": "Invalid Transition",
    "3.7": "Unavailable",
    "3.8": "Refused",
    "3.9": "Unknown",
    "3.10": "Invalid Association",
    "4.2": "Execution Error",
    "4.4": "Busy",
    "5.1": "Inaccessible",
    "5.2": "Timeout",
    "5.3": "Time to Live Expired",
    "5.4": "Delivered With No Response",
    "6.1": "Verification Failed",
    "6.3": "Expired",
}


@dataclass(frozen=True)
class StatusCode:
    """One subject/reason pair, e.g. StatusCode("8.2.6", "3.3")."""

    subject: str
    reason: str

    @property
    def description(self) -> str:
        subject = SUBJECTS.get(self.subject, f"subject {self.subject}")
        reason = REASONS.get(self.reason, f"reason {self.reason}")
        return f"{subject} – {reason}"

    def __str__(self) -> str:
        return f"{self.subject}/{self.reason} ({self.description})"


S = StatusCode

# The refusals simsmith's SM-DP+ side gives (simcore.smdp.es2plus), by name.
EID_INVALID = S("8.1.1", "2.1")
EID_INVALID_ASSOCIATION = S("8.1.1", "3.10")  # another EID is linked to the Profile
ICCID_NOT_ALLOWED = S("8.2.1", "1.2")  # another requester's order
ICCID_INVALID = S("8.2.1", "2.1")  # not an ICCID (E.118: 19 or 20 digits, 89, Luhn)
ICCID_MISSING = S("8.2.1", "2.2")
ICCID_INVALID_TRANSITION = S("8.2.1", "3.5")  # the Profile's state does not allow the function
ICCID_UNAVAILABLE = S("8.2.1", "3.7")  # not in state "available" for DownloadOrder
ICCID_UNKNOWN = S("8.2.1", "3.9")
PROFILE_TYPE_REFUSED = S("8.2.5", "3.8")  # the ICCID given is not of the Profile Type given
PROFILE_TYPE_UNAVAILABLE = S("8.2.5", "3.7")  # no Profile of that type is available
PROFILE_TYPE_UNKNOWN = S("8.2.5", "3.9")
PROFILE_TYPE_MISSING = S("8.2.5", "2.3")  # neither ICCID nor Profile Type given
MATCHING_ID_INVALID = S("8.2.6", "2.1")
MATCHING_ID_ALREADY_IN_USE = S("8.2.6", "3.3")
MATCHING_ID_INVALID_ASSOCIATION = S("8.2.6", "3.10")
CONFIRMATION_CODE_INVALID = S("8.2.7", "2.1")
SMDS_INACCESSIBLE = S("8.9", "5.1")
FUNCTION_INVALID = S("1.6", "2.1")  # a malformed request (a field of the wrong type or form)
FUNCTION_MISSING_ELEMENT = S("1.6", "2.2")
# The function provider (simsmith's SM-DP+ side) failed inside: a database that is busy, or
# anything unforeseen (4.2 only when no more accurate code applies). Neither is recorded, so the
# requester may retry with the same functionCallIdentifier.
PROVIDER_EXECUTION_ERROR = S("1.2", "4.2")
PROVIDER_BUSY = S("1.2", "4.4")
REQUESTER_NOT_ALLOWED = S("1.1", "1.2")  # header requester not the authenticated client
