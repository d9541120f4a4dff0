"""An ES2+ client (operator → SM-DP+, GSMA SGP.22 v2.5 §5.3, JSON binding §6.5) over HTTPS
with mutual TLS.

    client = Es2PlusClient("https://smdp.example.com", "1.3.6.1.4.1.99999",
                           ca="ca.pem", cert="client.pem", key="client.key")
    order = client.download_order(iccid="8988…")
    confirmed = client.confirm_order(iccid=order.response.iccid, release_flag=True)
    confirmed.response.matching_id

Each call gets a fresh functionCallIdentifier (a UUID) and the header X-Admin-Protocol. A
Failed or Expired answer raises `Es2PlusFunctionFailed` carrying the subject and reason codes;
an answer that is not ES2+ raises `Es2PlusProtocolError`; no answer raises
`Es2PlusTransportError` (`Es2PlusTlsError` for certificate faults, `Es2PlusTimeout`).

Retries: a request that never left (connection refused, connect timeout) is retried for every
function. A request that may have reached the peer (read timeout, reset, 502/503/504) is retried
only for functions safe to repeat — HandleDownloadProgressInfo, whose receiver treats a repeated
functionCallIdentifier as the same notification. DownloadOrder, ConfirmOrder, CancelOrder and
ReleaseProfile are not repeated blindly: a second DownloadOrder would reserve a second Profile.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from typing import Any, Generic, TypeVar

import httpx
from pydantic import ValidationError

from esim.es2plus.codes import FunctionExecutionStatus
from esim.es2plus.errors import (
    Es2PlusExpired,
    Es2PlusFunctionFailed,
    Es2PlusProtocolError,
    Es2PlusTimeout,
    Es2PlusTlsError,
    Es2PlusTransportError,
)
from esim.es2plus.messages import (
    ADMIN_PROTOCOL,
    ADMIN_PROTOCOL_HEADER,
    CONTENT_TYPE,
    FUNCTIONS,
    CancelOrderResponse,
    ConfirmOrderResponse,
    DownloadOrderResponse,
    ExecutionStatus,
    FinalProfileStatus,
    HandleDownloadProgressInfoResponse,
    ReleaseProfileResponse,
    Response,
    StatusCodeData,
)

log = logging.getLogger(__name__)

ResponseT = TypeVar("ResponseT", bound=Response)
StrPath = str | PathLike[str]

# Functions a receiver may get twice without harm (same functionCallIdentifier).
SAFE_TO_REPEAT = frozenset({"HandleDownloadProgressInfo"})
_RETRY_HTTP_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class CallResult(Generic[ResponseT]):
    """An executed function: its call identifier, status (success or with warning), the warning's
    status code data if any, and the decoded response."""

    function: str
    call_id: str
    status: FunctionExecutionStatus
    warning: StatusCodeData | None
    response: ResponseT


def client_ssl_context(ca: StrPath | None = None, cert: StrPath | None = None,
                       key: StrPath | None = None) -> ssl.SSLContext:
    """Verify the server against `ca` (the system store when None); present cert+key."""
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    elif key:
        raise ValueError("a client key was given without its certificate")
    return ctx


def new_call_id() -> str:
    return str(uuid.uuid4())


class Es2PlusClient:
    """One SM-DP+ peer. Thread-safe (httpx.Client is); close() or use as a context manager.

    Connections are kept alive in a pool of up to `max_connections` (one TLS handshake per
    connection, not per call), idle ones closed after `keepalive_expiry` seconds — keep it
    below the server's idle timeout, or a call may meet a connection the server just closed."""

    def __init__(
        self,
        url: str,
        requester_id: str,
        *,
        ca: StrPath | None = None,
        cert: StrPath | None = None,
        key: StrPath | None = None,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        retries: int = 2,
        retry_backoff: float = 0.2,
        admin_protocol: str = ADMIN_PROTOCOL,
        transport: httpx.BaseTransport | None = None,
        call_ids: Callable[[], str] = new_call_id,
        max_connections: int = 64,
        keepalive_expiry: float = 5.0,
    ) -> None:
        if not requester_id:
            raise ValueError("an ES2+ client needs a functionRequesterIdentifier")
        self.url = url.rstrip("/")
        self.requester_id = requester_id
        self.retries = retries
        self.retry_backoff = retry_backoff
        self._call_ids = call_ids
        verify: ssl.SSLContext | bool = True
        if self.url.startswith("https:"):
            verify = client_ssl_context(ca, cert, key)
        # A keep-alive pool as large as the threads that call at once: a connection closed for
        # want of room costs a new TCP and TLS handshake (with client certificate) later.
        self._http = httpx.Client(
            base_url=self.url,
            verify=verify,
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections,
                                keepalive_expiry=keepalive_expiry),
            timeout=httpx.Timeout(timeout, connect=connect_timeout or timeout),
            headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE,
                     ADMIN_PROTOCOL_HEADER: admin_protocol},
        )

    def __repr__(self) -> str:
        return f"Es2PlusClient({self.url!r}, requester={self.requester_id!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Es2PlusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the functions ------------------------------------------------------------------------

    def download_order(self, *, eid: str | None = None, iccid: str | None = None,
                       profile_type: str | None = None) -> CallResult[DownloadOrderResponse]:
        """SGP.22 §5.3.1: reserve a Profile (by ICCID or Profile Type), optionally for an EID."""
        if not iccid and not profile_type:
            raise ValueError("DownloadOrder needs an ICCID or a Profile Type")
        result = self.call("DownloadOrder", {"eid": eid, "iccid": iccid,
                                             "profileType": profile_type},
                           DownloadOrderResponse)
        if not result.response.iccid:
            raise Es2PlusProtocolError("DownloadOrder", "executed without an iccid",
                                       call_id=result.call_id)
        return result

    def confirm_order(self, *, iccid: str, release_flag: bool, eid: str | None = None,
                      matching_id: str | None = None, confirmation_code: str | None = None,
                      smds_address: str | None = None) -> CallResult[ConfirmOrderResponse]:
        """SGP.22 §5.3.2: confirm a reserved Profile; the answer carries the Matching ID."""
        result = self.call("ConfirmOrder", {
            "iccid": iccid, "eid": eid, "matchingId": matching_id,
            "confirmationCode": confirmation_code, "smdsAddress": smds_address,
            "releaseFlag": release_flag}, ConfirmOrderResponse)
        if not result.response.matching_id:
            raise Es2PlusProtocolError("ConfirmOrder", "executed without a matchingId",
                                       call_id=result.call_id)
        return result

    def cancel_order(self, *, iccid: str, final_profile_status: FinalProfileStatus,
                     eid: str | None = None, matching_id: str | None = None,
                     ) -> CallResult[CancelOrderResponse]:
        """SGP.22 §5.3.3: cancel a pending order; the Profile goes back to Available or is
        made Unavailable."""
        return self.call("CancelOrder", {
            "iccid": iccid, "eid": eid, "matchingId": matching_id,
            "finalProfileStatusIndicator": final_profile_status}, CancelOrderResponse)

    def release_profile(self, *, iccid: str) -> CallResult[ReleaseProfileResponse]:
        """SGP.22 §5.3.4: release a confirmed Profile for download."""
        return self.call("ReleaseProfile", {"iccid": iccid}, ReleaseProfileResponse)

    def handle_download_progress_info(
        self, *, iccid: str, notification_point_id: int, status: ExecutionStatus,
        timestamp: str, eid: str | None = None, profile_type: str | None = None,
        result_data: str | None = None, call_id: str | None = None,
    ) -> CallResult[HandleDownloadProgressInfoResponse]:
        """SGP.22 §5.3.5, the SM-DP+ side's notification to the operator (used by simsmith's
        own SM-DP+ and by tests). Repeats are safe: retried with the same call identifier."""
        return self.call("HandleDownloadProgressInfo", {
            "iccid": iccid, "eid": eid, "profileType": profile_type, "timestamp": timestamp,
            "notificationPointId": notification_point_id,
            "notificationPointStatus": status.dump(), "resultData": result_data,
        }, HandleDownloadProgressInfoResponse, call_id=call_id)

    # --- the machinery ------------------------------------------------------------------------

    def call(self, function: str, body: dict[str, Any], response_model: type[ResponseT],
             *, call_id: str | None = None) -> CallResult[ResponseT]:
        """Send one function call; decode and check the answer."""
        path = FUNCTIONS[function][0]
        call_id = call_id or self._call_ids()
        payload = {"header": {"functionRequesterIdentifier": self.requester_id,
                              "functionCallIdentifier": call_id}}
        payload.update({k: v for k, v in body.items() if v is not None})
        content = json.dumps(payload, separators=(",", ":")).encode()
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                reply = self._http.post(path, content=content)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout
                                      | httpx.PoolTimeout)
                error = _transport_error(function, call_id, exc)
                error.request_sent = sent and not isinstance(error, Es2PlusTlsError)
                if (isinstance(error, Es2PlusTlsError) or attempt >= self.retries
                        or (sent and function not in SAFE_TO_REPEAT)):
                    raise error from None
            else:
                log.debug("es2+ %s call=%s -> HTTP %s in %.1f ms", function, call_id,
                          reply.status_code, (time.monotonic() - started) * 1000)
                if not (reply.status_code in _RETRY_HTTP_STATUSES and function in SAFE_TO_REPEAT
                        and attempt < self.retries):
                    return _decode(function, call_id, reply, response_model)
            attempt += 1
            time.sleep(self.retry_backoff * (2 ** (attempt - 1)))


