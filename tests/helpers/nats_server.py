"""A real nats-server (Debian package nats-server) for the relay tests.

`nats_url()` is the shared server scripts/services/nats.sh started (SIMSMITH_TEST_NATS_URL);
`PrivateNats` runs one of a test's own, in a temporary directory on a free port, that the test
may stop and start again (the shared one is never restarted). Without nats-server the tests
skip, or fail when the full suite requires every service.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.services import services_required


def _missing(what: str) -> None:
    if services_required():
        pytest.fail(f"{what} but the full suite requires NATS (scripts/services/nats.sh)")
    pytest.skip(what)


def nats_url() -> str:
    url = os.environ.get("SIMSMITH_TEST_NATS_URL")
    if not url:
        _missing("SIMSMITH_TEST_NATS_URL is not set")
    return str(url)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateNats:
    def __init__(self, base: Path) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            _missing("nats-server is not installed (scripts/apt/nats.txt)")
        self.binary = str(binary)
        self.base = base
        self.port = _free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        (self.base / "store").mkdir(parents=True, exist_ok=True)
        log = open(self.base / "nats.log", "ab")  # noqa: SIM115 (the server's, closed with it)
        self.proc = subprocess.Popen(
            [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port),
             "-sd", str(self.base / "store")], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError((self.base / "nats.log").read_text()) from None
                time.sleep(0.05)
        raise RuntimeError("nats-server did not listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
