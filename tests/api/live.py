"""A real server for tests: `simsmith serve` in a separate process (several workers, each with
its own SO_REUSEPORT socket), its JSON log captured to a file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, database_url: str, home: Path, *, workers: int = 2,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "server.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SIMSMITH_")}
        environ.update({"SIMSMITH_DATABASE_URL": database_url, "SIMSMITH_HOME": str(home),
                        "SIMSMITH_LOG_JSON": "1", "SIMSMITH_LOG_LEVEL": "INFO"})
        environ.update(env or {})
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(workers), "--smdp", "in-process"],
            env=environ, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2])
        deadline = time.monotonic() + 120  # a loaded CI machine; only a bound on waiting
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not become ready in 120 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
