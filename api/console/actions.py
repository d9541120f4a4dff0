"""A SIM's lifecycle actions from the console: activate, suspend, resume, swap and terminate,
each behind a confirmation page, and a webhook delivery re-sent.

Optimistic locking: the confirmation page carries the SIM's version as it was shown; the
service (simcore.inventory) refuses the change with StaleVersion (409) if the SIM changed
since, so two agents never act on different pictures of one SIM. Every change is audited by
the service with the console person as the actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.console.auth import CheckedForm, Need, text
from api.console.web import PREFIX, redirect, render
from api.deps import ctx_of
from simcore import inventory, webhooks
from simcore.console.sessions import Principal
from simcore.errors import InvalidInput

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Writer = Annotated[Principal, Need("sims:write")]
Hooks = Annotated[Principal, Need("webhooks:manage")]


@dataclass(frozen=True)
class Action:
    verb: str
    title: str
    reason: str  # "required", "optional" or "" (no reason field)
    danger: bool = False


ACTIONS = {
    "activate": Action("activate", "Activate", ""),
    "suspend": Action("suspend", "Suspend", "optional"),
    "resume": Action("resume", "Resume", ""),
    "swap": Action("swap", "Swap to another SIM", "optional"),
    "terminate": Action("terminate", "Terminate", "required", danger=True),
}


def _action(name: str) -> Action:
    if name not in ACTIONS:
        raise InvalidInput("action", "unknown SIM action", value=name[:20],
                           expected=", ".join(ACTIONS))
    return ACTIONS[name]


def _version(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 12:
        raise InvalidInput("version", "not a SIM version", value=raw[:20], expected="digits")
    return int(raw)


@router.get("/sims/{iccid}/{action}")
def confirm_page(request: Request, iccid: str, action: str, _me: Writer,
                 version: str | None = None) -> HTMLResponse:
    act = _action(action)
    sim = inventory.get_sim(ctx_of(request).engine, iccid)
    return render(request, "confirm.html", {
        "sim": sim, "act": act, "version": _version(version) if version else sim.version})


@router.post("/sims/{iccid}/{action}")
def do_action(request: Request, iccid: str, action: str, me: Writer,
              form: CheckedForm) -> Response:
    act = _action(action)
    ctx = ctx_of(request)
    engine = ctx.engine
    version = _version(text(form, "version", max_len=12))
    reason = text(form, "reason", max_len=64) or None
    if act.reason == "required" and not reason:
        raise InvalidInput("reason", "empty", expected="why the SIM is terminated")
    target = iccid
    if act.verb == "activate":
        # An MSISDN given, or the next free one of the pool ("auto").
        inventory.activate(engine, iccid, actor=me.actor,
                           msisdn=text(form, "msisdn", max_len=16) or "auto",
                           expected_version=version)
    elif act.verb == "suspend":
        inventory.suspend(engine, iccid, actor=me.actor, reason=reason, expected_version=version)
    elif act.verb == "resume":
        inventory.resume(engine, iccid, actor=me.actor, expected_version=version)
    elif act.verb == "terminate":
        inventory.terminate(engine, iccid, actor=me.actor, reason=reason or "",
                            quarantine_days=ctx.settings.quarantine_days,
                            expected_version=version)
    else:
        new = text(form, "new_iccid", max_len=22) or None
        _old, fresh = inventory.swap(engine, iccid, actor=me.actor, new_iccid=new,
                                     reason=reason or "swapped", expected_version=version)
        target = fresh.iccid
    return redirect(f"{PREFIX}/sims/{target}")


@router.post("/webhooks/deliveries/{delivery_id}/redeliver")
def redeliver(request: Request, delivery_id: int, me: Hooks, form: CheckedForm) -> Response:
    webhooks.redeliver(ctx_of(request).engine, delivery_id, actor=me.actor)
    back = text(form, "back", max_len=22)
    if back.isdigit():
        return redirect(f"{PREFIX}/sims/{back}")
    return redirect(f"{PREFIX}/admin/webhooks")