def _ssl_cause(exc: BaseException) -> BaseException | None:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLError):
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def _transport_error(function: str, call_id: str,
                     exc: httpx.TransportError) -> Es2PlusTransportError:
    cause = _ssl_cause(exc)
    text = str(cause or exc) or type(exc).__name__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return Es2PlusTlsError(function, f"the server's certificate was refused: "
                               f"{cause.verify_message or text}", call_id=call_id)
    if isinstance(cause, ssl.SSLEOFError) or (
            isinstance(exc, httpx.RemoteProtocolError) and "without sending a response" in text):
        # A server requiring client certificates drops the connection without an alert when it
        # refuses ours: during the handshake (TLS 1.2) or at the first read (TLS 1.3).
        return Es2PlusTlsError(
            function, "the server closed the connection without an answer: it refused the TLS "
            "handshake, most likely our client certificate (unknown, expired, or not from a CA "
            f"it trusts) [{text}]", call_id=call_id)
    if cause is not None or "SSL" in text:
        return Es2PlusTlsError(function, f"TLS handshake failed: {text}", call_id=call_id)
    if isinstance(exc, httpx.TimeoutException):
        kind = "connecting" if isinstance(exc, httpx.ConnectTimeout) else "waiting for the answer"
        return Es2PlusTimeout(function, f"timed out {kind}", call_id=call_id)
    return Es2PlusTransportError(function, f"no answer: {text}", call_id=call_id)


