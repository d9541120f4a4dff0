"""ES9+ over HTTPS (GSMA SGP.22 v2.5 §5.6 functions, §6.5 JSON binding): the five functions an
LPA calls on simsmith's SM-DP+, at `/gsma/rsp2/es9plus/<function>`, thin over the sans-I/O core
(simcore.smdp.es9plus.Es9PlusCore: every check and refusal is there).

This layer owns the wire only:
- the request must carry `X-Admin-Protocol: gsma/rsp/v2.<x>.<y>` (§6.5.1.1); every answer
  carries simsmith's (`gsma/rsp/v2.5.0`), problems and 404 / 405 included;
- `Content-Type: application/json` (any `charset=utf-8` parameter), answered as
  `application/json;charset=UTF-8`;
- the body is read up to `max_body_bytes` (413 beyond, before the rest is read), must be UTF-8
  JSON with no duplicate member and no NaN / Infinity, and an object; what is wrong is answered
  as ES9+ does — HTTP 200, status Failed, subject 1.6 (Function) with reason 2.1 (Invalid) or
  2.2 (Mandatory Element Missing), the message naming the JSON path (`$.transactionId: …`);
- HandleNotification is answered 204 No Content whatever it held (§6.5.2.4: an LPA cannot act on
  a notification's refusal); the others 200 with the core's body;
- a failure of simsmith itself (the store, the HSM) is Failed 1.2 / 4.2 (Function provider -
  Execution error), logged by type and message only.

No authentication: ES9+ clients are anonymous LPAs; the eUICC is authenticated inside the
protocol (§3.1.2). One implementation, `Es9PlusWire`, answers: `Es9PlusApp` (what the ES9+
listener serves) sends the five functions' POSTs to it straight from the server and everything
else to a FastAPI app, whose routes (`es9plus_router`, for OpenAPI) need
`app.state.es9plus_wire` and run the same. Its `threads` is a CapacityLimiter, or None to call
the core in the event loop's thread: the ES9+ listener's loop is its own, apart from the API's,
and the hand-over to a thread cost ~2 ms of CPU per download.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from esim.sgp22 import es9plus as wire
from simcore.log import get_logger
from simcore.smdp.es9plus import Es9PlusCore

log = get_logger("api.es9plus")

CONTENT_TYPE = "application/json;charset=UTF-8"
ADMIN = {wire.ADMIN_PROTOCOL_HEADER: wire.ADMIN_PROTOCOL}
_PROTOCOL = re.compile(r"gsma/rsp/v2\.[0-9]+\.[0-9]+\Z")
_B64 = r"^[A-Za-z0-9+/]*={0,2}$"


# --- the request and answer bodies, for OpenAPI (the core parses what is received) ------------

class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class InitiateAuthenticationRequest(_Body):
    euiccChallenge: str = Field(pattern=_B64, description="16 random bytes of the eUICC "
                                "(base64)")
    euiccInfo1: str = Field(pattern=_B64, description="EUICCInfo1 (BF20), base64 DER")
    smdpAddress: str = Field(max_length=255, description="The SM-DP+ address the LPA used")


class AuthenticateClientRequest(_Body):
    transactionId: str = Field(pattern=r"^[0-9A-Fa-f]{2,32}$")
    authenticateServerResponse: str = Field(pattern=_B64, description="AuthenticateServer"
                                            "Response (BF38), base64 DER")


class GetBoundProfilePackageRequest(_Body):
    transactionId: str = Field(pattern=r"^[0-9A-Fa-f]{2,32}$")
    prepareDownloadResponse: str = Field(pattern=_B64, description="PrepareDownloadResponse "
                                         "(BF21), base64 DER")


class HandleNotificationRequest(_Body):
    pendingNotification: str = Field(pattern=_B64, description="PendingNotification: a "
                                     "ProfileInstallationResult (BF37) or an "
                                     "OtherSignedNotification, base64 DER")


class CancelSessionRequest(_Body):
    transactionId: str = Field(pattern=r"^[0-9A-Fa-f]{2,32}$")
    cancelSessionResponse: str = Field(pattern=_B64, description="CancelSessionResponse "
                                       "(BF41), base64 DER")


class StatusCodeData(BaseModel):
    subjectCode: str = Field(examples=["8.10.1"])
    reasonCode: str = Field(examples=["3.9"])
    message: str | None = None


class FunctionExecutionStatus(BaseModel):
    status: str = Field(examples=["Executed-Success", "Failed"])
    statusCodeData: StatusCodeData | None = None


class ResponseHeader(BaseModel):
    functionExecutionStatus: FunctionExecutionStatus


class InitiateAuthenticationResponse(BaseModel):
    header: ResponseHeader
    transactionId: str | None = None
    serverSigned1: str | None = None
    serverSignature1: str | None = None
    euiccCiPKIdToBeUsed: str | None = None
    serverCertificate: str | None = Field(default=None, description="CERT.DPauth.ECDSA")


class AuthenticateClientResponse(BaseModel):
    header: ResponseHeader
    transactionId: str | None = None
    profileMetadata: str | None = Field(default=None, description="StoreMetadataRequest")
    smdpSigned2: str | None = None
    smdpSignature2: str | None = None
    smdpCertificate: str | None = Field(default=None, description="CERT.DPpb.ECDSA")


class GetBoundProfilePackageResponse(BaseModel):
    header: ResponseHeader
    transactionId: str | None = None
    boundProfilePackage: str | None = None


class CancelSessionResponse(BaseModel):
    header: ResponseHeader


_FUNCTIONS: dict[str, tuple[type[BaseModel], type[BaseModel] | None, str, str]] = {
    "initiateAuthentication": (
        InitiateAuthenticationRequest, InitiateAuthenticationResponse, "§5.6.1",
        "Start an RSP session: the SM-DP+ checks its address and the eUICC's SGP.22 version "
        "and CIs, and answers serverSigned1 signed with SK.DPauth and CERT.DPauth."),
    "getBoundProfilePackage": (
        GetBoundProfilePackageRequest, GetBoundProfilePackageResponse, "§5.6.2",
        "Check euiccSignature2 (and the confirmation code when the order has one) and answer "
        "the Bound Profile Package, bound to the eUICC's one-time key."),
    "authenticateClient": (
        AuthenticateClientRequest, AuthenticateClientResponse, "§5.6.3",
        "Check the eUICC (certificate chain, euiccSignature1, challenge) and the matching ID "
        "against a released order; answer the profile metadata and smdpSigned2."),
    "handleNotification": (
        HandleNotificationRequest, None, "§5.6.4",
        "A notification from the eUICC: the installation result of this session's download, "
        "or enable / disable / delete of a profile. Always 204."),
    "cancelSession": (
        CancelSessionRequest, CancelSessionResponse, "§5.6.5",
        "The eUICC cancels the session (signed); the order is updated."),
}


# --- the wire ---------------------------------------------------------------------------------

_ADMIN_RAW = (wire.ADMIN_PROTOCOL_HEADER.lower().encode("latin-1"),
              wire.ADMIN_PROTOCOL.encode("latin-1"))
_JSON_RAW = (b"content-type", CONTENT_TYPE.encode("latin-1"))
_HEADERS = (b"x-admin-protocol", b"content-type", b"content-length")
PATHS = {f"{wire.PATH_PREFIX}/{function}": function for function in wire.FUNCTIONS}


class _Malformed(ValueError):
    pass


class _Gone(Exception):
    """The client went away before its request's body was whole."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Malformed(f"$.{key}: appears twice")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise _Malformed(f"{name} is not JSON")


