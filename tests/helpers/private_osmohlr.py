"""A private osmo-hlr for tests that stop and start it (the shared one of
scripts/services/osmohlr.sh is never stopped by a test): its own loopback address, config and
database under the test's directory, started and stopped by the test.

osmo-hlr's ports are fixed (GSUP 4222, VTY 4258, CTRL 4259), so each instance gets an address
of its own in 127.0.0.0/8 whose CTRL port is free.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.services import services_required

CONFIG = """log stderr
 logging filter all 1
 logging color 0
 logging level main notice
 logging level linp error
line vty
 bind {host}
ctrl
 bind {host}
hlr
 gsup
  bind ip {host}
"""


def _free(host: str) -> bool:
    for port in (4222, 4258, 4259):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class PrivateOsmoHlr:
    def __init__(self, directory: Path) -> None:
        binary = shutil.which("osmo-hlr")
        if binary is None:
            msg = "osmo-hlr not installed (apt package osmo-hlr, scripts/apt/osmo.txt)"
            if services_required():
                pytest.fail(msg)
            pytest.skip(msg)
        self.binary = binary
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        for _ in range(50):
            host = f"127.0.{random.randint(10, 250)}.{random.randint(2, 250)}"
            if _free(host):
                break
        else:
            raise RuntimeError("no free loopback address for a private osmo-hlr")
        self.host, self.ctrl_port = host, 4259
        (self.dir / "osmo-hlr.cfg").write_text(CONFIG.format(host=host))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateOsmoHlr:
        log = (self.dir / "osmo-hlr.log").open("ab")
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.dir / "osmo-hlr.cfg"), "-l", str(self.dir / "hlr.db")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + 20
        while not _listening(self.host, self.ctrl_port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("private osmo-hlr did not start: "
                                   + (self.dir / "osmo-hlr.log").read_text()[-1000:])
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None
