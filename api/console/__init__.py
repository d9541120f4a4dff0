"""The operator console (issue 19, design §11): server-rendered pages at /console on the API's
services and scopes. Jinja2 templates, htmx (vendored, static/) for the live parts, SVG charts
drawn on the server, no JavaScript build and no inline script (a strict CSP).

`mount(app)` adds the console's routers, its static files and its security headers to an API
app; api.main calls it. Modules: web (templates, headers, cookies, error pages), auth (session,
scopes, CSRF), pages (login, dashboard, search, SIM), actions (lifecycle with confirmation),
esim (orders, QR codes), imports (vendor files), admin (API keys, webhooks, users).
"""

from __future__ import annotations

import importlib

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.console.web import HERE, PREFIX, ConsoleHeaders

MODULES = ("pages", "esim", "imports", "admin", "activations", "actions")


def mount(app: FastAPI) -> None:
    for name in MODULES:
        try:
            module = importlib.import_module(f"api.console.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"api.console.{name}":
                raise
            continue
        app.include_router(module.router)
    app.mount(PREFIX + "/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_middleware(ConsoleHeaders)
