"""Workflows as resources (issue 18): POST /v1/activations, /v1/suspensions, /v1/resumptions,
/v1/swaps and /v1/terminations start a durable workflow and answer 202 with its resource in
`Location`; GET it to follow the steps. GET /v1/workflows lists every kind. POST
/v1/workflows/{id}/cancel (and /v1/<resource>/{id}/cancel) asks a run to stop: compensated from
the next step boundary, it ends `cancelled`; 409 once it has finished or is compensating.

Writing needs `sims:write`, reading `sims:read` (the scopes of the SIM lifecycle they carry
out). A W3C `traceparent` header's trace id becomes the run's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, Scope, actor
from api.idempotent import HEADER, IdempotentRoute
from api.pagination import CursorQuery, Page, decode_cursor, encode_cursor
from api.problems import openapi_responses
from api.workflow_schemas import (
    ActivationCreate,
    CancelRequest,
    ResumptionCreate,
    SuspensionCreate,
    SwapCreate,
    TerminationCreate,
    WorkflowPublic,
)
from simcore.models_api import ApiKey
from simcore.workflows import service

router = APIRouter(tags=["workflows"], route_class=IdempotentRoute,
                   responses=openapi_responses(401, 403, 404, 409, 422))
Reader = Annotated[ApiKey, Scope("sims:read")]
Writer = Annotated[ApiKey, Scope("sims:write")]
Traceparent = Annotated[str | None, Header(description="W3C trace context: the run joins "
                                                       "this trace")]
Status = Literal["pending", "running", "compensating", "succeeded", "failed", "cancelled",
                 "stuck"]
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")

# resource path → workflow kind
RESOURCES = {"activations": "activation", "suspensions": "suspend", "resumptions": "resume",
             "swaps": "swap", "terminations": "termination"}


def _trace_id(traceparent: str | None) -> str | None:
    m = _TRACEPARENT.match((traceparent or "").strip().lower())
    return m.group(1) if m and m.group(1) != "0" * 32 else None


def _idem(request: Request, key: ApiKey) -> str | None:
    value = request.headers.get(HEADER)
    return f"api{key.id}:{value}" if value else None


async def _started(request: Request, response: Response, engine: Any, resource: str,
                   start: Callable[[], str]) -> WorkflowPublic:
    view = await run_in_threadpool(service.start_view, engine, start)
    response.headers["Location"] = str(request.url_for(f"get_{resource}", workflow_id=view.id))
    return WorkflowPublic.of(view)


_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"description": "Started; poll the resource in Location",
          "headers": {"Location": {"schema": {"type": "string"}}}}}


@router.post("/v1/activations", status_code=202, responses=_ACCEPTED)
async def create_activations(body: ActivationCreate, request: Request, response: Response,
                             engine: EngineDep, key: Writer,
                             traceparent: Traceparent = None) -> WorkflowPublic:
    """Activate a subscriber: reserve a SIM or eSIM profile, assign an MSISDN, make sure the
    HSM holds its keys, provision the HLR, order the profile at the SM-DP+ (eSIM), mark it
    active and notify; compensated in reverse if a step fails for good."""
    req = body.model_dump(exclude_none=False)
    req = {k: v for k, v in req.items() if v is not None or k == "msisdn"}
    return await _started(request, response, engine, "activations", lambda: (
        service.start_activation(engine, req, actor=actor(key),
                                 idempotency_key=_idem(request, key),
                                 trace_id=_trace_id(traceparent))))


@router.post("/v1/suspensions", status_code=202, responses=_ACCEPTED)
async def create_suspensions(body: SuspensionCreate, request: Request, response: Response,
                             engine: EngineDep, key: Writer,
                             traceparent: Traceparent = None) -> WorkflowPublic:
    """Suspend an active SIM: network access barred at the HLR, then the SIM suspended."""
    return await _started(request, response, engine, "suspensions", lambda: (
        service.start_suspend(engine, body.iccid, actor=actor(key), reason=body.reason,
                              idempotency_key=_idem(request, key),
                              trace_id=_trace_id(traceparent))))


@router.post("/v1/resumptions", status_code=202, responses=_ACCEPTED)
async def create_resumptions(body: ResumptionCreate, request: Request, response: Response,
                             engine: EngineDep, key: Writer,
                             traceparent: Traceparent = None) -> WorkflowPublic:
    """Resume a suspended SIM: network access allowed at the HLR, then the SIM active."""
    return await _started(request, response, engine, "resumptions", lambda: (
        service.start_resume(engine, body.iccid, actor=actor(key),
                             idempotency_key=_idem(request, key),
                             trace_id=_trace_id(traceparent))))


@router.post("/v1/swaps", status_code=202, responses=_ACCEPTED)
async def create_swaps(body: SwapCreate, request: Request, response: Response,
                       engine: EngineDep, key: Writer,
                       traceparent: Traceparent = None) -> WorkflowPublic:
    """SIM swap: the new SIM provisioned, the MSISDN moved to it, the old SIM removed from the
    HLR (and its eSIM profile cancelled), the old SIM terminated. The subscription's state
    moves with it: a suspended SIM's new SIM is provisioned barred and takes over suspended,
    unless `resume` is true."""
    return await _started(request, response, engine, "swaps", lambda: (
        service.start_swap(engine, body.iccid, actor=actor(key), new_iccid=body.new_iccid,
                           resume=body.resume, idempotency_key=_idem(request, key),
                           trace_id=_trace_id(traceparent))))


@router.post("/v1/terminations", status_code=202, responses=_ACCEPTED)
async def create_terminations(body: TerminationCreate, request: Request, response: Response,
                              engine: EngineDep, key: Writer,
                              traceparent: Traceparent = None) -> WorkflowPublic:
    """Terminate: removed from the HLR, the eSIM order cancelled, the SIM terminated (its
    MSISDN to quarantine) and put in quarantine."""
    return await _started(request, response, engine, "terminations", lambda: (
        service.start_termination(engine, body.iccid, actor=actor(key), reason=body.reason,
                                  idempotency_key=_idem(request, key),
                                  trace_id=_trace_id(traceparent))))


def _page(views: list[service.WorkflowView], limit: int) -> Page[WorkflowPublic]:
    nxt = encode_cursor(views[-1].id) if len(views) == limit and views else None
    return Page(items=[WorkflowPublic.of(v) for v in views], next_cursor=nxt)


Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]


def _cancel(engine: Any, workflow_id: str, body: CancelRequest, key: ApiKey,
            kind: str | None) -> WorkflowPublic:
    return WorkflowPublic.of(service.cancel_workflow(engine, workflow_id, actor=actor(key),
                                                     reason=body.reason, kind=kind))


def _add_reads(resource: str, kind: str) -> None:
    def get_one(workflow_id: str, engine: EngineDep, _k: Reader) -> WorkflowPublic:
        return WorkflowPublic.of(service.get_workflow(engine, workflow_id, kind=kind))

    def list_all(engine: EngineDep, _k: Reader, cursor: CursorQuery = None, limit: Limit = 50,
                 status: Status | None = None, subject: str | None = None
                 ) -> Page[WorkflowPublic]:
        return _page(service.list_workflows(engine, kind=kind, status=status, subject=subject,
                                            before=decode_cursor(cursor), limit=limit), limit)

    def cancel_one(workflow_id: str, body: CancelRequest, engine: EngineDep,
                   key: Writer) -> WorkflowPublic:
        return _cancel(engine, workflow_id, body, key, kind)

    cancel_one.__doc__ = f"Cancel a {kind} workflow (see POST /v1/workflows/{{id}}/cancel)."
    router.add_api_route(f"/v1/{resource}/{{workflow_id}}/cancel", cancel_one, methods=["POST"],
                         name=f"cancel_{resource}", response_model=WorkflowPublic,
                         status_code=202)
    get_one.__doc__ = f"One {kind} workflow with its steps (status, attempts, timestamps, " \
                      "errors) and trace id."
    list_all.__doc__ = f"{kind.capitalize()} workflows, newest first."
    router.add_api_route(f"/v1/{resource}/{{workflow_id}}", get_one, methods=["GET"],
                         name=f"get_{resource}", response_model=WorkflowPublic)
    router.add_api_route(f"/v1/{resource}", list_all, methods=["GET"],
                         name=f"list_{resource}", response_model=Page[WorkflowPublic])


for _resource, _kind in RESOURCES.items():
    _add_reads(_resource, _kind)


@router.get("/v1/workflows")
def list_workflows(engine: EngineDep, _k: Reader, cursor: CursorQuery = None, limit: Limit = 50,
                   kind: Literal["activation", "suspend", "resume", "swap",
                                 "termination"] | None = None,
                   status: Status | None = None,
                   subject: str | None = None) -> Page[WorkflowPublic]:
    """Every workflow, newest first (without steps; GET one for its timeline)."""
    return _page(service.list_workflows(engine, kind=kind, status=status, subject=subject,
                                        before=decode_cursor(cursor), limit=limit), limit)


@router.get("/v1/workflows/{workflow_id}")
def get_workflow(workflow_id: str, engine: EngineDep, _k: Reader) -> WorkflowPublic:
    """One workflow of any kind with its steps."""
    return WorkflowPublic.of(service.get_workflow(engine, workflow_id))


@router.post("/v1/workflows/{workflow_id}/cancel", status_code=202)
def cancel_workflow(workflow_id: str, body: CancelRequest, engine: EngineDep,
                    key: Writer) -> WorkflowPublic:
    """Cancel a run that has not finished: marked cancel-requested now (audited with the key
    and the reason, `workflow.<kind>.cancel_requested` in the outbox); the worker stops at the
    next step boundary — a step in flight finishes first — and compensates the finished steps
    in reverse, as after a permanent failure, ending `cancelled`. Asking again answers the
    same run. 409 if the run has finished or is already compensating after a failure."""
    return _cancel(engine, workflow_id, body, key, None)
