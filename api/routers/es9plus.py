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
protocol (§3.1.2). The router needs `app.state.es9plus` (an Es9PlusCore),
`app.state.es9plus_max_body` (bytes) and `app.state.es9plus_threads` (a CapacityLimiter, or
None to call the core in the event loop's thread: the ES9+ listener's loop is its own, apart
from the API's, and the hand-over to a thread cost ~2 ms of CPU per download).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

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

def answer(status: int, body: dict[str, Any] | None) -> Response:
    """An ES9+ answer: JSON (or 204) with `X-Admin-Protocol`."""
    if body is None:
        return Response(status_code=status, headers=ADMIN)
    return Response(json.dumps(body, separators=(",", ":")), status_code=status,
                    headers=ADMIN, media_type=CONTENT_TYPE)


def _failed(code: wire.StatusCode, message: str, status: int = 200) -> Response:
    return answer(status, wire.failure(code, message))


class _Malformed(ValueError):
    pass


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


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` (stops reading there)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _content_type_ok(value: str | None) -> bool:
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


def function_endpoint(function: str) -> Any:
    async def endpoint(request: Request) -> Response:
        protocol = request.headers.get(wire.ADMIN_PROTOCOL_HEADER)
        if protocol is None:
            return _failed(wire.FUNCTION_MISSING_ELEMENT,
                           f"header {wire.ADMIN_PROTOCOL_HEADER} is missing", 400)
        if not _PROTOCOL.match(protocol.strip()):
            return _failed(wire.FUNCTION_INVALID,
                           f"header {wire.ADMIN_PROTOCOL_HEADER}: {protocol[:40]!r} is not "
                           "gsma/rsp/v2.x.y", 400)
        if not _content_type_ok(request.headers.get("content-type")):
            return _failed(wire.FUNCTION_INVALID,
                           "header Content-Type: expected application/json (UTF-8)", 415)
        limit: int = request.app.state.es9plus_max_body
        raw = await _read_body(request, limit)
        if raw is None:
            return _failed(wire.FUNCTION_INVALID, f"$: the body is larger than {limit} bytes",
                           413)
        try:
            body = parse_body(raw)
        except _Malformed as e:
            return _failed(wire.FUNCTION_INVALID, str(e))
        core: Es9PlusCore = request.app.state.es9plus
        threads: CapacityLimiter | None = request.app.state.es9plus_threads
        try:
            if threads is None:  # in the listener's own thread: no hand-over per request
                result = core.handle(function, body)
            else:
                result = await to_thread.run_sync(core.handle, function, body,
                                                  limiter=threads)
        except Exception as e:  # the store or the HSM failed: ES9+'s "execution error"
            # Type and message only: no request body, no traceback locals (a UPP is in them).
            log.error("es9plus function failed", function=function, error=type(e).__name__,
                      detail=str(e)[:200])
            if function == "handleNotification":
                return answer(204, None)
            return _failed(wire.EXECUTION_ERROR, "internal error; try again later")
        return answer(result.status, result.body)

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
    it takes the Request and returns the Response, so FastAPI's dependency solving and answer
    handling around it would only cost time (a download makes four requests)."""

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
