"""ES2+ messages (GSMA SGP.22 v2.5 §5.3 functions, §6.5 JSON binding), as pydantic models.

Field names are the spec's JSON names (camelCase); Python code uses snake_case attributes and
`dump()` writes the JSON form. Every request starts with `header` (§6.5.1.3:
functionRequesterIdentifier, functionCallIdentifier); every response with `header` holding
functionExecutionStatus (§6.5.1.4). Unknown fields from a peer are ignored, not refused: SM-DP+
vendors add their own.

The confirmation code is a secret: it never appears in a repr or a validation error.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from pydantic.alias_generators import to_camel

from esim.es2plus.codes import FunctionExecutionStatus, StatusCode

# SGP.22 §6.5.1 HTTP binding.
ADMIN_PROTOCOL = "gsma/rsp/v2.5.0"
ADMIN_PROTOCOL_HEADER = "X-Admin-Protocol"
CONTENT_TYPE = "application/json"
PATH_PREFIX = "/gsma/rsp2/es2plus"


class Message(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore",
                              hide_input_in_errors=True, frozen=True)

    def dump(self) -> dict[str, Any]:
        """The JSON object as sent on the wire (camelCase, absent optional fields left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class RequestHeader(Message):
    function_requester_identifier: str = Field(min_length=1)
    function_call_identifier: str = Field(min_length=1)


class StatusCodeData(Message):
    subject_code: str
    reason_code: str
    subject_identifier: str | None = None
    message: str | None = None

    @property
    def code(self) -> StatusCode:
        return StatusCode(self.subject_code, self.reason_code)


class ExecutionStatus(Message):
    status: FunctionExecutionStatus
    status_code_data: StatusCodeData | None = None


class ResponseHeader(Message):
    function_execution_status: ExecutionStatus


class Request(Message):
    header: RequestHeader


class Response(Message):
    header: ResponseHeader


def success_header(warning: StatusCodeData | None = None) -> ResponseHeader:
    status = (FunctionExecutionStatus.EXECUTED_WITH_WARNING if warning
              else FunctionExecutionStatus.EXECUTED_SUCCESS)
    return ResponseHeader(function_execution_status=ExecutionStatus(
        status=status, status_code_data=warning))


def failed_header(code: StatusCode, message: str | None = None,
                  subject_identifier: str | None = None) -> ResponseHeader:
    return ResponseHeader(function_execution_status=ExecutionStatus(
        status=FunctionExecutionStatus.FAILED,
        status_code_data=StatusCodeData(subject_code=code.subject, reason_code=code.reason,
                                        subject_identifier=subject_identifier, message=message)))


# --- §5.3.1 DownloadOrder ---------------------------------------------------------------------

class DownloadOrderRequest(Request):
    eid: str | None = None
    iccid: str | None = None
    profile_type: str | None = None


class DownloadOrderResponse(Response):
    iccid: str | None = None  # present when executed


# --- §5.3.2 ConfirmOrder ----------------------------------------------------------------------

class ConfirmOrderRequest(Request):
    iccid: str
    eid: str | None = None
    matching_id: str | None = None
    confirmation_code: str | None = Field(default=None, repr=False)
    smds_address: str | None = None
    # Strict: JSON true or false only ("yes", "1", 1 are refused, not read as true).
    release_flag: StrictBool


class ConfirmOrderResponse(Response):
    eid: str | None = None
    matching_id: str | None = None
    smdp_address: str | None = None


# --- §5.3.3 CancelOrder -----------------------------------------------------------------------

FinalProfileStatus = Literal["Available", "Unavailable"]


class CancelOrderRequest(Request):
    iccid: str
    eid: str | None = None
    matching_id: str | None = None
    final_profile_status_indicator: FinalProfileStatus


class CancelOrderResponse(Response):
    pass


# --- §5.3.4 ReleaseProfile --------------------------------------------------------------------

class ReleaseProfileRequest(Request):
    iccid: str


class ReleaseProfileResponse(Response):
    pass


# --- §5.3.5 HandleDownloadProgressInfo (SM-DP+ → operator) ------------------------------------

class NotificationPoint:
    """SGP.22 §5.3.5 notificationPointId values."""

    ELIGIBILITY_AND_RETRY_LIMIT_CHECK = 1
    CONFIRMATION_FAILURE = 2
    BPP_DOWNLOAD = 3
    BPP_INSTALLATION = 4


class HandleDownloadProgressInfoRequest(Request):
    eid: str | None = None
    iccid: str
    profile_type: str | None = None
    timestamp: str  # W3C date-time, as sent
    notification_point_id: int
    notification_point_status: ExecutionStatus
    result_data: str | None = None  # base64 ProfileInstallationResult, when the eUICC sent one


class HandleDownloadProgressInfoResponse(Response):
    pass


# Function name → (path, request model, response model).
FUNCTIONS: dict[str, tuple[str, type[Request], type[Response]]] = {
    "DownloadOrder": (f"{PATH_PREFIX}/downloadOrder", DownloadOrderRequest,
                      DownloadOrderResponse),
    "ConfirmOrder": (f"{PATH_PREFIX}/confirmOrder", ConfirmOrderRequest, ConfirmOrderResponse),
    "CancelOrder": (f"{PATH_PREFIX}/cancelOrder", CancelOrderRequest, CancelOrderResponse),
    "ReleaseProfile": (f"{PATH_PREFIX}/releaseProfile", ReleaseProfileRequest,
                       ReleaseProfileResponse),
    "HandleDownloadProgressInfo": (f"{PATH_PREFIX}/handleDownloadProgressInfo",
                                   HandleDownloadProgressInfoRequest,
                                   HandleDownloadProgressInfoResponse),
}
