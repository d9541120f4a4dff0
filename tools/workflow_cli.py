"""`simsmith activate`, `simsmith worker` and `simsmith workflows …`: durable workflows
(simcore.workflows) from the command line.

A command starts a run and prints it; `--wait` also works on it in this process until it
finishes (or another worker does). `simsmith worker` is a worker process of its own: run one
or several beside `simsmith serve` (SIMSMITH_WORKFLOW_WORKER=false keeps serve's own off).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer
from sqlalchemy import Engine

from tools.common import (
    JsonOpt,
    actor,
    console,
    engine,
    handle_errors,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    from simcore.workflows.service import WorkflowView

app = typer.Typer(no_args_is_help=True)


class _Service:
    """simcore.workflows.service, imported on first use: `simsmith activate` and `worker` are
    root commands, and the root must stay cheap to import."""

    def __getattr__(self, name: str) -> Any:
        from simcore.workflows import service as real

        return getattr(real, name)


service: Any = _Service()

WaitOpt = typer.Option(None, "--wait", help="Work on the run here until it finishes (at most "
                       "this many seconds).")


def _deps(eng: Engine) -> Any:
    from api.settings import ApiSettings
    from simcore.config import get_settings
    from simcore.hsm_access import open_hsm, store_audit_sink
    from simcore.smdp.es2plus_port import configured_smdp
    from simcore.workflows.runtime import WorkflowSettings, build_deps

    smdp = configured_smdp(eng, ApiSettings().smdp_address)

    def hsm() -> Any:
        s = get_settings()
        return open_hsm(s, audit=store_audit_sink("workflow-worker", s))

    return build_deps(eng, WorkflowSettings(), smdp=smdp, hsm=hsm)


def _show(v: WorkflowView, as_json: bool) -> None:
    if as_json:
        print_json(v.as_dict())
        return
    print_table(f"{v.kind} {v.id}", ["status", "subject", "error", "trace id"],
                [(v.status, v.subject, v.error, v.trace_id)])
    if v.notice:
        console.print(f"note: {v.notice}", soft_wrap=True)
    if v.cancel_requested_at:
        print_table(None, ["cancel asked", "by", "reason"],
                    [(v.cancel_requested_at, v.cancel_requested_by, v.cancel_reason)])
    if v.steps:
        print_table(None, ["#", "step", "status", "attempts", "started", "finished", "error"],
                    [(s.seq, s.name, s.status, s.attempts, s.started_at, s.finished_at,
                      s.last_error) for s in v.steps])


def _finish(eng: Engine, wid: str, wait: float | None, as_json: bool) -> None:
    if wait is not None:
        from simcore.workflows.engine import Worker
        from simcore.workflows.runtime import WorkflowSettings

        settings = WorkflowSettings()
        worker = Worker(eng, _deps(eng), lease=settings.workflow_lease_seconds,
                        policy=settings.policy())
        deadline = time.monotonic() + wait
        while not service.get_workflow(eng, wid).finished and time.monotonic() < deadline:
            if worker.run_once() == 0:
                time.sleep(0.1)
    v = service.get_workflow(eng, wid)
    _show(v, as_json)
    if v.status in ("failed", "stuck"):  # cancelled is what was asked for
        raise typer.Exit(1)


def _run(start: Callable[[Engine], str], wait: float | None, as_json: bool) -> None:
    eng = engine()
    _finish(eng, start(eng), wait, as_json)


def activate(
    subscriber_ref: str = typer.Argument(..., help="The subscriber (your CRM's reference)."),
    kind: str = typer.Option("physical", "--kind", help="physical or esim"),
    iccid: str | None = typer.Option(None, "--iccid", help="This SIM; default: next in stock"),
    msisdn: str = typer.Option("auto", "--msisdn", help="'auto', a number, or 'none'"),
    eid: str | None = typer.Option(None, "--eid", help="eSIM: the device's EID"),
    batch: str | None = typer.Option(None, "--batch"),
    idempotency_key: str | None = typer.Option(None, "--idempotency-key"),
    wait: float | None = WaitOpt, as_json: bool = JsonOpt,
) -> None:
    """Activate a subscriber: reserve a SIM (or eSIM profile), MSISDN, keys, HLR, SM-DP+ order,
    active, notify — one durable workflow, compensated if a step fails for good."""
    req: dict[str, Any] = {"subscriber_ref": subscriber_ref, "kind": kind,
                           "msisdn": None if msisdn == "none" else msisdn}
    for k, v in (("iccid", iccid), ("eid", eid), ("batch", batch)):
        if v:
            req[k] = v
    _run(lambda eng: service.start_activation(eng, req, actor=actor(),
                                              idempotency_key=idempotency_key), wait, as_json)


@app.command("suspend")
@handle_errors
def suspend(iccid: str = typer.Argument(...), reason: str | None = typer.Option(None, "--reason"),
            wait: float | None = WaitOpt, as_json: bool = JsonOpt) -> None:
    """Suspend: HLR access barred, then the SIM suspended."""
    _run(lambda eng: service.start_suspend(eng, iccid, actor=actor(), reason=reason), wait,
         as_json)


@app.command("resume")
@handle_errors
def resume(iccid: str = typer.Argument(...), wait: float | None = WaitOpt,
           as_json: bool = JsonOpt) -> None:
    """Resume: HLR access allowed, then the SIM active."""
    _run(lambda eng: service.start_resume(eng, iccid, actor=actor()), wait, as_json)


@app.command("swap")
@handle_errors
def swap(iccid: str = typer.Argument(...), new_iccid: str | None = typer.Option(None, "--new"),
         resume: bool = typer.Option(False, "--resume", help="Resume a suspended subscription "
                                     "with the swap (default: the new SIM takes over "
                                     "suspended, barred at the HLR)."),
         wait: float | None = WaitOpt, as_json: bool = JsonOpt) -> None:
    """SIM swap: the new SIM provisioned, the MSISDN moved, the old SIM removed. A suspended
    SIM's new SIM stays suspended (barred at the HLR) unless --resume."""
    _run(lambda eng: service.start_swap(eng, iccid, actor=actor(), new_iccid=new_iccid,
                                        resume=resume), wait, as_json)


