"""Running the API: uvicorn, one process per worker, each with its own listening socket.

uvicorn's own multi-worker mode binds one socket in the parent and shares it: every worker
accepts from the same queue, and the one that wakes first takes every connection waiting
(asyncio accepts up to the backlog per wake-up). Clients that keep connections open — a BSS or a
CRM with a connection pool, a load balancer's keep-alive pool — then all land on one worker
while the others idle (measured: 32 keep-alive clients, one worker at 100 % CPU, the other at
7 %). On Linux each worker here binds its own SO_REUSEPORT socket instead, and the kernel spreads
new connections over the workers by their address hash (the fix uvicorn, gunicorn and granian
users apply for the same problem). The parent supervises: it restarts a worker that dies and
stops them all on SIGINT/SIGTERM. One worker, port 0 or a system without SO_REUSEPORT:
`uvicorn.run` as before.
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
import socket
import sys
import time
from typing import Any

from simcore.log import get_logger

APP = "api.main:create_app"
log = get_logger("api.server")
_serving = False


def serving() -> bool:
    """Whether this process is a server that `run` started (its app then tunes the GC)."""
    return _serving


def tune_gc() -> None:
    """Called once the app has started: everything built so far (app, routes, models,
    SQLAlchemy's caches) lives as long as the process, so it leaves the cyclic collector's
    scans (gc.freeze), and young objects are collected less often. Requests allocate much and
    keep little; full collections were stalls in the order latency's tail."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


def reuseport_supported() -> bool:
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) in the SO_REUSEPORT group of that address.

    The protocol is named (IPPROTO_TCP), so asyncio sets TCP_NODELAY on accepted connections
    (it checks the listener's `proto`; a bare socket() has 0)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _worker(host: str, port: int, options: dict[str, Any]) -> None:
    import uvicorn

    global _serving
    _serving = True
    sock = listening_socket(host, port)
    config = uvicorn.Config(APP, factory=True, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[sock])


def run(host: str, port: int, workers: int = 1, **options: Any) -> None:
    """Serve the API until SIGINT/SIGTERM. `options`: uvicorn.Config keywords (log_level, …)."""
    import uvicorn

    global _serving
    _serving = True
    if workers <= 1 or port == 0 or not reuseport_supported():
        uvicorn.run(APP, factory=True, host=host, port=port, workers=workers, **options)
        return
    listening_socket(host, port).close()  # the address is usable: fail here, not in N workers
    spawn = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> Any:
        proc = spawn.Process(target=_worker, args=(host, port, options), daemon=False)
        proc.start()
        return proc

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    procs = [start() for _ in range(workers)]
    log.info("serving", host=host, port=port, workers=workers, reuse_port=True)
    try:
        while not stopping:
            for i, proc in enumerate(procs):
                if not proc.is_alive() and not stopping:
                    log.error("worker died; restarting", pid=proc.pid, exitcode=proc.exitcode)
                    time.sleep(1)  # a worker that cannot start must not spin the supervisor
                    procs[i] = start()
            time.sleep(0.2)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: uvicorn finishes in-flight requests, runs shutdown
        deadline = time.monotonic() + 30
        for proc in procs:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        for s, handler in previous.items():
            signal.signal(s, handler)
