"""Liveness, readiness and metrics. /healthz and /readyz need no key; /metrics needs
`metrics:read`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import text

from api.deps import CtxDep, Scope
from api.idempotent import IdempotentRoute
from api.schemas import Health
from simcore import db
from simcore.errors import SimsmithError
from simcore.models_api import ApiKey

router = APIRouter(tags=["health"], route_class=IdempotentRoute)


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up (no dependency checked)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(ctx: CtxDep) -> JSONResponse:
    """The store answers and its schema is current."""
    checks: dict[str, str] = {}
    try:
        with ctx.engine.connect() as c:
            c.execute(text("SELECT 1"))
        checks["database"] = "ok"
        db.check_schema(ctx.engine)
        checks["schema"] = "ok"
    except SimsmithError as e:
        checks["schema"] = str(e)
    except Exception as e:  # any driver error means "not ready"
        checks["database"] = type(e).__name__
    ok = all(v == "ok" for v in checks.values()) and len(checks) == 2
    body = Health(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(ctx: CtxDep, _key: Annotated[ApiKey, Scope("metrics:read")]) -> Response:
    """Prometheus text exposition (prometheus-client): request, workflow step and delivery
    metrics — of every worker when PROMETHEUS_MULTIPROC_DIR is set, else of this one — and the
    store's backlogs.

    A plain `def`: the gauges query the database, which must not block the event loop (FastAPI
    runs a sync route in its thread pool)."""
    body, content_type = ctx.metrics.exposition()
    return Response(content=body, media_type=content_type)
