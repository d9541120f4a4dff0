"""The ES2+ notifier of `simsmith serve`: a thread in each API process that turns the SM-DP+'s
profile state changes into HandleDownloadProgressInfo for each operator's receiver and sends
them (simcore.smdp.progress_notify). Several processes may run it at once: the outbox cursor is
locked while it moves, and claims lease rows (SKIP LOCKED on PostgreSQL)."""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from simcore.config import Settings
from simcore.log import get_logger
from simcore.smdp.progress_notify import BATCH, Notifier, NotifySettings

log = get_logger("api.es2plus_notify")


class NotifyWorker:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.notifier = Notifier(engine, NotifySettings.from_settings(settings))
        self.poll = settings.es2plus_notify_poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="es2plus-notifier", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.notifier.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                done = self.notifier.run_once()
                # Straight on only with a full batch behind: a round per trickle of events
                # would take the store's write lock (SQLite) far more often than it needs.
                busy = done["events"] >= BATCH or bool(done["sent"])
                if done["sent"]:
                    log.info("es2plus notifications", **done)
            except Exception:  # keep notifying whatever one round hit; the log says what
                log.exception("es2plus notify round failed")
                busy = False
            if not busy:
                self._stop.wait(self.poll)
