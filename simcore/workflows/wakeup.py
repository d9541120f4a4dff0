"""Waking idle workflow workers when a run becomes due (PostgreSQL LISTEN/NOTIFY, PostgreSQL 15
documentation, SQL commands NOTIFY and LISTEN).

A transaction that makes a run due now (engine.start, engine.request_cancel) sends
`NOTIFY simsmith_workflow` with it; PostgreSQL delivers it at commit to every listening session.
Each WorkerPool holds one listening connection (`Listener`, a thread) and rings its `Doorbell`
once per notification: one idle worker thread wakes and claims at once, instead of finding the
run at its next poll (up to the poll interval of latency per hand-off, and a claim per thread per
interval while idle).

Notifications are only a hint: a notification lost (the listening connection broke, the pool was
busy) only delays a run until the next poll, which idle workers still do, at
`SIMSMITH_WORKFLOW_LISTEN_POLL_SECONDS` (1 s) while the listener is up and at the ordinary poll
interval while it is down. Runs that fall due later (a retry after its backoff, a lease that ran
out) are found by that poll. SQLite has no notifications: its workers poll as before.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, text

from simcore.log import get_logger

log = get_logger(__name__)

CHANNEL = "simsmith_workflow"
NOTIFY = text(f"NOTIFY {CHANNEL}")


def notify(conn: Any) -> None:
    """In the caller's transaction on a Core connection (PostgreSQL only): idle workers are
    woken when it commits."""
    if conn.dialect.name == "postgresql":
        conn.execute(NOTIFY)


class Doorbell:
    """Rings counted up to `cap` (the pool's threads): a ring that finds no thread waiting is
    kept for the next one to wait, so a notification that arrives between a worker's empty
    claim and its wait is not lost."""

    def __init__(self, cap: int) -> None:
        self._cond = threading.Condition()
        self._pending = 0
        self._cap = max(1, cap)

    def ring(self, n: int = 1) -> None:
        with self._cond:
            self._pending = min(self._cap, self._pending + n)
            self._cond.notify(n)

    def ring_all(self) -> None:
        with self._cond:
            self._pending = self._cap
            self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        """Wait for a ring up to `timeout` seconds; True if one came."""
        with self._cond:
            if self._pending == 0:
                self._cond.wait(timeout)
            if self._pending > 0:
                self._pending -= 1
                return True
            return False


class Listener:
    """One connection LISTENing on CHANNEL in a thread; rings `doorbell` per notification.
    `up` says whether it is listening (workers poll at the ordinary interval while not);
    a broken connection is replaced after `retry` seconds."""

    def __init__(self, engine: Engine, doorbell: Doorbell, stopped: threading.Event, *,
                 retry: float = 1.0, name: str = "workflow-listener") -> None:
        self.engine = engine
        self.doorbell = doorbell
        self.up = False
        self._stopped = stopped
        self._retry = retry
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Listener:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._listen()
            except Exception as e:  # the connection broke: poll meanwhile, then listen again
                log.warning("workflow.listener.error", error=f"{type(e).__name__}: {e}")
            self.up = False
            self.doorbell.ring_all()  # whatever was announced meanwhile: look now
            self._stopped.wait(self._retry)

    def _listen(self) -> None:
        raw = self.engine.raw_connection()
        try:
            conn: Any = raw.driver_connection
            conn.autocommit = True
            conn.execute(f"LISTEN {CHANNEL}")
            self.up = True
            while not self._stopped.is_set():
                for _ in conn.notifies(timeout=0.5):
                    self.doorbell.ring()
            conn.execute(f"UNLISTEN {CHANNEL}")
            conn.autocommit = False
        except BaseException:
            raw.invalidate()  # never back to the pool in an unknown state
            raise
        finally:
            raw.close()
