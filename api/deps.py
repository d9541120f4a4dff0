"""Named dependencies for routes: the store, the SM-DP+ port, the caller's API key and scopes.

A route asks for what it needs by type:

    def get_sim(iccid: str, engine: EngineDep, key: Annotated[ApiKey, Scope("sims:read")])

`Scope(name)` authenticates the caller (`Authorization: Bearer <key>` or `X-API-Key: <key>`)
and checks the scope (admin implies all); 401 / 403 problem responses otherwise. The scope each
route needs is read back from its dependencies by `required_scope` (OpenAPI and the tests).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.metrics import Metrics
from api.problems import ProblemError
from api.settings import ApiSettings
from hsm_sim.hsm import Hsm
from simcore import apikeys
from simcore.apikeys import InvalidApiKey
from simcore.models_api import ApiKey
from simcore.smdp.port import SmdpPort


class KeyCache:
    """Checked API keys for a few seconds (settings.api_key_cache_seconds), by key hash."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[float, ApiKey]] = {}

    def cached(self, key: str) -> ApiKey | None:
        """The key's record if checked within the last `ttl` seconds (no database call)."""
        if self.ttl <= 0:
            return None
        with self._lock:
            hit = self._keys.get(apikeys.hash_key(key))
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def authenticate(self, engine: Engine, key: str) -> ApiKey:
        """The key's record, from the cache or the database (blocking: not on the event loop)."""
        hit = self.cached(key)
        if hit is not None:
            return hit
        row = apikeys.authenticate(engine, key)
        if self.ttl <= 0:
            return row
        h = apikeys.hash_key(key)
        now = time.monotonic()
        with self._lock:
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[h] = (now + self.ttl, row)
        return row


@dataclass
class AppContext:
    """What the app factory built: one per app, on `app.state.ctx`."""

    settings: ApiSettings
    engine: Engine
    smdp: SmdpPort
    metrics: Metrics
    keys: KeyCache
    hsm: Hsm | None = None  # opened on first use (open_hsm), unless given
    threads: int = 32  # worker threads for blocking routes (api.main.worker_threads)
    extra: dict[str, Any] = field(default_factory=dict)
    _hsm_lock: threading.Lock = field(default_factory=threading.Lock)

    def open_hsm(self) -> Hsm:
        """The configured HSM (simcore.hsm_access), opened once; HsmUnavailable if it cannot
        be opened without a terminal (503 service-unavailable)."""
        with self._hsm_lock:
            if self.hsm is None:
                from simcore.hsm_access import open_hsm
                from simcore.hsm_audit import AuditLogSink

                # the HSM's key.* records into the audit log; closed (flushed) at shutdown
                sink = self.extra["hsm_audit"] = AuditLogSink(self.engine, "api")
                self.hsm = open_hsm(self.settings, audit=sink)
            return self.hsm


def ctx_of(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


# Dependencies are `async def` although they do no I/O: FastAPI runs a sync dependency in the
# thread pool, one hop per dependency per request.
async def get_ctx(request: Request) -> AppContext:
    return ctx_of(request)


async def get_engine(request: Request) -> Engine:
    return ctx_of(request).engine


async def get_smdp(request: Request) -> SmdpPort:
    return ctx_of(request).smdp


async def get_settings(request: Request) -> ApiSettings:
    return ctx_of(request).settings


CtxDep = Annotated[AppContext, Depends(get_ctx)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SmdpDep = Annotated[SmdpPort, Depends(get_smdp)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]

# Documented in OpenAPI by api.main (securitySchemes), not as dependencies: two fewer
# dependency levels on every request.
SECURITY_SCHEMES = {
    "ApiKeyBearer": {"type": "http", "scheme": "bearer",
                     "description": "`Authorization: Bearer ssk_…`"},
    "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                     "description": "`X-API-Key: ssk_…`"},
}


def presented_key(request: Request) -> str | None:
    """The API key the request carries, if any."""
    auth = request.headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key")


async def authenticate(request: Request) -> ApiKey:
    """The caller's API key record (cached on the request); 401 problem without one."""
    cached = getattr(request.state, "api_key", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    key = presented_key(request)
    if not key:
        raise ProblemError("unauthenticated", "this route needs an API key "
                           "(Authorization: Bearer ssk_…)", {"WWW-Authenticate": "Bearer"})
    ctx = ctx_of(request)
    try:
        # A cache miss reads the database: in the thread pool, never on the event loop.
        hit = ctx.keys.cached(key)
        row = hit if hit is not None else await run_in_threadpool(ctx.keys.authenticate,
                                                                  ctx.engine, key)
    except InvalidApiKey as e:
        raise ProblemError("unauthenticated", str(e), {"WWW-Authenticate": "Bearer"}) from e
    request.state.api_key = row
    return row


class _RequireScope:
    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(self, request: Request) -> ApiKey:
        row = await authenticate(request)
        if not apikeys.has_scope(row, self.scope):
            raise ProblemError("insufficient-scope",
                               f"this route needs the scope {self.scope!r}")
        return row


def Scope(scope: str) -> Any:
    """`Annotated[ApiKey, Scope("sims:read")]`: the caller's key, holding `scope`."""
    if scope not in apikeys.SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    return Depends(_RequireScope(scope))


def required_scope(route: Any) -> str | None:
    """The scope a route's dependencies demand (None: no key needed)."""
    dependant = getattr(route, "dependant", None)
    stack = list(dependant.dependencies) if dependant is not None else []
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, _RequireScope):
            return dep.call.scope
        stack.extend(dep.dependencies)
    return None


def actor(key: ApiKey) -> str:
    """How the audit log names an API caller."""
    return f"api:{key.name}#{key.id}"


async def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await run_in_threadpool(fn, *args, **kwargs)
