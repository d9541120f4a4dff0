"""The console's web plumbing: Jinja2 templates (autoescaped), the security headers of every
/console response, the session cookie, and errors rendered as pages instead of problem+json.

Headers (OWASP Secure Headers): a Content-Security-Policy that allows scripts, styles and
images from the console's own origin only (no inline script or style, so an injected tag runs
nothing), frame-ancestors 'none', no referrer, no caching of pages that may show a SIM.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from api.problems import classify
from simcore.errors import InvalidInput, SimsmithError
from simcore.models import utcnow

PREFIX = "/console"
COOKIE = "simsmith_console"
PRE_COOKIE = "simsmith_console_login"  # the login form's double-submit token (login CSRF)
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["PREFIX"] = PREFIX


def duration(start: datetime | None, end: datetime | None = None) -> str:
    """A span of time for a person: 850 ms, 4.2 s, 3 min 05 s, 2 h 10 min ('' without start)."""
    if start is None:
        return ""
    seconds = max(((end or utcnow()) - start).total_seconds(), 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


templates.env.filters["duration"] = duration

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "testserver"})


class ConsoleHeaders:
    """Plain ASGI middleware: the security headers on every /console response; pages (not the
    static files) are `Cache-Control: no-store`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        static = path.startswith(PREFIX + "/static/")

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ())
                           if h[0].lower() != b"cache-control" or static]
                headers.extend(HEADERS)
                headers.append((b"cache-control",
                                b"public, max-age=3600" if static else b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def secure_cookies(request: Request) -> bool:
    """Cookies are Secure except for a console reached on this machine over plain HTTP."""
    return (request.url.hostname or "") not in LOCAL_HOSTS


def set_cookie(response: Response, request: Request, name: str, value: str, *,
               max_age: int | None = None, path: str = PREFIX) -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True,
                        samesite="strict", secure=secure_cookies(request))


def render(request: Request, name: str, context: dict[str, Any] | None = None, *,
           status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    ctx: dict[str, Any] = {"me": getattr(request.state, "console", None)}
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status, headers=headers)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


class LoginRequired(Exception):
    """No live session: the browser goes to the login page."""


class Refused(Exception):
    """The console refuses a request: a status and a sentence for the person."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def error_response(request: Request, exc: BaseException) -> Response:
    """An error on a /console path as a page (or a redirect to the login page)."""
    if isinstance(exc, LoginRequired):
        target = f"{PREFIX}/login"
        if request.method == "GET" and request.url.path != target:
            from urllib.parse import quote

            target += "?next=" + quote(request.url.path, safe="/")
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return redirect(target)
    if isinstance(exc, Refused):
        status, title, message = exc.status, "Refused", exc.message
    elif isinstance(exc, HTTPException):
        status, title, message = exc.status_code, "Error", str(exc.detail)
    elif isinstance(exc, RequestValidationError):
        # Never echo the input: names of the fields at fault only.
        fields = sorted({str(e.get("loc", ("", ""))[-1]) for e in exc.errors()})
        status, title = 422, "Invalid form"
        message = "Check these fields: " + ", ".join(fields)
    elif isinstance(exc, SimsmithError):
        t = classify(exc)
        status, title, message = t.status, t.title, str(exc)
    else:
        status, title, message = 500, "Internal error", "Something went wrong; the log has "\
            f"the request ID {getattr(request.state, 'request_id', '')}."
    field = exc.field if isinstance(exc, InvalidInput) else None
    return render(request, "error.html", {"title": title, "message": message,
                                          "field": field, "status": status}, status=status)