def parse_body(raw: bytes) -> Any:
    """Strict JSON: UTF-8, no duplicate member, no NaN / Infinity. _Malformed names where."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Malformed(f"$: not UTF-8 at byte {e.start}") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _Malformed:
        raise
    except json.JSONDecodeError as e:
        raise _Malformed(f"$: not JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise _Malformed(f"$: not acceptable JSON ({str(e)[:80]})") from None
    except RecursionError:
        raise _Malformed("$: nested too deeply") from None


async def _read_body(receive: Receive, declared: bytes | None, limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` (stops reading there)."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Gone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _content_type_ok(value: str) -> bool:
    if not value:
        return False
    media, _, params = value.partition(";")
    if media.strip().lower() != "application/json":
        return False
    for param in params.split(";"):
        name, _, val = param.partition("=")
        if name.strip().lower() == "charset" and val.strip().strip('"').lower() not in (
                "utf-8", "utf8"):
            return False
    return True


async def _send(send: Send, status: int, body: dict[str, Any] | None) -> None:
    """An ES9+ answer: JSON (or no body) with `X-Admin-Protocol`."""
    if body is None:
        await send({"type": "http.response.start", "status": status, "headers": [_ADMIN_RAW]})
        await send({"type": "http.response.body", "body": b""})
        return
    data = json.dumps(body, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-length", str(len(data)).encode()), _JSON_RAW, _ADMIN_RAW]})
    await send({"type": "http.response.body", "body": data})


@dataclass(frozen=True)
class Es9PlusWire:
    """The five functions on `core`, over ASGI: what `es9plus_app` answers every ES9+ request
    with (straight from the server, the path and method matched here) and what the FastAPI routes
    of `es9plus_router` run. `threads`: a CapacityLimiter to run the core in, or None for the
    event loop's own thread."""

    core: Es9PlusCore
    max_body: int
    threads: CapacityLimiter | None = None

    async def answer(self, function: str, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, body = await self._exchange(function, scope, receive)
        except _Gone:  # nothing to answer
            return
        await _send(send, status, body)

    async def _exchange(self, function: str, scope: Scope, receive: Receive
                        ) -> tuple[int, dict[str, Any] | None]:
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
            if name in _HEADERS and name not in headers:
                headers[name] = value
        if b"x-admin-protocol" not in headers:
            return 400, wire.failure(wire.FUNCTION_MISSING_ELEMENT,
                                     f"header {wire.ADMIN_PROTOCOL_HEADER} is missing")
        protocol = headers[b"x-admin-protocol"].decode("latin-1")
        if not _PROTOCOL.match(protocol.strip()):
            return 400, wire.failure(wire.FUNCTION_INVALID,
                                     f"header {wire.ADMIN_PROTOCOL_HEADER}: {protocol[:40]!r} "
                                     "is not gsma/rsp/v2.x.y")
        if not _content_type_ok(headers.get(b"content-type", b"").decode("latin-1")):
            return 415, wire.failure(wire.FUNCTION_INVALID,
                                     "header Content-Type: expected application/json (UTF-8)")
        raw = await _read_body(receive, headers.get(b"content-length"), self.max_body)
        if raw is None:
            return 413, wire.failure(wire.FUNCTION_INVALID,
                                     f"$: the body is larger than {self.max_body} bytes")
        try:
            body = parse_body(raw)
        except _Malformed as e:
            return 200, wire.failure(wire.FUNCTION_INVALID, str(e))
        try:
            if self.threads is None:  # in the listener's own thread: no hand-over per request
                result = self.core.handle(function, body)
            else:
                result = await to_thread.run_sync(self.core.handle, function, body,
                                                  limiter=self.threads)
        except Exception as e:  # the store or the HSM failed: ES9+'s "execution error"
            # Type and message only: no request body, no traceback locals (a UPP is in them).
            log.error("es9plus function failed", function=function, error=type(e).__name__,
                      detail=str(e)[:200])
            if function == "handleNotification":
                return 204, None
            return 200, wire.failure(wire.EXECUTION_ERROR, "internal error; try again later")
        return result.status, result.body


class Es9PlusApp:
    """The ES9+ listener's ASGI app: a POST to one of the five ES9+ paths is answered by
    Es9PlusWire straight away; anything else (OpenAPI, 404, 405) by the FastAPI app `docs`,
    whose routes describe the same functions. Starlette's middleware and routing on the way to
    the five functions cost ~0.3 ms of CPU per download (four requests) for nothing they do
    here (docs/benchmarks.md)."""

    def __init__(self, es9: Es9PlusWire, docs: ASGIApp) -> None:
        self.es9 = es9
        self.docs = docs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        function = PATHS.get(scope["path"]) if scope["type"] == "http" else None
        if function is None or scope["method"] != "POST":
            await self.docs(scope, receive, send)
            return
        await self.es9.answer(function, scope, receive, send)


class _Exchanged(Response):
    """What an ES9+ route's endpoint returns: the exchange itself, run when Starlette sends the
    answer (it reads the body as Es9PlusWire does, with the same limit)."""

    def __init__(self, es9: Es9PlusWire, function: str) -> None:  # no body of its own
        self.es9, self.function = es9, function
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.es9.answer(self.function, scope, receive, send)


def function_endpoint(function: str) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    async def endpoint(request: Request) -> Response:
        return _Exchanged(request.app.state.es9plus_wire, function)

    endpoint.__name__ = function
    return endpoint


def _openapi(function: str) -> dict[str, Any]:
    request_model, _, _, _ = _FUNCTIONS[function]
    return {"requestBody": {"required": True, "content": {CONTENT_TYPE: {
        "schema": request_model.model_json_schema(ref_template="#/components/schemas/{model}")}}},
        "parameters": [{"name": wire.ADMIN_PROTOCOL_HEADER, "in": "header", "required": True,
                        "schema": {"type": "string", "example": wire.ADMIN_PROTOCOL}}]}


class _Es9PlusRoute(APIRoute):
    """An ES9+ route: described by FastAPI (OpenAPI above), answered by its endpoint itself —
    it takes the Request and returns the exchange, so FastAPI's dependency solving and answer
    handling around it would only cost time."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint  # type: ignore[no-any-return]


def es9plus_router() -> APIRouter:
    router = APIRouter(tags=["ES9+"], route_class=_Es9PlusRoute)
    for function in wire.FUNCTIONS:
        _, response_model, section, summary = _FUNCTIONS[function]
        responses: dict[int | str, dict[str, Any]] = {
            400: {"description": f"{wire.ADMIN_PROTOCOL_HEADER} missing or not v2 (status "
                  "Failed 1.6)"},
            413: {"description": "Body larger than the limit (status Failed 1.6 / 2.1)"},
            415: {"description": "Not application/json (status Failed 1.6 / 2.1)"}}
        if response_model is None:
            responses[204] = {"description": "Taken (or ignored: a notification that does not "
                              "verify changes nothing)"}
            status = 204
        else:
            responses[200] = {"description": "Executed-Success, or Failed with SGP.22 subject "
                              "and reason codes (docs/sgp22.md lists them)",
                              "model": response_model}
            status = 200
        router.add_api_route(
            f"{wire.PATH_PREFIX}/{function}", function_endpoint(function), methods=["POST"],
            status_code=status, responses=responses, include_in_schema=True,
            summary=f"ES9+.{function[0].upper()}{function[1:]} (SGP.22 {section})",
            description=summary, openapi_extra=_openapi(function),
            operation_id=f"es9plus_{function}", response_class=Response)
    return router
