"""The background loop `simsmith serve` runs in each API process: one daemon thread that does a
round of work, goes straight on while a round found work, and otherwise waits `poll` seconds or
until stopped. The webhook deliverer, the ES2+ notifier and the RSP session sweeper are rounds
of it."""

from __future__ import annotations

import threading

from simcore.log import get_logger

log = get_logger("api.background")


class PollingThread:
    """Subclasses set `name` and implement `run_once()` (True when the round had work)."""

    name = "background"

    def __init__(self, poll: float) -> None:
        self.poll = poll
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def run_once(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the rounds used (clients, pools); called once after the thread ends."""

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
        self.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # keep going whatever one round hit; the log says what
                log.exception("background round failed", thread=self.name)
                busy = False
            if not busy:
                self._stop.wait(self.poll)
