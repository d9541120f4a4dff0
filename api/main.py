"""The app factory: `create_app(settings)` builds a FastAPI app with its own engine, SM-DP+ port,
metrics and webhook deliverer. Nothing is built at import, so tests make as many apps as they
like. `uvicorn --factory api.main:create_app` works too (settings from the environment).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.exceptions import HTTPException

from api.deps import SECURITY_SCHEMES, AppContext, KeyCache, required_scope
from api.metrics import Metrics
from api.middleware import RequestContextMiddleware
from api.problems import PROBLEM_TYPES, ProblemError, openapi_responses, response_for
from api.routers import routers
from api.settings import ApiSettings
from simcore import apikeys, db, telemetry, webhooks
from simcore.errors import SimsmithError
from simcore.log import configure, get_logger
from simcore.smdp.in_process import InProcessSmdp
from simcore.smdp.port import SmdpPort

log = get_logger("api")

DESCRIPTION = """simsmith's provisioning API: SIMs, eSIM orders (activation code and QR in one
response), the MSISDN pool, the audit log and signed webhooks.

Every route but `/healthz` and `/readyz` needs an API key (`Authorization: Bearer ssk_…`) with
the scope named on the route. Every POST takes an `Idempotency-Key`. Errors are RFC 9457
`application/problem+json` with a stable `type`:

