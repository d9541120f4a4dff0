"""ES2+ over HTTPS (GSMA SGP.22 v2.5 §5.3, JSON binding §6.5): simsmith's SM-DP+ endpoint
(DownloadOrder, ConfirmOrder, CancelOrder, ReleaseProfile: role `order`) and the
HandleDownloadProgressInfo receiver (role `notify`), at the spec's paths
`/gsma/rsp2/es2plus/<function>`. `es2plus_router(roles)` serves the functions of some roles only:
a listener per role (`es2plus_app(..., roles=…)`) answers 404 to the other role's paths. The
API app mounts the receiver only (`router`): it is the operator's side.

Who may call what is simcore.es2plus_access's table (`app.state.es2plus_policy`, else
SIMSMITH_ES2PLUS_ACCESS): a client without the function's role, or naming an operator it may
not speak for, gets Failed 1.1 / 1.2. ES2+ is refused over plain HTTP (403) unless the lab flag
SIMSMITH_ES2PLUS_ALLOW_PLAIN_HTTP is set (logged loudly).

Authentication, one of:
- **mutual TLS**: the server runs with `ssl_cert_reqs=CERT_REQUIRED` and `ssl_ca_certs`, so only
  clients with a certificate from a trusted CA get a connection at all; uvicorn's HTTP protocol
  `MtlsH11Protocol` (below) hands the verified certificate to the app (the ASGI TLS extension),
  and the client is its subject's CN;
- **configured credentials** (`SIMSMITH_ES2PLUS_CREDENTIALS="name=secret;…"`, HTTP Basic), e.g.
  behind a TLS-terminating proxy.
The client may act as the functionRequesterIdentifier equal to its name, or those
`SIMSMITH_ES2PLUS_REQUESTERS="name=req1|req2;…"` grants it.

Every answer carries `X-Admin-Protocol`; a refusal is HTTP 200 with status Failed and SGP.22
subject/reason codes (that is ES2+); HandleDownloadProgressInfo answers 204 when accepted.
A request that is not authenticated or not JSON gets an RFC 9457 problem.

The router needs `app.state.es2plus` (a simcore.es2plus_server.Es2PlusEndpoint) or the API's
`app.state.ctx` (engine and settings), from which it builds one on first use.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from esim.es2plus import codes
from esim.es2plus.messages import ADMIN_PROTOCOL, ADMIN_PROTOCOL_HEADER, CONTENT_TYPE, FUNCTIONS
from esim.pki import DevPki, certificate_identity, dev_init
from simcore.es2plus_access import (
    ALL_ROLES,
    FUNCTION_ROLES,
    AccessDenied,
    AccessPolicy,
    Es2PlusAccessSettings,
    Role,
    configured_policy,
    warn_plain_http,
)
from simcore.es2plus_server import Es2PlusEndpoint, Es2PlusEndpointSettings, Es2PlusRefused
from simcore.smdp_es2plus import Es2PlusSmdp, SmdpSettings, es2plus_smdp

_PROBLEM_BASE = "https://simsmith.dev/problems/"


def _problem(status: int, kind: str, detail: str,
             headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"type": _PROBLEM_BASE + kind, "title": kind.replace("-", " "), "status": status,
         "detail": detail},
        status_code=status, media_type="application/problem+json",
        headers={ADMIN_PROTOCOL_HEADER: ADMIN_PROTOCOL, **(headers or {})})


def _endpoint(request: Request) -> Es2PlusEndpoint:
    state = request.app.state
    endpoint: Es2PlusEndpoint | None = getattr(state, "es2plus", None)
    if endpoint is None:
        ctx = getattr(state, "ctx", None)
        if ctx is None:
            raise RuntimeError("the ES2+ router needs app.state.es2plus or app.state.ctx")
        endpoint = Es2PlusEndpoint(ctx.engine, ctx.settings.smdp_address,
                                   authorize=_policy(request).may_act_as)
        state.es2plus = endpoint
    return endpoint


def _policy(request: Request) -> AccessPolicy:
    """The access table: app.state.es2plus_policy, else the environment's (built once)."""
    state = request.app.state
    policy: AccessPolicy | None = getattr(state, "es2plus_policy", None)
    if policy is None:
        policy = configured_policy(Es2PlusEndpointSettings().requester_map())
        state.es2plus_policy = policy
    return policy


