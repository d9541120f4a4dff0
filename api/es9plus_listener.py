"""The ES9+ listener (GSMA SGP.22 v2.5 §5.6 over HTTPS, §2.6.6: the LPA authenticates the SM-DP+
by its TLS certificate, CERT.DP.TLS; the LPA itself is anonymous): uvicorn serving the ES9+
routes (api.routers.es9plus) on a port of their own — not the API's, whose routes need API keys
and whose clients are operators — and the sweeper that deletes expired RSP sessions.

`simsmith serve` starts it in each worker process (SO_REUSEPORT: the workers share the port) when
SIMSMITH_ES9PLUS_PORT is set; the TLS certificate is CERT.DP.TLS (simcore.smdp.download_service.
tls_files: the identity's, which a dev-mode lab identity brings, issued by the lab CI
`$SIMSMITH_HOME/pki/rsp/ci.pem` — what a lab LPA trusts: `simsmith lpa download --ca-bundle`),
else the development server certificate of `$SIMSMITH_HOME/pki`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anyio import CapacityLimiter
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.exceptions import HTTPException

from api.es2plus_listener import MtlsServer
from api.problems import response_for
from api.routers.es9plus import ADMIN, Es9PlusApp, Es9PlusWire, es9plus_router
from simcore.config import Settings
from simcore.log import get_logger
from simcore.smdp.download_service import (
    TlsFiles,
    build_core,
    sweep_orders,
    sweep_sessions,
    tls_files,
)
from simcore.smdp.es9plus import Es9PlusCore
from simcore.smdp.es9plus_settings import DEFAULT_MAX_BODY, Es9PlusSettings

log = get_logger("api.es9plus")


async def _not_es9plus(request: Request, exc: Exception) -> Response:
    """404 / 405 on the ES9+ listener: a problem document with `X-Admin-Protocol`."""
    response = response_for(request, exc)
    response.headers.update(ADMIN)
    return response


def es9plus_app(core: Es9PlusCore, *, max_body: int = DEFAULT_MAX_BODY,
                threads: int = 0) -> Es9PlusApp:
    """An app serving only ES9+ on `core`, with its OpenAPI at /openapi.json (`.docs`, the
    FastAPI app). `threads`: run the core's functions in that many threads; 0 in the event
    loop's own thread (Es9PlusSettings.threads)."""
    app = FastAPI(title="simsmith SM-DP+ ES9+", version="2.5.0", docs_url=None, redoc_url=None,
                  description="ES9+ (GSMA SGP.22 v2.5 §5.6, §6.5): the functions an LPA calls "
                  "to download a profile from simsmith's SM-DP+. JSON over HTTPS; every request "
                  "carries `X-Admin-Protocol: gsma/rsp/v2.x.y`; refusals are HTTP 200 with "
                  "status Failed and SGP.22 subject / reason codes.",
                  exception_handlers={HTTPException: _not_es9plus})
    es9 = Es9PlusWire(core, max_body, CapacityLimiter(threads) if threads else None)
    app.state.es9plus_wire = es9
    app.include_router(es9plus_router())
    return Es9PlusApp(es9, app)


@dataclass
class Sweeper:
    """Every `every` seconds in a thread: deletes expired RSP sessions (`swept` counts them) and
    ends the download orders whose validity is over (`orders_expired`)."""

    engine: Engine
    every: float
    swept: int = 0
    orders_expired: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sweeper:
        self._thread = threading.Thread(target=self._run, daemon=True, name="es9plus-sweeper")
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sweep_once()

    def sweep_once(self) -> int:
        """One round; the sessions deleted."""
        try:
            n = sweep_sessions(self.engine)
            self.orders_expired += sweep_orders(self.engine)
        except Exception as e:  # the store may be briefly away: the next round tries again
            log.warning("es9plus sweep failed", error=str(e))
            return 0
        self.swept += n
        return n

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


@dataclass
class Es9PlusListener:
    server: MtlsServer
    sweeper: Sweeper
    address: str
    core: Es9PlusCore
    tls: TlsFiles

    @property
    def url(self) -> str:
        return self.server.url

    def close(self) -> None:
        self.sweeper.stop()
        self.server.stop()


def start_es9plus(engine: Engine, *, address: str, settings: Settings, hsm: Callable[[], Any],
                  es9: Es9PlusSettings | None = None, reuse_port: bool = True
                  ) -> Es9PlusListener:
    """Serve ES9+ for the SM-DP+ at `address` on es9.host:es9.port (0: a free port) with the
    identity of `settings` (made first in dev mode), and start the session sweeper."""
    es9 = es9 or Es9PlusSettings()
    core = build_core(engine, address=address, settings=settings, hsm=hsm, es9=es9)
    tls = tls_files(settings, es9)  # after the identity: a lab identity brings CERT.DP.TLS
    server = MtlsServer(es9plus_app(
                            core, max_body=es9.max_body_bytes,
                            threads=es9.resolved_threads(settings.hsm_backend)),
                        cert=tls.cert,
                        key=tls.key, ca=None, host=es9.host, port=es9.port or 0,
                        reuse_port=reuse_port, name="es9plus").start()
    sweeper = Sweeper(engine, es9.sweep_seconds).start()
    log.info("es9plus listening", url=server.url, smdp_address=address, tls_ca=str(tls.ca))
    return Es9PlusListener(server, sweeper, address, core, tls)
