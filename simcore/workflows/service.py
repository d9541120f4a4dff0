"""Starting workflows and reading them back (the API, the CLI and the console call these).

`start_*` checks the request at once (InvalidInput names the field) and records the run; a
worker (simcore.workflows.engine.Worker: `simsmith worker`, or the thread in `simsmith serve`)
carries it out. `get_workflow` returns the run with each step's status, attempts, timestamps
and last error, and the run's trace id. `cancel_workflow` asks a run to stop (engine.
request_cancel: compensated from the next step boundary, ending `cancelled`).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, bindparam, select
from sqlmodel import col

from simcore import telemetry
from simcore.db import read_connection, read_session
from simcore.errors import InvalidInput, NotFound
from simcore.identifiers import Iccid
from simcore.workflows import activation, service_flows
from simcore.workflows.engine import FINISHED, LIVE, REGISTRY, recording, request_cancel, start
from simcore.workflows.models import Workflow, WorkflowStep

KINDS = ("activation", "suspend", "resume", "swap", "termination")
STATUSES = (*LIVE, *FINISHED)


@dataclass(frozen=True)
class StepView:
    seq: int
    name: str
    status: str
    idempotency_key: str
    attempts: int
    compensation_attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    compensated_at: datetime | None
    last_error: str | None
    result: dict[str, Any]


@dataclass(frozen=True)
class WorkflowView:
    id: str
    kind: str
    status: str
    subject: str | None
    input: dict[str, Any]
    data: dict[str, Any]
    error: str | None
    actor: str
    trace_id: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    next_attempt_at: datetime | None
    steps: tuple[StepView, ...] = ()
    cancel_requested_at: datetime | None = None
    cancel_requested_by: str | None = None
    cancel_reason: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def notice(self) -> str | None:
        """What the caller must know about the outcome, in plain words: e.g. that a terminated
        eSIM profile remains on the device until the user deletes it."""
        value = self.data.get("notice")
        return str(value) if value else None

    def as_dict(self) -> dict[str, Any]:
        def ts(v: datetime | None) -> str | None:
            return v.isoformat() if v else None
        return {
            "id": self.id, "kind": self.kind, "status": self.status, "subject": self.subject,
            "input": self.input, "data": self.data, "error": self.error, "actor": self.actor,
            "notice": self.notice, "trace_id": self.trace_id, "created_at": ts(self.created_at),
            "updated_at": ts(self.updated_at), "finished_at": ts(self.finished_at),
            "next_attempt_at": ts(self.next_attempt_at),
            "cancel_requested_at": ts(self.cancel_requested_at),
            "cancel_requested_by": self.cancel_requested_by, "cancel_reason": self.cancel_reason,
            "steps": [{"seq": s.seq, "name": s.name, "status": s.status,
                       "idempotency_key": s.idempotency_key, "attempts": s.attempts,
                       "compensation_attempts": s.compensation_attempts,
                       "started_at": ts(s.started_at), "finished_at": ts(s.finished_at),
                       "compensated_at": ts(s.compensated_at), "last_error": s.last_error,
                       "result": s.result} for s in self.steps],
        }


def _view(w: Workflow, steps: Sequence[WorkflowStep] | None = None) -> WorkflowView:
    return WorkflowView(
        id=w.id, kind=w.kind, status=w.status, subject=w.subject, input=json.loads(w.input),
        data=json.loads(w.data), error=w.error, actor=w.actor, trace_id=w.trace_id,
        created_at=w.created_at, updated_at=w.updated_at, finished_at=w.finished_at,
        next_attempt_at=w.next_attempt_at,
        steps=tuple(StepView(s.seq, s.name, s.status, s.idempotency_key, s.attempts,
                             s.compensation_attempts, s.started_at, s.finished_at,
                             s.compensated_at, s.last_error,
                             json.loads(s.result) if s.result else {}) for s in steps or ()),
        cancel_requested_at=w.cancel_requested_at, cancel_requested_by=w.cancel_requested_by,
        cancel_reason=w.cancel_reason)


def _trace_id(trace_id: str | None) -> str:
    """The run's trace: the one given, else the current one (the API request's), else new."""
    return trace_id or telemetry.current_trace_id() or secrets.token_hex(16)


def start_activation(engine: Engine, request: dict[str, Any], *, actor: str,
                     idempotency_key: str | None = None, trace_id: str | None = None) -> str:
    checked = activation.check_input(request)
    return start(engine, activation.ACTIVATION, checked, actor=actor,
                 subject=checked.get("iccid") or checked["subscriber_ref"],
                 idempotency_key=idempotency_key, trace_id=_trace_id(trace_id))


def _start_on_sim(kind: str, engine: Engine, iccid: str, *, actor: str,
                  idempotency_key: str | None, trace_id: str | None,
                  **extra: Any) -> str:
    digits = Iccid.parse(iccid).digits
    body: dict[str, Any] = {"iccid": digits}
    for k, v in extra.items():
        if v is not None:
            body[k] = v
    return start(engine, REGISTRY.get(kind), body, actor=actor, subject=digits,
                 idempotency_key=idempotency_key, trace_id=_trace_id(trace_id))


def start_suspend(engine: Engine, iccid: str, *, actor: str, reason: str | None = None,
                  idempotency_key: str | None = None, trace_id: str | None = None) -> str:
    return _start_on_sim("suspend", engine, iccid, actor=actor, reason=reason,
                         idempotency_key=idempotency_key, trace_id=trace_id)


def start_resume(engine: Engine, iccid: str, *, actor: str, idempotency_key: str | None = None,
                 trace_id: str | None = None) -> str:
    return _start_on_sim("resume", engine, iccid, actor=actor,
                         idempotency_key=idempotency_key, trace_id=trace_id)


def start_termination(engine: Engine, iccid: str, *, actor: str, reason: str,
                      idempotency_key: str | None = None, trace_id: str | None = None) -> str:
    if not reason or len(reason) > 200:
        raise InvalidInput("reason", "empty or longer than 200 characters",
                           expected="why the SIM is terminated")
    return _start_on_sim("termination", engine, iccid, actor=actor, reason=reason,
                         idempotency_key=idempotency_key, trace_id=trace_id)


def start_swap(engine: Engine, iccid: str, *, actor: str, new_iccid: str | None = None,
               resume: bool = False, idempotency_key: str | None = None,
               trace_id: str | None = None) -> str:
    """A suspended SIM's new SIM takes over suspended (barred at the HLR) unless `resume`
    asks to resume the subscription with the swap."""
    new = Iccid.parse(new_iccid).digits if new_iccid else None
    return _start_on_sim("swap", engine, iccid, actor=actor, new_iccid=new,
                         resume=True if resume else None,
                         idempotency_key=idempotency_key, trace_id=trace_id)


def _check_id(workflow_id: str, field: str = "workflow_id") -> str:
    try:
        return str(uuid.UUID(workflow_id))
    except (ValueError, TypeError, AttributeError):
        raise InvalidInput(field, "not a workflow id", value=str(workflow_id)[:40],
                           expected="a UUID") from None


def start_view(engine: Engine, start: Callable[[], str]) -> WorkflowView:
    """Run `start` (one of the start_… functions above) and return the run as it is: built
    from the rows the start wrote when it recorded a new run (the API's 202 for every request
    then needs no read back: a transaction and two statements), else (a repeat with the same
    idempotency key) read from the store."""
    with recording() as written:
        workflow_id = start()
    for run, steps in written:
        if run["id"] == workflow_id:
            return _view(SimpleNamespace(**_UNSET_RUN, **run),  # type: ignore[arg-type]
                         [SimpleNamespace(**_UNSET_STEP, **st)  # type: ignore[misc]
                          for st in steps])
    return get_workflow(engine, workflow_id)


# What a new run's rows hold besides the values start() writes (the columns' defaults).
_UNSET_RUN = {"error": None, "finished_at": None, "cancel_requested_at": None,
              "cancel_requested_by": None, "cancel_reason": None}
_UNSET_STEP = {"started_at": None, "finished_at": None, "compensated_at": None,
               "last_error": None, "result": None}


def get_workflow(engine: Engine, workflow_id: str, *, kind: str | None = None) -> WorkflowView:
    """The run with its steps (in order); NotFound if there is none (of `kind`, if given)."""
    workflow_id = _check_id(workflow_id)
    # Core rows (the API reads a run back after every start): a third of an ORM load's CPU.
    with read_connection(engine) as c:
        w = c.execute(_GET, {"id": workflow_id}).first()
        if w is None or (kind is not None and w.kind != kind):
            raise NotFound(f"no {kind or 'workflow'} {workflow_id}")
        steps = c.execute(_STEPS, {"id": workflow_id}).all()
    return _view(w, steps)  # type: ignore[arg-type]


_WF = Workflow.__table__  # type: ignore[attr-defined]
_ST = WorkflowStep.__table__  # type: ignore[attr-defined]
_GET = select(_WF).where(_WF.c.id == bindparam("id"))
_STEPS = select(_ST).where(_ST.c.workflow_id == bindparam("id")).order_by(_ST.c.seq)


def cancel_workflow(engine: Engine, workflow_id: str, *, actor: str, reason: str,
                    kind: str | None = None) -> WorkflowView:
    """Ask the run to stop; returns it as it is now (the worker compensates it from the next
    step boundary). Asking again changes nothing and answers the same. NotFound if there is no
    such run (of `kind`, if given); Conflict if it has finished or is already compensating
    after a failure; InvalidInput for a missing or overlong reason."""
    reason = (reason or "").strip()
    if not reason or len(reason) > 200:
        raise InvalidInput("reason", "empty or longer than 200 characters",
                           expected="why the run is cancelled")
    bad = next((i for i, c in enumerate(reason) if not c.isprintable()), None)
    if bad is not None:
        raise InvalidInput("reason", "a control character", position=bad + 1,
                           expected="printable text")
    get_workflow(engine, workflow_id, kind=kind)  # checks the id and the kind
    request_cancel(engine, _check_id(workflow_id), actor=actor, reason=reason)
    return get_workflow(engine, workflow_id)


def list_workflows(engine: Engine, *, kind: str | None = None, status: str | None = None,
                   subject: str | None = None, before: str | None = None,
                   limit: int = 50) -> list[WorkflowView]:
    """Runs, newest first (without their steps), from before the run `before` (paging)."""
    if kind is not None and kind not in KINDS:
        raise InvalidInput("kind", "unknown workflow kind", value=kind, expected=", ".join(KINDS))
    if status is not None and status not in STATUSES:
        raise InvalidInput("status", "unknown workflow status", value=status,
                           expected=", ".join(STATUSES))
    if not 1 <= limit <= 500:
        raise InvalidInput("limit", "out of range", value=str(limit), expected="1..500")
    stmt = select(Workflow)
    for column, wanted in ((col(Workflow.kind), kind), (col(Workflow.status), status),
                           (col(Workflow.subject), subject)):
        if wanted is not None:
            stmt = stmt.where(column == wanted)
    with read_session(engine) as s:
        if before is not None:
            anchor = s.get(Workflow, _check_id(before, "cursor"))
            if anchor is None:
                raise NotFound(f"no workflow {before}")
            stmt = stmt.where(
                (col(Workflow.created_at) < anchor.created_at)
                | ((col(Workflow.created_at) == anchor.created_at)
                   & (col(Workflow.id) < anchor.id)))
        rows = list(s.execute(stmt.order_by(col(Workflow.created_at).desc(),
                                            col(Workflow.id).desc()).limit(limit)).scalars())
    return [_view(w) for w in rows]


_ = service_flows  # registers suspend, resume, swap and termination