def _plain_http_allowed(request: Request) -> bool:
    state = request.app.state
    allowed: bool | None = getattr(state, "es2plus_allow_plain_http", None)
    if allowed is None:
        allowed = Es2PlusAccessSettings().allow_plain_http
        state.es2plus_allow_plain_http = allowed
        if allowed:
            warn_plain_http(str(request.base_url))
    return allowed


def _credentials(request: Request) -> dict[str, str]:
    creds: dict[str, str] | None = getattr(request.app.state, "es2plus_credentials", None)
    if creds is None:
        creds = Es2PlusEndpointSettings().credential_map()
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


def _route(function: str) -> Callable[[Request], Awaitable[Response]]:
    response_model = FUNCTIONS[function][2]

    async def es2plus_function(request: Request) -> Response:
        if request.url.scheme != "https" and not _plain_http_allowed(request):
            return _problem(403, "es2plus-requires-https",
                            "ES2+ runs over HTTPS only (mutual TLS, or HTTP Basic behind a "
                            "TLS-terminating proxy that forwards the scheme); plain HTTP is "
                            "refused")
        principal = client_identity(request)
        if principal is None:
            return _problem(401, "unauthenticated",
                            "ES2+ needs a client certificate from a trusted CA or configured "
                            "credentials", {"WWW-Authenticate": 'Basic realm="es2plus"'})
        try:
            _policy(request).check_role(principal, function)
        except AccessDenied as denied:
            return JSONResponse(
                Es2PlusRefused(codes.REQUESTER_NOT_ALLOWED, str(denied)).answer(
                    response_model).dump(),
                headers={ADMIN_PROTOCOL_HEADER: ADMIN_PROTOCOL}, media_type=CONTENT_TYPE)
        try:
            body = await request.json()
        except ValueError:
            return _problem(400, "invalid-json", "the request body is not JSON")
        answer = await run_in_threadpool(_endpoint(request).handle, function, body,
                                         principal=principal)
        headers = {ADMIN_PROTOCOL_HEADER: ADMIN_PROTOCOL}
        if (function == "HandleDownloadProgressInfo"
                and answer.header.function_execution_status.status.executed):
            return Response(status_code=204, headers=headers)
        return JSONResponse(answer.dump(), headers=headers, media_type=CONTENT_TYPE)

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
            path, _route(function), methods=["POST"], name=f"es2plus_{function}",
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


# --- mutual TLS: hand the verified client certificate to the app ---------------------------------

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


class _WithClientCert:
    """Adds the ASGI TLS extension (`client_cert_chain`, PEM) to every request's scope."""

    def __init__(self, app: ASGIApp, ssl_object: ssl.SSLObject) -> None:
        self.app = app
        der = ssl_object.getpeercert(binary_form=True)
        pem = ssl.DER_cert_to_PEM_cert(der) if der else None
        self.tls = {"server_cert": None, "client_cert_chain": [pem] if pem else [],
                    "client_cert_name": None, "client_cert_error": None,
                    "tls_version": None, "cipher_suite": None}

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope.setdefault("extensions", {})["tls"] = self.tls
        await self.app(scope, receive, send)


class MtlsH11Protocol(H11Protocol):
    """uvicorn's h11 protocol passing the peer certificate to the app: run uvicorn with
    `http=MtlsH11Protocol`, `ssl_cert_reqs=ssl.CERT_REQUIRED` and `ssl_ca_certs=<CA bundle>`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.app = _WithClientCert(self.app, ssl_object)  # type: ignore[assignment]


class MtlsHttpToolsProtocol(HttpToolsProtocol):
    """The same on uvicorn's httptools protocol (llhttp, in C): what MtlsServer runs. uvicorn's
    h11 protocol parses in Python, a large share of an ES2+ call's server time."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.app = _WithClientCert(self.app, ssl_object)  # type: ignore[assignment]


# --- a standalone ES2+ listener (its own port, client certificates required) ---------------------

