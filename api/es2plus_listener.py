"""The ES2+ listeners (GSMA SGP.22 v2.5 §5.3 over HTTPS; §2.6.6: the ES2+ peers authenticate
each other with TLS certificates): uvicorn serving the ES2+ routes (api.routers.es2plus) on a port
of their own with client certificates required, the peer certificate handed to the app as the
ASGI TLS extension, and the embedded default — simsmith's own endpoint on a loopback listener
with the SmdpPort that reaches it over HTTPS.

Mutual TLS: the server runs with `ssl_cert_reqs=CERT_REQUIRED` and `ssl_ca_certs`, so only
clients with a certificate from a trusted CA get a connection at all; `MtlsHttpToolsProtocol`
(or `MtlsH11Protocol`) passes the verified certificate on, and the client is its subject's CN
(api.routers.es2plus.client_identity). A listener of its own, because CERT_REQUIRED must not be
imposed on the API's key-authenticated routes.
"""

from __future__ import annotations

import asyncio
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
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.problems import response_for
from api.routers.es2plus import function_endpoint, with_admin_protocol
from esim.es2plus.messages import FUNCTIONS
from esim.pki import DevPki, certificate_identity, dev_init
from simcore import telemetry
from simcore.smdp.access import ALL_ROLES, FUNCTION_ROLES, AccessPolicy, Role
from simcore.smdp.es2plus import Es2PlusEndpoint, Es2PlusEndpointSettings
from simcore.smdp.es2plus_port import Es2PlusSmdp, SmdpSettings, es2plus_smdp

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

async def _not_es2plus(request: Request, exc: Exception) -> Response:
    """404 / 405 on the ES2+ listener: a problem document, with `X-Admin-Protocol` like every
    answer of an ES2+ peer (SGP.22 §6.5.1), whatever the path."""
    return with_admin_protocol(response_for(request, exc))


def es2plus_app(endpoint: Es2PlusEndpoint, credentials: dict[str, str] | None = None, *,
                roles: frozenset[Role] | set[Role] = ALL_ROLES,
                policy: AccessPolicy | None = None) -> Starlette:
    """An app serving only the ES2+ routes of `roles` on `endpoint` (for a listener of its own:
    mutual TLS with CERT_REQUIRED must not be imposed on the API's key-authenticated routes).
    `policy`: the access table (default: SIMSMITH_ES2PLUS_ACCESS, else none)."""
    # A bare Starlette app: the routes take the Request themselves, and FastAPI's dependency
    # and response machinery (for the API's OpenAPI) costs time on every call here.
    app = Starlette(routes=[Route(path, function_endpoint(function), methods=["POST"])
                            for function, (path, _, _) in FUNCTIONS.items()
                            if FUNCTION_ROLES[function] in roles],
                    exception_handlers={HTTPException: _not_es2plus})
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

    def __init__(self, app: ASGIApp, *, cert: Path, key: Path, ca: Path | None,
                 host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
                 keep_alive: int = 75, reuse_port: bool = False,
                 name: str = "es2plus-mtls") -> None:
        # `ca` None: server authentication only (the ES9+ listener: LPAs are anonymous).
        # `reuse_port`: the address is shared by the serve process's workers (SO_REUSEPORT).
        # The protocol named (IPPROTO_TCP): asyncio then sets TCP_NODELAY on accepted
        # connections (it checks the listener's `proto`). Without it an answer's head and body
        # (two writes) waited for the client's delayed ACK: ~40 ms per ES2+ call on loopback.
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                   socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and hasattr(socket, "SO_REUSEPORT"):
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self._sock.bind((host, port))
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        served: Any = app
        if telemetry.tracing_enabled():
            # The SM-DP+ continues its caller's trace (the traceparent on the ES2+/ES9+ request).
            from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

            served = OpenTelemetryMiddleware(app, exclude_spans=["receive", "send"])
        tls: dict[str, Any] = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
        if ca is not None:
            tls.update(ssl_ca_certs=str(ca), ssl_cert_reqs=ssl.CERT_REQUIRED)
        self.server = uvicorn.Server(uvicorn.Config(
            served, http=MtlsHttpToolsProtocol if ca is not None else HttpToolsProtocol,
            lifespan="off", log_level=log_level, access_log=False, server_header=False,
            timeout_keep_alive=keep_alive, **tls))
        self._name = name
        self._thread = threading.Thread(target=self.server.run,
                                        kwargs={"sockets": [self._sock]}, daemon=True,
                                        name=name)

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
                raise RuntimeError(f"the {self._name} listener on {self.url} did not start")
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
    options = Es2PlusEndpointSettings.from_settings()
    endpoint = Es2PlusEndpoint(engine, smdp_address, call_window=options.call_window,
                               order_validity=options.order_validity,
                               received_points=options.received_points())
    server = MtlsServer(es2plus_app(endpoint, roles={Role.ORDER}),
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
