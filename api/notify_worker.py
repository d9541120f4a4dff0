"""The ES2+ notifier of `simsmith serve`: a thread in each API process that turns the SM-DP+'s
profile state changes into HandleDownloadProgressInfo for each operator's receiver and sends
them (simcore.smdp.progress_notify). Several processes may run it at once: the outbox cursor is
locked while it moves, and claims lease rows (SKIP LOCKED on PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Engine

from api.background import PollingThread
from simcore.config import Settings
from simcore.log import get_logger
from simcore.smdp.progress_notify import BATCH, Notifier, NotifySettings

log = get_logger("api.es2plus_notify")


class NotifyWorker(PollingThread):
    name = "es2plus-notifier"

    def __init__(self, engine: Engine, settings: Settings) -> None:
        super().__init__(settings.es2plus_notify_poll_seconds)
        self.notifier = Notifier(engine, NotifySettings.from_settings(settings))

    def close(self) -> None:
        self.notifier.close()

    def run_once(self) -> bool:
        done = self.notifier.run_once()
        if done["sent"]:
            log.info("es2plus notifications", **done)
        # Straight on only with a full batch behind: a round per trickle of events would take
        # the store's write lock (SQLite) far more often than it needs.
        return done["events"] >= BATCH or bool(done["sent"])
