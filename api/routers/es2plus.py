"""ES2+ over HTTPS (GSMA SGP.22 v2.5 §5.3, JSON binding §6.5): simsmith's SM-DP+ endpoint
(DownloadOrder, ConfirmOrder, CancelOrder, ReleaseProfile: role `order`) and the
HandleDownloadProgressInfo receiver (role `notify`), at the spec's paths
`/gsma/rsp2/es2plus/<function>`. `es2plus_router(roles)` serves the functions of some roles
only: a listener per role (api.es2plus_listener.es2plus_app(..., roles=…)) answers 404 to the
other role's paths. The API app mounts the receiver only (`router`): it is the operator's side.

Who may call what is simcore.smdp.access's table (`app.state.es2plus_policy`, else
SIMSMITH_ES2PLUS_ACCESS): a client without the function's role, or naming an operator it may
not speak for, gets Failed 1.1 / 1.2. ES2+ is refused over plain HTTP (403) unless the lab flag
SIMSMITH_ES2PLUS_ALLOW_PLAIN_HTTP is set (logged loudly).

Authentication, one of:
- **mutual TLS**: the server runs with `ssl_cert_reqs=CERT_REQUIRED` and `ssl_ca_certs`, so only
  clients with a certificate from a trusted CA get a connection at all; the listener
  (api.es2plus_listener) hands the verified certificate to the app (the ASGI TLS extension),
  and the client is its subject's CN;
- **configured credentials** (`SIMSMITH_ES2PLUS_CREDENTIALS="name=secret;…"`, HTTP Basic), e.g.
  behind a TLS-terminating proxy.
The client may act as the functionRequesterIdentifier equal to its name, or those
`SIMSMITH_ES2PLUS_REQUESTERS="name=req1|req2;…"` grants it.

Every answer carries `X-Admin-Protocol`; a refusal is HTTP 200 with status Failed and SGP.22
subject/reason codes (that is ES2+); HandleDownloadProgressInfo answers 204 when accepted.
A body that is not JSON is Failed 1.6 / 2.1 like any malformed request. A request that is not
authenticated, or over plain HTTP, gets an RFC 9457 problem (api.problems), as does a path or
method that is not ES2+ (404 / 405); every one of them carries `X-Admin-Protocol` too.

The router needs `app.state.es2plus` (a simcore.smdp.es2plus.Es2PlusEndpoint) or the API's
`app.state.ctx` (engine and settings), from which it builds one on first use.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from typing import TypeVar

from cryptography import x509
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.problems import problem_response
from esim.es2plus import codes
from esim.es2plus.messages import ADMIN_PROTOCOL, ADMIN_PROTOCOL_HEADER, CONTENT_TYPE, FUNCTIONS
from esim.es2plus.messages import Response as Es2PlusResponse
from esim.pki import certificate_identity
from simcore.smdp.access import (
    ALL_ROLES,
    FUNCTION_ROLES,
    AccessDenied,
    AccessPolicy,
    Es2PlusAccessSettings,
    Role,
    configured_policy,
    warn_plain_http,
)
from simcore.smdp.es2plus import Es2PlusEndpoint, Es2PlusEndpointSettings, Es2PlusRefused

_ADMIN = {ADMIN_PROTOCOL_HEADER: ADMIN_PROTOCOL}
R = TypeVar("R", bound=Response)


def _endpoint(request: Request) -> Es2PlusEndpoint:
    state = request.app.state
    endpoint: Es2PlusEndpoint | None = getattr(state, "es2plus", None)
    if endpoint is None:
        ctx = getattr(state, "ctx", None)
        if ctx is None:
            raise RuntimeError("the ES2+ router needs app.state.es2plus or app.state.ctx")
        options = Es2PlusEndpointSettings.from_settings()
        endpoint = Es2PlusEndpoint(ctx.engine, ctx.settings.smdp_address,
                                   authorize=_policy(request).may_act_as,
                                   call_window=options.call_window,
                                   order_validity=options.order_validity,
                                   received_points=options.received_points())
        state.es2plus = endpoint
    return endpoint


def _policy(request: Request) -> AccessPolicy:
    """The access table: app.state.es2plus_policy, else the environment's (built once)."""
    state = request.app.state
    policy: AccessPolicy | None = getattr(state, "es2plus_policy", None)
    if policy is None:
        policy = configured_policy(Es2PlusEndpointSettings.from_settings().requester_map())
        state.es2plus_policy = policy
    return policy


