"""A real browser for console tests: Debian's Chromium driven by PyPI playwright (its own
browser download is never used), and the console served by uvicorn on a free port in a thread
of the test process (same engine and HSM as the test)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from tests.api.live import free_port
from tests.helpers.services import services_required

CHROMIUM = os.environ.get("SIMSMITH_CHROMIUM", "/usr/bin/chromium")


def chromium_path() -> str:
    if shutil.which(CHROMIUM) is None:
        if services_required():
            pytest.fail(f"{CHROMIUM} is missing (scripts/install-system-deps.sh installs "
                        "Debian's chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    return CHROMIUM


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """The app on http://127.0.0.1:<port> until the block ends."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        raise RuntimeError("console server did not start")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=args, headless=True)
        try:
            yield b
        finally:
            b.close()
