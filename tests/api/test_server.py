"""`simsmith serve --workers N` (api.server): one SO_REUSEPORT socket per worker, so keep-alive
clients spread over the workers; a worker that dies is replaced."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from api.server import listening_socket, reuseport_supported
from simcore import db
from tests.api.live import LiveServer

pytestmark = pytest.mark.skipif(not reuseport_supported(), reason="Linux SO_REUSEPORT only")


def _workers(parent: int) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def _established(port: int, state: str = "01") -> set[int]:
    """Socket inodes of TCP sockets whose local port is `port`, in `state` (01 established,
    0A listening)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                inodes.add(int(fields[9]))
    return inodes


def _sockets_of(pid: int) -> set[int]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def test_listening_sockets_share_the_address() -> None:
    a = listening_socket("127.0.0.1", 0)
    try:
        port = a.getsockname()[1]
        b = listening_socket("127.0.0.1", port)  # a second bind: the SO_REUSEPORT group
        b.close()
        assert a.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
    finally:
        a.close()


@pytest.mark.slow
def test_keepalive_clients_spread_over_workers_and_a_dead_worker_is_replaced(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    db.upgrade(db.make_engine(url))
    server = LiveServer(url, tmp_path, workers=2)
    try:
        workers = _workers(server.proc.pid)
        assert len(workers) == 2
        deadline = time.monotonic() + 30  # ready = the first worker; wait for the second
        while len(_established(server.port, "0A")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_established(server.port, "0A")) == 2
        clients = []
        for _ in range(32):  # 32 keep-alive connections, each answered once
            c = socket.create_connection(("127.0.0.1", server.port))
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            assert c.recv(4096).startswith(b"HTTP/1.1 200")
            clients.append(c)
        established = _established(server.port)
        per_worker = Counter({pid: len(_sockets_of(pid) & established) for pid in workers})
        assert sum(per_worker.values()) == 32
        # The kernel hashes connections over both sockets: Binomial(32, 1/2) is below 4 with
        # a probability of ~1e-5. uvicorn's shared socket gave one worker nearly all of them.
        assert min(per_worker.values()) >= 4, per_worker
        for c in clients:
            c.close()

        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = _workers(server.proc.pid)
            if len(now) == 2 and workers[0] not in now:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the dead worker was not replaced: {_workers(server.proc.pid)}")
        for _ in range(20):
            assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
    finally:
        server.stop()
    assert server.proc.returncode == 0
    assert _workers(server.proc.pid) == []
