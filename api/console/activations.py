"""Activations and other workflow runs in the console (issue 19 item 5; simcore.workflows):
a list filtered by kind and status and paged newest first, one run's step timeline (attempts,
times, errors, compensation) with its trace id, refreshed by htmx while it runs, and cancel
behind a confirmation with a reason.

The reads are simcore.workflows.service's (the API's `/v1/workflows`); cancel is its
`cancel_workflow` with the console person as the actor (audited, in the outbox). The trace id
links to a trace UI when SIMSMITH_TRACE_URL holds an address with `{trace_id}`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.console.auth import CheckedForm, Need, text
from api.console.web import PREFIX, redirect, render
from api.deps import ctx_of
from simcore.console.sessions import Principal
from simcore.errors import InvalidInput
from simcore.workflows import service
from simcore.workflows.engine import PENDING, REGISTRY, RUNNING
from simcore.workflows.service import WorkflowView

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Reader = Annotated[Principal, Need("sims:read")]
Writer = Annotated[Principal, Need("sims:write")]
PAGE = 25
REASON_MAX = 200


def sim_of(v: WorkflowView) -> str | None:
    """The SIM a run is about: the ICCID it found or was given."""
    iccid = v.data.get("iccid") or v.input.get("iccid")
    if isinstance(iccid, str) and iccid.isdigit():
        return iccid
    return v.subject if v.subject and v.subject.isdigit() else None


def cancellable(v: WorkflowView) -> bool:
    """Whether a Cancel button makes sense (the service decides; this only hides it)."""
    return (v.status in (PENDING, RUNNING) and v.cancel_requested_at is None
            and REGISTRY.get(v.kind).cancellable)


def _trace_link(request: Request, v: WorkflowView) -> str | None:
    template = ctx_of(request).settings.trace_url
    if not template or not v.trace_id:
        return None
    return template.replace("{trace_id}", v.trace_id)


def _run_context(request: Request, v: WorkflowView, me: Principal) -> dict[str, Any]:
    return {"v": v, "sim": sim_of(v), "trace_link": _trace_link(request, v),
            "can_cancel": me.allows("sims:write") and cancellable(v)}


def _choice(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise InvalidInput(name, f"unknown workflow {name}", value=value[:20],
                           expected=", ".join(allowed))
    return value


@router.get("/workflows")
def workflows_page(request: Request, _me: Reader,
                   kind: Annotated[str | None, Query(max_length=16)] = None,
                   status: Annotated[str | None, Query(max_length=16)] = None,
                   subject: Annotated[str | None, Query(max_length=64)] = None,
                   before: Annotated[str | None, Query(max_length=36)] = None) -> HTMLResponse:
    kind = _choice(kind, service.KINDS, "kind")
    status = _choice(status, service.STATUSES, "status")
    subject = (subject or "").strip() or None
    runs = service.list_workflows(ctx_of(request).engine, kind=kind, status=status,
                                  subject=subject, before=before or None, limit=PAGE)
    return render(request, "workflows.html", {
        "runs": [(v, sim_of(v)) for v in runs], "kind": kind, "status": status,
        "subject": subject, "kinds": service.KINDS, "statuses": service.STATUSES,
        "before": before, "older": runs[-1].id if len(runs) == PAGE else None})


@router.get("/workflows/{workflow_id}")
def workflow_page(request: Request, workflow_id: str, me: Reader) -> HTMLResponse:
    v = service.get_workflow(ctx_of(request).engine, workflow_id)
    return render(request, "workflow.html", _run_context(request, v, me))


@router.get("/workflows/{workflow_id}/live")
def workflow_live(request: Request, workflow_id: str, me: Reader) -> HTMLResponse:
    """The run's live part (state and timeline), polled by htmx until it has finished."""
    v = service.get_workflow(ctx_of(request).engine, workflow_id)
    return render(request, "_workflow_live.html", _run_context(request, v, me))


@router.get("/workflows/{workflow_id}/cancel")
def cancel_page(request: Request, workflow_id: str, me: Writer) -> HTMLResponse:
    v = service.get_workflow(ctx_of(request).engine, workflow_id)
    return render(request, "workflow_cancel.html", {"v": v, "sim": sim_of(v),
                                                    "reason_max": REASON_MAX})


@router.post("/workflows/{workflow_id}/cancel")
def cancel(request: Request, workflow_id: str, me: Writer, form: CheckedForm) -> Response:
    reason = text(form, "reason", max_len=REASON_MAX)
    v = service.cancel_workflow(ctx_of(request).engine, workflow_id, actor=me.actor,
                                reason=reason)
    return redirect(f"{PREFIX}/workflows/{v.id}")
