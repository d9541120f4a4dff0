"""Runs import jobs in the background of an API process: one at a time (an import already
uses a second process for big files), in a thread, so the request that uploaded returns 202 at
once. At start-up it picks up jobs left queued, requeues running ones whose process died, and
deletes the sealed uploads a crash left (simcore.import_jobs.sweep_uploads) and the console's
kept dry-run files whose time is over (simcore.console.import_keep.sweep) — again after each job
and every SWEEP_SECONDS in a background round, so nothing waits for a page to be shown."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from api.background import PollingThread
from api.deps import AppContext
from simcore import import_jobs
from simcore.console import import_keep
from simcore.hsm_access import HsmUnavailable
from simcore.log import get_logger

log = get_logger("api.imports")
SWEEP_SECONDS = 60.0


def sweep(engine: Engine, home: Path) -> None:
    """One sweep of `<home>/imports`: uploads a crash left, expired kept dry-run files."""
    try:
        import_jobs.sweep_uploads(engine, home)
    except Exception:  # a sweep that fails is tried again at the next one
        log.exception("import upload sweep failed")
    try:
        if swept := import_keep.sweep(home):
            log.info("console.import_keep.swept", files=swept)
    except Exception:
        log.exception("console kept-file sweep failed")


class Sweeper(PollingThread):
    """`sweep` every `poll` seconds."""

    name = "import-sweeper"

    def __init__(self, engine: Engine, home: Path, poll: float = SWEEP_SECONDS) -> None:
        super().__init__(poll)
        self.engine, self.home = engine, home

    def run_once(self) -> bool:
        sweep(self.engine, self.home)
        return False


class ImportRunner:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import")
        self._sweeper: Sweeper | None = None

    def submit(self, job_id: int | None = None) -> None:
        self._pool.submit(self._run, job_id)

    def resume(self) -> None:
        """Queue whatever was left (jobs of a previous process), and start the periodic sweep
        (its first round runs at once)."""
        self._pool.submit(self._resume)
        if self._sweeper is None:
            self._sweeper = Sweeper(self.ctx.engine, self.ctx.settings.home)
            self._sweeper.start()

    def _resume(self) -> None:
        import_jobs.requeue_stale(self.ctx.engine)  # (the sweeper's first round sweeps)
        while self._run(None):
            pass

    def _sweep(self) -> None:
        sweep(self.ctx.engine, self.ctx.settings.home)

    def _run(self, job_id: int | None) -> bool:
        claimed = import_jobs.claim(self.ctx.engine, job_id)
        if claimed is None:
            return False
        job = import_jobs.get(self.ctx.engine, claimed)
        hsm: Any = None
        try:
            hsm = self.ctx.open_hsm()
        except HsmUnavailable as e:
            if not import_jobs.options_of(job).dry_run:
                import_jobs.fail(self.ctx.engine, claimed, str(e))
                return True
        try:
            done = import_jobs.run(self.ctx.engine, hsm, claimed)
            log.info("import job done", job=claimed, status=done.status, rows=done.rows_done)
        except Exception:
            log.exception("import job failed", job=claimed)
        self._sweep()
        return True

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)
