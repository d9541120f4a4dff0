"""Idle workers woken by PostgreSQL NOTIFY (simcore.workflows.wakeup); a notification lost only
delays a run until the next poll; the doorbell keeps a ring that finds no worker waiting."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine

from simcore.workflows import engine as wf
from simcore.workflows import wakeup
from simcore.workflows.runtime import WorkerPool, WorkflowSettings
from simcore.workflows.service import get_workflow, start_activation
from simcore.workflows.steps import Deps


def _wait_finished(engine: Engine, wid: str, deadline: float) -> str:
    end = time.monotonic() + deadline
    while True:
        status = get_workflow(engine, wid).status
        if status in wf.FINISHED or time.monotonic() > end:
            return status
        time.sleep(0.05)


def _pool(deps: Deps, poll: float, listen_poll: float) -> WorkerPool:
    settings = WorkflowSettings(workflow_poll_seconds=poll,
                                workflow_listen_poll_seconds=listen_poll, workflow_threads=2,
                                workflow_retry_initial_seconds=0)
    return WorkerPool(deps.engine, deps, settings, name="wakeup-test")


def _listening(pool: WorkerPool) -> None:
    assert pool.listener is not None
    end = time.monotonic() + 30
    while not pool.listener.up and time.monotonic() < end:
        time.sleep(0.02)
    assert pool.listener.up


def test_a_new_run_wakes_an_idle_worker(deps: Deps) -> None:
    if deps.engine.dialect.name != "postgresql":  # SQLite has no notifications: it polls
        assert _pool(deps, 3600, 3600).listener is None
        return
    # Polls an hour apart: only the notification can make a worker find the run.
    pool = _pool(deps, 3600, 3600).start()
    try:
        _listening(pool)
        time.sleep(0.2)  # the workers' first (empty) claims are done: they wait
        wid = start_activation(deps.engine, {"subscriber_ref": "woken"}, actor="t")
        assert _wait_finished(deps.engine, wid, 60) == wf.SUCCEEDED
    finally:
        pool.stop()


def test_a_lost_notification_only_delays_the_run(deps: Deps,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if deps.engine.dialect.name == "postgresql":
        monkeypatch.setattr(wakeup, "announce", lambda engine, runs=1: None)  # never sent
    pool = _pool(deps, 0.05, 0.2).start()
    try:
        if pool.listener is not None:
            _listening(pool)
        wid = start_activation(deps.engine, {"subscriber_ref": "polled"}, actor="t")
        assert _wait_finished(deps.engine, wid, 60) == wf.SUCCEEDED  # found by a poll
    finally:
        pool.stop()


def test_the_doorbell_keeps_a_ring_until_someone_waits() -> None:
    bell = wakeup.Doorbell(2)
    bell.ring()
    assert bell.wait(0) is True  # rung before anyone waited: not lost
    assert bell.wait(0) is False
    bell.ring(5)  # at most one per thread is kept
    assert [bell.wait(0) for _ in range(3)] == [True, True, False]
    got: list[bool] = []
    t = threading.Thread(target=lambda: got.append(bell.wait(60)))
    t.start()
    bell.ring()
    t.join(60)
    assert got == [True]