def _plain_http_allowed(request: Request) -> bool:
    state = request.app.state
    allowed: bool | None = getattr(state, "es2plus_allow_plain_http", None)
    if allowed is None:
        allowed = Es2PlusAccessSettings.from_settings().allow_plain_http
        state.es2plus_allow_plain_http = allowed
        if allowed:
            warn_plain_http(str(request.base_url))
    return allowed


def _credentials(request: Request) -> dict[str, str]:
    creds: dict[str, str] | None = getattr(request.app.state, "es2plus_credentials", None)
    if creds is None:
        creds = Es2PlusEndpointSettings.from_settings().credential_map()
        request.app.state.es2plus_credentials = creds
    return creds


def client_identity(request: Request) -> str | None:
    """Who is calling: the verified client certificate's CN, or a configured credential's
    name (HTTP Basic). None when neither."""
    tls = request.scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or ()
    if chain:
        return certificate_identity(x509.load_pem_x509_certificate(chain[0].encode()))
    auth = request.headers.get("authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            name, _, secret = base64.b64decode(auth[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        expected = _credentials(request).get(name)
        if expected is not None and hmac.compare_digest(secret.encode(), expected.encode()):
            return name
    return None


def with_admin_protocol(response: R) -> R:
    response.headers.setdefault(ADMIN_PROTOCOL_HEADER, ADMIN_PROTOCOL)
    return response


def _answer(answer: Es2PlusResponse) -> JSONResponse:
    return JSONResponse(answer.dump(), headers=_ADMIN, media_type=CONTENT_TYPE)


def function_endpoint(function: str) -> Callable[[Request], Awaitable[Response]]:
    response_model = FUNCTIONS[function][2]

    async def es2plus_function(request: Request) -> Response:
        if request.url.scheme != "https" and not _plain_http_allowed(request):
            return problem_response(
                request, "es2plus-requires-https",
                "ES2+ runs over HTTPS only (mutual TLS, or HTTP Basic behind a TLS-terminating "
                "proxy that forwards the scheme); plain HTTP is refused", headers=_ADMIN)
        principal = client_identity(request)
        if principal is None:
            return problem_response(
                request, "unauthenticated",
                "ES2+ needs a client certificate from a trusted CA or configured credentials",
                headers={**_ADMIN, "WWW-Authenticate": 'Basic realm="es2plus"'})
        try:
            _policy(request).check_role(principal, function)
        except AccessDenied as denied:
            return _answer(Es2PlusRefused(codes.REQUESTER_NOT_ALLOWED, str(denied)).answer(
                response_model))
        try:
            body = await request.json()
        except ValueError:
            # Still ES2+: a Failed answer with SGP.22 codes (1.6 Function / 2.1 Invalid), which
            # any ES2+ client decodes; not a problem document only simsmith's clients read.
            return _answer(Es2PlusRefused(codes.FUNCTION_INVALID, "the request body is not JSON"
                                          ).answer(response_model))
        answer = await run_in_threadpool(_endpoint(request).handle, function, body,
                                         principal=principal)
        if (function == "HandleDownloadProgressInfo"
                and answer.header.function_execution_status.status.executed):
            return Response(status_code=204, headers=_ADMIN)
        return _answer(answer)

    es2plus_function.__name__ = function[0].lower() + function[1:]
    es2plus_function.__doc__ = f"ES2+.{function} (GSMA SGP.22 §5.3)."
    return es2plus_function


def es2plus_router(roles: frozenset[Role] | set[Role] = ALL_ROLES) -> APIRouter:
    """The routes of the ES2+ functions of `roles` (order: the SM-DP+ functions; notify:
    HandleDownloadProgressInfo)."""
    router = APIRouter(tags=["ES2+"])
    for function, (path, request_model, response_model) in FUNCTIONS.items():
        if FUNCTION_ROLES[function] not in roles:
            continue
        router.add_api_route(
            path, function_endpoint(function), methods=["POST"], name=f"es2plus_{function}",
            summary=f"ES2+ {function}",
            openapi_extra={"requestBody": {"required": True, "content": {CONTENT_TYPE: {
                "schema": request_model.model_json_schema(by_alias=True)}}}},
            responses={200: {"description": "ES2+ answer (Executed-* or Failed with codes)",
                             "content": {CONTENT_TYPE: {
                                 "schema": response_model.model_json_schema(by_alias=True)}}},
                       204: {"description": "notification accepted"},
                       401: {"description": "no trusted client certificate or credentials"},
                       403: {"description": "plain HTTP: ES2+ runs over HTTPS only"}})
    return router


# The API app is the operator's side: it receives HandleDownloadProgressInfo only.
router = es2plus_router({Role.NOTIFY})
