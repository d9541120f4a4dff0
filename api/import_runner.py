"""Runs import jobs in the background of an API process: one at a time (an import already
uses a second process for big files), in a thread, so the request that uploaded returns 202 at
once. At start-up it picks up jobs left queued, requeues running ones whose process died, and
deletes the sealed uploads a crash left (simcore.import_jobs.sweep_uploads; again after each
job)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from api.deps import AppContext
from simcore import import_jobs
from simcore.hsm_access import HsmUnavailable
from simcore.log import get_logger

log = get_logger("api.imports")


class ImportRunner:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import")

    def submit(self, job_id: int | None = None) -> None:
        self._pool.submit(self._run, job_id)

    def resume(self) -> None:
        """Queue whatever was left (jobs of a previous process)."""
        self._pool.submit(self._resume)

    def _resume(self) -> None:
        import_jobs.requeue_stale(self.ctx.engine)
        self._sweep()
        while self._run(None):
            pass

    def _sweep(self) -> None:
        try:
            import_jobs.sweep_uploads(self.ctx.engine, self.ctx.settings.home)
        except Exception:  # a sweep that fails is tried again after the next job
            log.exception("import upload sweep failed")

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
        self._pool.shutdown(wait=True, cancel_futures=True)