def es2plus_app(endpoint: Es2PlusEndpoint, credentials: dict[str, str] | None = None, *,
                roles: frozenset[Role] | set[Role] = ALL_ROLES,
                policy: AccessPolicy | None = None) -> Starlette:
    """An app serving only the ES2+ routes of `roles` on `endpoint` (for a listener of its own:
    mutual TLS with CERT_REQUIRED must not be imposed on the API's key-authenticated routes).
    `policy`: the access table (default: SIMSMITH_ES2PLUS_ACCESS, else none)."""
    # A bare Starlette app: the routes take the Request themselves, and FastAPI's dependency
    # and response machinery (for the API's OpenAPI) costs time on every call here.
    app = Starlette(routes=[Route(path, _route(function), methods=["POST"])
                            for function, (path, _, _) in FUNCTIONS.items()
                            if FUNCTION_ROLES[function] in roles])
    app.state.es2plus = endpoint
    app.state.es2plus_credentials = credentials or {}
    if policy is not None:
        app.state.es2plus_policy = policy
    return app


class MtlsServer:
    """uvicorn serving `app` over HTTPS with client certificates required, in a thread:

        server = MtlsServer(es2plus_app(endpoint), cert=…, key=…, ca=…).start()
        server.url   # https://127.0.0.1:<port>
        server.stop()

    Port 0 picks a free port."""

    def __init__(self, app: Starlette, *, cert: Path, key: Path, ca: Path,
                 host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
                 keep_alive: int = 75) -> None:
        # The protocol named (IPPROTO_TCP): asyncio then sets TCP_NODELAY on accepted
        # connections (it checks the listener's `proto`). Without it an answer's head and body
        # (two writes) waited for the client's delayed ACK: ~40 ms per ES2+ call on loopback.
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                   socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(
            app, http=MtlsHttpToolsProtocol, lifespan="off", log_level=log_level,
            access_log=False, timeout_keep_alive=keep_alive,
            ssl_certfile=str(cert), ssl_keyfile=str(key), ssl_ca_certs=str(ca),
            ssl_cert_reqs=ssl.CERT_REQUIRED))
        self._thread = threading.Thread(target=self.server.run,
                                        kwargs={"sockets": [self._sock]}, daemon=True,
                                        name="es2plus-mtls")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def run(self) -> None:
        """Serve in this thread until SIGINT/SIGTERM (the `simsmith smdp serve` command)."""
        try:
            self.server.run(sockets=[self._sock])
        finally:
            self._sock.close()

    def start(self, timeout: float = 10.0) -> MtlsServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the ES2+ listener on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()


@dataclass
class EmbeddedEs2Plus:
    """simsmith's own ES2+ endpoint on a loopback listener with mutual TLS, and the SmdpPort
    that reaches it over HTTPS: the embedded default with real ES2+ calls in between."""

    server: MtlsServer
    smdp: Es2PlusSmdp

    def close(self) -> None:
        self.smdp.close()
        self.server.stop()


def start_embedded_es2plus(engine: Engine, smdp_address: str, pki_dir: Path, *,
                           host: str = "127.0.0.1", port: int = 0) -> EmbeddedEs2Plus:
    """Start the ES2+ endpoint on `host:port` (0: a free port) with the development PKI in
    `pki_dir` (created when absent), and return it with an `Es2PlusSmdp` client of it. The
    client's requester identifier is its certificate's CN."""
    pki = DevPki(pki_dir)
    if not all(p.exists() for p in pki.files()):
        dev_init(pki_dir)
    requester = certificate_identity(x509.load_pem_x509_certificate(
        pki.client_cert.read_bytes()))
    server = MtlsServer(es2plus_app(Es2PlusEndpoint(engine, smdp_address), roles={Role.ORDER}),
                        cert=pki.server_cert, key=pki.server_key, ca=pki.ca,
                        host=host, port=port).start()
    try:
        # Same store: no state check or mirror around the calls; the client closes idle
        # connections well before the listener would (keep-alive 75 s).
        smdp = es2plus_smdp(engine, SmdpSettings(
            url=server.url, cert=pki.client_cert, key=pki.client_key, ca=pki.ca,
            requester_id=requester, address=smdp_address), shared_store=True,
            keepalive_expiry=30.0)
    except Exception:
        server.stop()
        raise
    return EmbeddedEs2Plus(server, smdp)
