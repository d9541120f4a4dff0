"""api.background.PollingThread: a failing round does not end the loop, a busy round goes
straight on, an idle one waits its poll, stop() ends the thread and closes once."""

from __future__ import annotations

import threading

from api.background import PollingThread


class Rounds(PollingThread):
    name = "test-rounds"

    def __init__(self, poll: float, script: list[object]) -> None:
        super().__init__(poll)
        self.script = script
        self.rounds = 0
        self.closed = 0
        self.done = threading.Event()

    def run_once(self) -> bool:
        self.rounds += 1
        step = self.script.pop(0) if self.script else None
        if not self.script:
            self.done.set()
        if isinstance(step, Exception):
            raise step
        return bool(step)

    def close(self) -> None:
        self.closed += 1


def test_busy_rounds_go_straight_on_and_a_failure_does_not_stop_the_loop() -> None:
    # With a 60 s poll, reaching the failing fourth round within 10 s proves the busy rounds
    # did not wait; the failure counts as idle, and stop() wakes that wait.
    t = Rounds(60, [True, True, True, RuntimeError("boom")])
    t.start()
    assert t.done.wait(10)
    t.stop()
    assert t.rounds == 4
    assert t.closed == 1
    assert not t._thread.is_alive()


def test_an_idle_round_waits_its_poll_until_stopped() -> None:
    t = Rounds(60, [False])
    t.start()
    assert t.done.wait(10)
    t.stop(timeout=10)
    assert not t._thread.is_alive()  # stop() woke the 60 s wait
    assert t.rounds == 1
    assert t.closed == 1
