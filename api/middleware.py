"""Request IDs, access logs and metrics, as one plain ASGI middleware (cheaper than Starlette's
BaseHTTPMiddleware).

Every response carries `X-Request-ID` (the client's, if it sent a sane one, else a new one);
every log line written while the request runs carries `request_id` (structlog contextvars);
one JSON access line per request names method, route template, status, duration and API key id
— never headers, query values or bodies.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import structlog
from opentelemetry import trace

from api.metrics import Metrics
from api.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPES
from simcore import telemetry
from simcore.log import get_logger

_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}\Z")
log = get_logger("api.access")


class RequestContextMiddleware:
    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                text = value.decode("latin-1")
                if _SANE_ID.match(text):
                    request_id = text
                break
        if not request_id:
            request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        responded = False
        started = time.perf_counter()

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                if server_span is not None:
                    # The ASGI server span knows the path only; name it by the route template
                    # (routing is done by now; the span ends with the response body).
                    template = getattr(scope.get("route"), "path", None) or "(unmatched)"
                    server_span.update_name(f"{scope['method']} {template}")
                    server_span.set_attribute("http.route", template)
                    server_span.set_attribute("simsmith.request_id", request_id)
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        # The OpenTelemetry server span around this request (api.main adds the ASGI middleware
        # outside this one when tracing is on).
        server_span = trace.get_current_span() if telemetry.tracing_enabled() else None
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # The traceback goes to the log (with the request ID); the client gets a bare 500.
            log.exception("unhandled error", method=scope["method"], path=scope.get("path"))
            if not responded:
                body = json.dumps({"type": PROBLEM_TYPES["internal-error"].uri,
                                   "title": "Internal error", "status": 500,
                                   "request_id": request_id}).encode()
                await send_with_id({"type": "http.response.start", "status": 500, "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode())]})
                await send_with_id({"type": "http.response.body", "body": body})
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "(unmatched)"
            self.metrics.observe(scope["method"], template, status, elapsed)
            key = scope.get("state", {}).get("api_key")
            log.info("request", method=scope["method"], route=template, status=status,
                     ms=round(elapsed * 1000, 2), api_key=getattr(key, "id", None))
            structlog.contextvars.reset_contextvars(**tokens)
