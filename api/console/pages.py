"""Login and logout, the dashboard, the search and a SIM's page (with care's PIN1/PUK1 reveal).

Routes are thin: dependencies (session, scope, CSRF-checked form) → one simcore call → a
template. Blocking calls run in the thread pool (`def` routes).
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.auth import CheckedForm, Me, Need, text
from api.console.web import (
    COOKIE,
    PRE_COOKIE,
    PREFIX,
    Refused,
    redirect,
    render,
    set_cookie,
)
from api.deps import ctx_of
from simcore import care, inventory
from simcore.console import sessions, users, views
from simcore.console.sessions import LoginThrottled, Principal
from simcore.errors import InvalidInput

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Reader = Annotated[Principal, Need("sims:read")]
Care = Annotated[Principal, Need("care:access-codes")]


def _safe_next(target: str | None) -> str:
    # Only a path inside the console: never an open redirect to another site.
    if target and target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target:
        return target
    return PREFIX + "/"


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, "login.html", {"pre": pre, "next": _safe_next(next)})
    set_cookie(response, request, PRE_COOKIE, pre, path=PREFIX + "/login")
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10, max_part_size=4096)
    pre = request.cookies.get(PRE_COOKIE)
    given = form.get("pre")
    if not pre or not isinstance(given, str) or not secrets.compare_digest(pre, given):
        raise Refused(403, "The login form expired or came from elsewhere: reload the login "
                      "page and try again.")
    engine = ctx_of(request).engine
    client = request.client.host if request.client else None
    username = str(form.get("username") or "").strip()[:64]
    password = str(form.get("password") or "")[:256]
    api_key = str(form.get("api_key") or "").strip()[:128]
    target = _safe_next(str(form.get("next") or ""))
    try:
        if api_key:
            token, _who = await run_in_threadpool(sessions.login_api_key, engine, api_key,
                                                  client=client)
        else:
            token, _who = await run_in_threadpool(sessions.login_password, engine, username,
                                                  password, client=client)
    except LoginThrottled as e:
        return render(request, "login.html", {"pre": pre, "next": target, "error": str(e),
                                              "username": username}, status=429,
                      headers={"Retry-After": str(e.retry_after)})
    except users.BadCredentials as e:
        return render(request, "login.html", {"pre": pre, "next": target, "error": str(e),
                                              "username": username}, status=401)
    response = redirect(target)
    set_cookie(response, request, COOKIE, token, max_age=int(sessions.LIFETIME.total_seconds()))
    response.delete_cookie(PRE_COOKIE, path=PREFIX + "/login")
    return response


@router.post("/logout")
def logout(request: Request, me: Me, _form: CheckedForm) -> Response:
    sessions.logout(ctx_of(request).engine, me)
    response = redirect(PREFIX + "/login")
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


@router.get("/")
def dashboard(request: Request, _me: Reader) -> HTMLResponse:
    board = views.dashboard(ctx_of(request).engine)
    return render(request, "dashboard.html", {"board": board})


@router.get("/dashboard/panel")
def dashboard_panel(request: Request, _me: Reader) -> HTMLResponse:
    """The dashboard's live part, polled by htmx."""
    board = views.dashboard(ctx_of(request).engine)
    return render(request, "_dashboard_panel.html", {"board": board})


@router.get("/sims")
def search(request: Request, _me: Reader,
           q: Annotated[str, Query(max_length=64)] = "",
           field: Annotated[str, Query(max_length=16)] = "any",
           after: Annotated[str | None, Query(max_length=32, pattern="^[0-9]*$")] = None,
           ) -> HTMLResponse:
    results = None
    error = None
    if q:
        try:
            results = views.search_sims(ctx_of(request).engine, q, where=field,
                                        after=after or None, limit=PAGE)
        except InvalidInput as e:
            error = e
    return render(request, "search.html", {
        "q": q, "field": field, "fields": views.SEARCH_FIELDS, "results": results,
        "error": error, "page": PAGE, "after": after},
        status=422 if error else 200)


PAGE = 25


@router.get("/sims/{iccid}")
def sim_page(request: Request, iccid: str, me: Reader) -> HTMLResponse:
    engine = ctx_of(request).engine
    sim = inventory.get_sim(engine, iccid)
    more = views.sim_context(engine, sim.iccid)
    return render(request, "sim.html", {"sim": sim, "more": more,
                                        "runs": views.sim_workflows(engine, sim),
                                        "can_write": me.allows("sims:write"),
                                        "can_care": me.allows("care:access-codes"),
                                        "can_order": me.allows("esim:order"),
                                        "can_hooks": me.allows("webhooks:manage")})


@router.post("/sims/{iccid}/access-codes")
def reveal_codes(request: Request, iccid: str, me: Care, form: CheckedForm) -> HTMLResponse:
    """Care reads PIN1/PUK1 with a reason (simcore.care: audited before the answer)."""
    ctx = ctx_of(request)
    reason = text(form, "reason", max_len=care.REASON_MAX)
    if not reason:
        raise InvalidInput("reason", "empty", expected="why the codes are read (a ticket)")
    codes = care.reveal_access_codes(ctx.engine, ctx.open_hsm, iccid, actor=me.actor,
                                     reason=reason)
    return render(request, "codes.html", {"codes": codes, "reason": reason},
                  headers={"Pragma": "no-cache"})
