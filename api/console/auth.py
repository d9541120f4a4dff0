"""Who is using the console, and what they may do: the session behind the cookie, the API's
scopes (`Need("sims:write")`), and the CSRF token every form carries (`CheckedForm`).

A console person may do what an API key with the same scopes may (simcore.apikeys), no more:
the same scope names, the same rule (admin implies all but the care and service-centre codes).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from api.console.web import COOKIE, LoginRequired, Refused
from api.deps import ctx_of
from simcore.console import sessions
from simcore.console.sessions import NoSession, Principal

CSRF_FIELD = "csrf_token"


async def current(request: Request) -> Principal:
    """The live session of the request's cookie; LoginRequired (a redirect) without one."""
    cached = getattr(request.state, "console", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired()
    try:
        who = await run_in_threadpool(sessions.lookup, ctx_of(request).engine, token)
    except NoSession:
        raise LoginRequired() from None
    request.state.console = who
    return who


Me = Annotated[Principal, Depends(current)]


class _Need:
    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(self, request: Request) -> Principal:
        who = await current(request)
        if not who.allows(self.scope):
            raise Refused(403, f"This needs the scope {self.scope!r}, which {who.name} "
                          "does not hold.")
        return who


def Need(scope: str) -> Any:
    """`Annotated[Principal, Need("sims:write")]`: the session, holding `scope`."""
    from simcore.apikeys import SCOPES

    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    return Depends(_Need(scope))


async def checked_form(request: Request) -> FormData:
    """The POSTed form, once its CSRF token is the session's (403 otherwise). Needs a session:
    the token is per session."""
    who = await current(request)
    form = await request.form(max_files=0, max_fields=50, max_part_size=64 * 1024)
    token = form.get(CSRF_FIELD)
    if not sessions.check_csrf(who, token if isinstance(token, str) else None):
        raise Refused(403, "The form's CSRF token is missing or not this session's: reload "
                      "the page and try again.")
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def text(form: FormData, name: str, *, max_len: int = 256) -> str:
    """A form field as stripped text ('' when absent), bounded."""
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    if len(value) > max_len:
        from simcore.errors import InvalidInput

        raise InvalidInput(name, "too long", expected=f"at most {max_len} characters")
    return value.strip()