def _decode(function: str, call_id: str, reply: httpx.Response,
            model: type[ResponseT]) -> CallResult[ResponseT]:
    def protocol(message: str) -> Es2PlusProtocolError:
        return Es2PlusProtocolError(function, message, call_id=call_id,
                                    http_status=reply.status_code)

    if reply.status_code == 204 and function in SAFE_TO_REPEAT:
        # HandleDownloadProgressInfo: "204 No Content" is a plain success (§6.5.2.5).
        return CallResult(function, call_id, FunctionExecutionStatus.EXECUTED_SUCCESS, None,
                          model.model_validate({"header": {"functionExecutionStatus": {
                              "status": "Executed-Success"}}}))
    if reply.status_code != 200:
        raise protocol(f"HTTP {reply.status_code} {reply.reason_phrase}")
    ctype = reply.headers.get("content-type", "")
    if not ctype.startswith(CONTENT_TYPE):
        raise protocol(f"answer is {ctype or 'untyped'}, not {CONTENT_TYPE}")
    proto = reply.headers.get(ADMIN_PROTOCOL_HEADER)
    if proto is not None and not proto.startswith("gsma/rsp/v2."):
        raise protocol(f"{ADMIN_PROTOCOL_HEADER} {proto!r} is not gsma/rsp/v2.x.y")
    try:
        data = reply.json()
    except ValueError:
        raise protocol("answer is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("header"), dict):
        raise protocol("answer has no header")
    try:
        decoded = model.model_validate(data)
    except ValidationError as exc:
        where = ", ".join(".".join(str(p) for p in e["loc"]) + f": {e['msg']}"
                          for e in exc.errors()[:3])
        raise protocol(f"answer does not match {function} ({where})") from None
    fes = decoded.header.function_execution_status
    if not fes.status.executed:
        scd = fes.status_code_data
        cls = Es2PlusExpired if fes.status is FunctionExecutionStatus.EXPIRED \
            else Es2PlusFunctionFailed
        raise cls(function, fes.status, scd.code if scd else None, call_id=call_id,
                  subject_identifier=scd.subject_identifier if scd else None,
                  peer_message=scd.message if scd else None)
    warning = fes.status_code_data if fes.status is FunctionExecutionStatus.EXECUTED_WITH_WARNING \
        else None
    return CallResult(function, call_id, fes.status, warning, decoded)