@app.command("terminate")
@handle_errors
def terminate(iccid: str = typer.Argument(...), reason: str = typer.Option(..., "--reason"),
              wait: float | None = WaitOpt, as_json: bool = JsonOpt) -> None:
    """Terminate: removed from the HLR, eSIM order cancelled, SIM terminated and quarantined."""
    _run(lambda eng: service.start_termination(eng, iccid, actor=actor(), reason=reason), wait,
         as_json)


@app.command("cancel")
@handle_errors
def cancel(workflow_id: str = typer.Argument(...),
           reason: str = typer.Option(..., "--reason", help="Why (audited)."),
           wait: float | None = WaitOpt, as_json: bool = JsonOpt) -> None:
    """Cancel a run that has not finished: the worker stops at the next step boundary and
    compensates the finished steps in reverse; the run ends `cancelled`. Refused (exit 1) once
    it has finished or is compensating after a failure; asking again changes nothing."""
    eng = engine()
    v = service.cancel_workflow(eng, workflow_id, actor=actor(), reason=reason)
    _finish(eng, v.id, wait, as_json)


@app.command("list")
@handle_errors
def list_(kind: str | None = typer.Option(None, "--kind"),
          status: str | None = typer.Option(None, "--status"),
          subject: str | None = typer.Option(None, "--subject"),
          limit: int = typer.Option(50, "--limit"), as_json: bool = JsonOpt) -> None:
    """Workflows, newest first."""
    views = service.list_workflows(engine(), kind=kind, status=status, subject=subject,
                                   limit=limit)
    if as_json:
        print_json([v.as_dict() for v in views])
        return
    print_table(None, ["id", "kind", "status", "subject", "created", "error"],
                [(v.id, v.kind, v.status, v.subject, v.created_at, v.error) for v in views])


@app.command("show")
@handle_errors
def show(workflow_id: str = typer.Argument(...), as_json: bool = JsonOpt) -> None:
    """One workflow and its steps: status, attempts, timestamps, errors, trace id."""
    _show(service.get_workflow(engine(), workflow_id), as_json)


def worker(threads: int | None = typer.Option(None, "--threads", min=1, help="Worker threads "
                                               "(default SIMSMITH_WORKFLOW_THREADS)"),
           once: bool = typer.Option(False, "--once", help="Run what is due now, then exit.")
           ) -> None:
    """A workflow worker process: claims due runs (FOR UPDATE SKIP LOCKED on PostgreSQL, so
    several processes share the load) until SIGTERM or SIGINT."""
    from simcore.workflows.engine import Worker
    from simcore.workflows.runtime import WorkerPool, WorkflowSettings

    eng = engine()
    settings = WorkflowSettings()
    deps = _deps(eng)
    if once:
        w = Worker(eng, deps, lease=settings.workflow_lease_seconds, policy=settings.policy())
        while w.run_once():
            pass
        return
    pool = WorkerPool(eng, deps, settings, threads=threads).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: pool.stop(timeout=0))
    pool.wait()
    pool.stop()


app.command("worker")(handle_errors(worker))


def register(root: typer.Typer) -> None:
    root.command("activate")(handle_errors(activate))
    root.command("worker")(handle_errors(worker))


__all__ = ["app", "register"]
