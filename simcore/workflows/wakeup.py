"""Waking idle workflow workers when a run becomes due (PostgreSQL LISTEN/NOTIFY, PostgreSQL 15
documentation, SQL commands NOTIFY and LISTEN).

A process that makes runs due now announces them (`announce`: engine.start after its commit;
engine.request_cancel sends `NOTIFY simsmith_workflow` in its transaction); PostgreSQL delivers
a notification at commit to every listening session. Each WorkerPool holds one listening
connection (`Listener`, a thread) and rings its `Doorbell` once per run announced: an idle
worker thread wakes and claims at once, instead of finding the run at its next poll (up to the
poll interval of latency per hand-off, and a claim per thread per interval while idle).

The starts' notifications leave from one thread per process (`Announcer`), after the start
committed, several starts in one NOTIFY whose payload counts them. Not in the start's own
statement: PostgreSQL serialises the commits of every transaction that notified (a database-
wide lock held through the commit's WAL flush), and a start that waited there held its audit
lane's head the while — measured: 30 ms per start at 150 starts/s, and the workers' audit
appends waiting behind it.

Notifications are only a hint: a notification lost (the listening connection broke, the pool was
busy) only delays a run until the next poll, which idle workers still do, at
`SIMSMITH_WORKFLOW_LISTEN_POLL_SECONDS` (1 s) while the listener is up and at the ordinary poll
interval while it is down. Runs that fall due later (a retry after its backoff, a lease that ran
out) are found by that poll. SQLite has no notifications: its workers poll as before.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

from sqlalchemy import Engine, text

from simcore.log import get_logger

log = get_logger(__name__)

CHANNEL = "simsmith_workflow"
NOTIFY = text(f"NOTIFY {CHANNEL}")


class Announcer:
    """Sends NOTIFY for runs started in this process, from one thread, each in autocommit on a
    pooled connection: announcements made while one is in flight leave together (the payload
    says how many runs), so the notifying commits do not queue behind each other. Holds an
    engine only while it has something to send for it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: dict[Engine, int] = {}
        self._sending = False
        self._thread: threading.Thread | None = None

    def announce(self, engine: Engine, runs: int = 1) -> None:
        with self._cond:
            self._pending[engine] = self._pending.get(engine, 0) + runs
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="workflow-announcer",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def flush(self, timeout: float) -> None:
        """Wait up to `timeout` seconds until everything announced has been sent."""
        with self._cond:
            self._cond.wait_for(lambda: not self._pending and not self._sending, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending))
                batch, self._pending, self._sending = self._pending, {}, True
            try:
                for engine, runs in batch.items():
                    _send(engine, runs)
            finally:
                del batch
                with self._cond:
                    self._sending = False
                    self._cond.notify_all()


def _send(engine: Engine, runs: int) -> None:
    try:
        raw = engine.raw_connection()
    except Exception as e:  # lost: the workers' poll finds the runs
        log.warning("workflow.announce.error", error=f"{type(e).__name__}: {e}")
        return
    try:
        conn: Any = raw.driver_connection
        conn.autocommit = True
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(runs)))
        conn.autocommit = False
    except Exception as e:
        log.warning("workflow.announce.error", error=f"{type(e).__name__}: {e}")
        raw.invalidate()
    finally:
        raw.close()


_ANNOUNCER = Announcer()


def announce(engine: Engine, runs: int = 1) -> None:
    """Runs made due now by a transaction of this process that has committed: idle workers are
    woken (PostgreSQL; nothing on SQLite, whose workers poll)."""
    if engine.dialect.name == "postgresql":
        _ANNOUNCER.announce(engine, runs)


@atexit.register
def _flush_at_exit() -> None:  # a one-shot CLI start: its runs announced before it exits
    _ANNOUNCER.flush(1.0)


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
                for n in conn.notifies(timeout=0.5):
                    self.doorbell.ring(int(n.payload) if n.payload.isdigit() else 1)
            conn.execute(f"UNLISTEN {CHANNEL}")
            conn.autocommit = False
        except BaseException:
            raw.invalidate()  # never back to the pool in an unknown state
            raise
        finally:
            raw.close()