""" + "\n".join(f"- `{t.uri}` ({t.status}): {t.title}" for t in PROBLEM_TYPES.values())


def build_smdp(settings: ApiSettings, engine: Engine) -> tuple[SmdpPort, Any]:
    """The configured SM-DP+ and what to close at shutdown: an external SM-DP+ over ES2+ when
    SIMSMITH_SMDP_URL is set (simcore.smdp.es2plus_port); else simsmith's own ES2+ endpoint on a
    loopback mutual-TLS listener (SIMSMITH_SMDP_MODE=es2plus, dev PKI in $SIMSMITH_HOME/pki);
    else the in-process one."""
    from simcore.smdp.es2plus_port import SmdpSettings, check_smdp_settings, es2plus_smdp

    external = SmdpSettings.from_settings()
    # Refused here, at start-up, not at the first order: an address no LPA could use.
    address = check_smdp_settings(settings.smdp_address, external)
    if external.url:
        port = es2plus_smdp(engine, external)
        return port, port
    if settings.smdp_mode == "es2plus":
        from api.es2plus_listener import start_embedded_es2plus

        embedded = start_embedded_es2plus(engine, address, settings.home / "pki")
        return embedded.smdp, embedded
    return InProcessSmdp(engine, address, order_validity=settings.smdp_order_validity), None


def start_es9plus_listener(ctx: AppContext) -> Any:
    """simsmith's SM-DP+ ES9+ listener (api.es9plus_listener) when SIMSMITH_ES9PLUS_PORT is set
    and no external SM-DP+ is configured (an external one serves its own downloads), with the
    expired-session sweeper counted in the metrics. None when not started."""
    from simcore.smdp.es9plus_settings import Es9PlusSettings  # light: no ES9+ machinery

    es9 = Es9PlusSettings()
    if es9.port is None:
        return None
    from simcore.smdp.es2plus_port import SmdpSettings

    if SmdpSettings().url:
        log.info("SIMSMITH_ES9PLUS_PORT ignored: the SM-DP+ is external (SIMSMITH_SMDP_URL)")
        return None
    from api.es9plus_listener import start_es9plus

    listener = start_es9plus(ctx.engine, address=ctx.smdp.smdp_address, settings=ctx.settings,
                             hsm=ctx.open_hsm, es9=es9)
    ctx.extra["es9plus"] = listener
    ctx.metrics.gauges["simsmith_es9plus_sessions_swept_total"] = lambda: {
        "expired": listener.sweeper.swept}
    ctx.metrics.gauges["simsmith_es9plus_orders_expired_total"] = lambda: {
        "swept": listener.sweeper.orders_expired}
    return listener


def worker_threads(settings: ApiSettings, engine: Engine, smdp: SmdpPort) -> int:
    """Threads for blocking routes (SIMSMITH_THREADS, else by deployment). On SQLite with the
    in-process SM-DP+ an order is local work under the one write lock: a thread holding that
    lock competes for the interpreter lock with every other busy thread of its process, so more
    than two threads lengthen the serialised part (measured: 8 threads ~530 orders/s, 2 threads
    ~720/s on 2 workers). Orders that wait on a network peer (an ES2+ SM-DP+, PostgreSQL) need
    threads to overlap those waits."""
    if settings.threads:
        return settings.threads
    return 2 if db.is_sqlite(engine) and isinstance(smdp, InProcessSmdp) else 32


def _workflow_workers(ctx: AppContext) -> Any:
    """Workflow workers in this server process (simcore.workflows.runtime), unless
    SIMSMITH_WORKFLOW_WORKER=false (then `simsmith worker` processes carry the runs)."""
    from simcore.workflows.runtime import WorkerPool, WorkflowSettings, build_deps

    wf_settings = WorkflowSettings()
    if not wf_settings.workflow_worker:
        return None
    deps = build_deps(ctx.engine, wf_settings, smdp=ctx.smdp, hsm=ctx.open_hsm)
    return WorkerPool(ctx.engine, deps, wf_settings).start()


def create_app(settings: ApiSettings | None = None, *, engine: Engine | None = None,
               smdp: SmdpPort | None = None, hsm: Any = None) -> FastAPI:
    settings = settings or ApiSettings()
    configure(settings.log_level or "INFO", settings.log_json)
    telemetry.configure_tracing("simsmith")  # only if OTEL_* variables ask for it
    own_engine = engine is None
    eng = engine if engine is not None else db.make_engine(settings.effective_database_url)
    telemetry.instrument_engine(eng)
    metrics = Metrics()
    metrics.gauges["simsmith_webhook_backlog"] = lambda: dict(webhooks.backlog(eng))
    if settings.nats_url:
        from simcore import nats_relay

        metrics.gauges["simsmith_nats_relay_backlog"] = lambda: {
            "events": float(nats_relay.backlog(eng) or 0)}
    closer: Any = None
    if smdp is None:
        smdp, closer = build_smdp(settings, eng)
    ctx = AppContext(settings=settings, engine=eng, smdp=smdp, metrics=metrics,
                     keys=KeyCache(settings.api_key_cache_seconds), hsm=hsm)
    ctx.threads = worker_threads(settings, eng, smdp)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = ctx.threads
        from api import server

        if server.serving():
            server.tune_gc()  # a server process only: tests and embedders keep Python's GC
        worker = None
        if settings.webhooks_enabled:
            from api.webhook_worker import WebhookWorker

            worker = WebhookWorker(eng, settings)
            worker.start()
            ctx.extra["webhook_worker"] = worker
        relay = None
        if settings.nats_url:
            # Every worker runs one; the lease in outbox_relay lets one publish at a time.
            from simcore.nats_relay import RelayThread, relay_settings

            relay = RelayThread(eng, relay_settings(settings))
            relay.start()
            ctx.extra["nats_relay"] = relay
        notifier = None
        if settings.es2plus_notify_enabled:
            from api.notify_worker import NotifyWorker

            notifier = NotifyWorker(eng, settings)
            notifier.start()
            ctx.extra["es2plus_notifier"] = notifier
        from api.import_runner import ImportRunner

        runner = ctx.extra["import_runner"] = ImportRunner(ctx)
        runner.resume()
        es9plus = start_es9plus_listener(ctx)
        workflows = _workflow_workers(ctx) if server.serving() else None
        try:
            yield
        finally:
            if workflows is not None:
                workflows.stop()
            if es9plus is not None:
                es9plus.close()
            runner.stop()
            if worker is not None:
                worker.stop()
            if relay is not None:
                relay.stop()
            if notifier is not None:
                notifier.stop()
            if "hsm_audit" in ctx.extra:
                ctx.extra["hsm_audit"].close()
            if closer is not None and hasattr(closer, "close"):
                closer.close()
            if own_engine:
                eng.dispose()

    app = FastAPI(title="simsmith", version="0.1.0", description=DESCRIPTION,
                  lifespan=lifespan)
    app.state.ctx = ctx
    included = routers()
    app.state.api_routes = [r for router in included for r in router.routes]
    _document_scopes(app.state.api_routes)
    for router in included:
        app.include_router(router)
    _add_security_schemes(app)

    if settings.console_enabled:
        from api.console import mount

        mount(app)

    async def handle(request: Request, exc: Exception) -> Response:
        if settings.console_enabled and request.url.path.startswith("/console"):
            from api.console.web import error_response

            return error_response(request, exc)
        return response_for(request, exc)

    for cls in (SimsmithError, ProblemError, HTTPException, RequestValidationError,
                *console_errors(settings)):
        app.add_exception_handler(cls, handle)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    if telemetry.tracing_enabled():
        # Outermost: the server span (continuing a caller's traceparent) holds everything,
        # the access log line included.
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        app.add_middleware(OpenTelemetryMiddleware, exclude_spans=["receive", "send"])
    return app


def console_errors(settings: ApiSettings) -> tuple[type[Exception], ...]:
    """The console's own refusals (login needed, refused), rendered by its error page."""
    if not settings.console_enabled:
        return ()
    from api.console.web import LoginRequired, Refused

    return (LoginRequired, Refused)


def _add_security_schemes(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        spec = build()
        spec.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _document_scopes(routes: list[Any]) -> None:
    """Name each route's scope in its OpenAPI operation (description and x-required-scope).
    Routes carry their full paths (no router prefixes), so a route object's path is the one
    served — in metrics, logs and here."""
    for route in routes:
        if getattr(route, "body_field", None) is not None:
            # A body that is not JSON at all is refused before validation: 400 http-error.
            route.responses = {**openapi_responses(400), **(route.responses or {})}
        scope = required_scope(route)
        if scope is None or not hasattr(route, "openapi_extra"):
            continue
        extra: dict[str, Any] = dict(route.openapi_extra or {})
        extra["x-required-scope"] = scope
        extra["security"] = [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}]
        route.openapi_extra = extra
        text = (getattr(route, "description", None) or "").rstrip()
        route.description = text + f"\n\nRequired scope: {apikeys.holders(scope)}."  # type: ignore[attr-defined]
