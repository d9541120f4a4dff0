"""Import jobs: a vendor file uploaded to the API, imported in the background
(simcore.vendor_import), with progress, the result and the per-row issues kept in the store.

`create` records a `queued` job for an upload sealed under `<home>/imports/`
(simcore.import_uploads: never in clear on disk; the job row holds its data key wrapped by the
HSM); `claim` moves one queued job to `running` (one UPDATE, so two workers never run the same
job); `run` imports it, recording progress every few thousand rows, and stores the outcome:
the ImportResult's status (`imported`, `already_imported`, `valid` / `invalid` for a dry run),
`invalid` with the issues (file:line:column, rule, masked value) when the file breaks a rule,
or `failed` with the error.
The sealed upload and its wrapped key are deleted when the job ends (done, invalid or failed);
`sweep_uploads` deletes what a crash left (files of ended or vanished jobs). Jobs left `running`
by a process that died are put back in the queue by `requeue_stale` (imports are all-or-nothing
and a re-run of an imported file is a no-op, so running a job twice is safe); the worker that
takes one unwraps its key again through the HSM.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlmodel import col

from hsm_sim.hsm import Hsm
from simcore import import_uploads
from simcore.db import is_sqlite, read_session, transaction
from simcore.errors import InvalidInput, NotFound, SimsmithError
from simcore.hsm_access import HsmUnavailable
from simcore.log import get_logger
from simcore.models import utcnow
from simcore.models_api import ImportJob
from simcore.paging import keyset_page
from simcore.sealed_file import SealedSource

log = get_logger(__name__)
QUEUED, RUNNING, FAILED = "queued", "running", "failed"
DONE = frozenset({"imported", "already_imported", "valid", "invalid", FAILED})


@dataclass(frozen=True)
class JobOptions:
    fmt: str | None = None
    batch: str | None = None
    vendor: str | None = None
    profile: str | None = None
    transport_key: str | None = None
    dry_run: bool = False
    kcv: str | None = None
    no_kcv_check: bool = False


def upload_path(home: Path, filename: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(filename).name)
    if not safe.strip("._"):
        raise InvalidInput("filename", "empty or only dots", value=filename[:64])
    d = home / "imports"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d / f"{time.time_ns()}-{safe[:128]}"


def create(engine: Engine, path: Path, filename: str, options: JobOptions, *,
           actor: str, upload_key: str | None = None) -> ImportJob:
    """Record a queued job for the upload at `path`: sealed under `upload_key` (the wrapped
    key's token, simcore.import_uploads), or a file read as it is when None."""
    with transaction(engine) as s:
        job = ImportJob(filename=filename[:255], path=str(path), upload_key=upload_key,
                        options=json.dumps(asdict(options)), status=QUEUED, actor=actor)
        s.add(job)
        s.flush()
        return job


# Progress of the jobs running in this process. On SQLite the import holds the only write lock
# for its whole (all-or-nothing) transaction, so progress cannot be written to the store while it
# runs: it is kept here and shown by `get` (in the process running the job).
_progress: dict[int, tuple[int, int | None]] = {}


def get(engine: Engine, job_id: int) -> ImportJob:
    with read_session(engine) as s:
        job = s.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"no import job {job_id}")
    live = _progress.get(job_id)
    if live is not None and job.status == RUNNING:
        job.rows_done, job.rows_total = live
    return job


def list_jobs(engine: Engine, *, status: str | None = None, after: int | None = None,
              limit: int = 100) -> list[ImportJob]:
    stmt = keyset_page(select(ImportJob), col(ImportJob.id), after=after, limit=limit,
                       filters={col(ImportJob.status): status})
    with read_session(engine) as s:
        return list(s.execute(stmt).scalars())


def claim(engine: Engine, job_id: int | None = None) -> int | None:
    """Move a queued job (this one, or the oldest) to running; its id, or None."""
    with transaction(engine) as s:
        if job_id is None:
            job_id = s.execute(select(col(ImportJob.id)).where(col(ImportJob.status) == QUEUED)
                               .order_by(col(ImportJob.id)).limit(1)).scalar_one_or_none()
            if job_id is None:
                return None
        done = s.execute(update(ImportJob).where(col(ImportJob.id) == job_id,
                                                 col(ImportJob.status) == QUEUED)
                         .values(status=RUNNING, updated_at=utcnow()))
        return job_id if done.rowcount == 1 else None  # type: ignore[attr-defined]


def requeue_stale(engine: Engine, older_than: timedelta = timedelta(minutes=10)) -> int:
    """Running jobs not updated for `older_than` (their process died) go back to the queue."""
    with transaction(engine) as s:
        r = s.execute(update(ImportJob).where(
            col(ImportJob.status) == RUNNING, col(ImportJob.updated_at) < utcnow() - older_than
        ).values(status=QUEUED, updated_at=utcnow()))
        return int(r.rowcount)  # type: ignore[attr-defined]


def _set(engine: Engine, job_id: int, **values: Any) -> None:
    with transaction(engine) as s:
        s.execute(update(ImportJob).where(col(ImportJob.id) == job_id)
                  .values(updated_at=utcnow(), **values))


def options_of(job: ImportJob) -> JobOptions:
    return JobOptions(**json.loads(job.options))


def fail(engine: Engine, job_id: int, error: str) -> None:
    """End a job as failed before it ran (e.g. no HSM to unwrap its keys); its upload and
    key go."""
    _end(engine, job_id, status=FAILED, error=error[:512])
    _discard(engine, get(engine, job_id))


def _end(engine: Engine, job_id: int, **values: Any) -> None:
    """A job's outcome, written with its upload's wrapped key removed: once a job has ended,
    its sealed file (deleted next) can no longer be opened, even if the deletion never
    happens (then sweep_uploads finds it)."""
    _set(engine, job_id, upload_key=None, **values)


def _discard(engine: Engine, job: ImportJob) -> None:
    """An ended job's upload deleted (its wrapped key went with the outcome: `_end`)."""
    Path(job.path).unlink(missing_ok=True)


def _source(hsm: Hsm | None, job: ImportJob) -> Path | SealedSource:
    """What the job imports: its sealed upload (key unwrapped again by the HSM), or a file
    from before uploads were sealed, read as it is."""
    if job.upload_key is None:
        return Path(job.path)
    if hsm is None:
        raise HsmUnavailable(f"import job {job.id}: its upload is sealed under a key the HSM "
                             "keeps, and the HSM is not available")
    return import_uploads.source_of(hsm, Path(job.path), job.upload_key,
                                    f"upload of import job {job.id}")


def run(engine: Engine, hsm: Hsm, job_id: int, *, progress_every: float = 1.0) -> ImportJob:
    """Import a claimed job's file; store and return the outcome."""
    from simcore.vendor_import import ImportOptions, InvalidFile, import_file

    job = get(engine, job_id)
    o = options_of(job)
    opts = ImportOptions(fmt=o.fmt, transport_key=o.transport_key, dry_run=o.dry_run,
                         batch=o.batch, vendor=o.vendor, profile=o.profile, actor=job.actor,
                         kcv=o.kcv, no_kcv_check=o.no_kcv_check)
    last = 0.0

    def progress(done: int, total: int | None) -> None:
        nonlocal last
        now = time.monotonic()
        _progress[job_id] = (done, total)
        if now - last >= progress_every and not is_sqlite(engine):
            last = now
            _set(engine, job_id, rows_done=done, rows_total=total)

    try:
        r = import_file(engine, hsm, _source(hsm, job), opts, progress)
    except InvalidFile as e:
        _end(engine, job_id, status="invalid", rows_done=0, issue_count=e.report.total,
             issues=json.dumps([i.as_dict() for i in e.report.issues]),
             result=json.dumps({"rejected": e.report.bad_rows}))
    except SimsmithError as e:
        _end(engine, job_id, status=FAILED, error=str(e)[:512])
    except Exception as e:  # the job says what kind of failure; the log has the traceback
        _end(engine, job_id, status=FAILED, error=f"internal error ({type(e).__name__})")
        raise
    else:
        report = r.report
        _end(engine, job_id, status=r.status, rows_done=r.rows, rows_total=r.rows,
             result=json.dumps({k: v for k, v in r.as_dict().items() if k != "file"},
                               default=str),
             issue_count=report.total if report else 0,
             issues=json.dumps([i.as_dict() for i in report.issues]) if report else None)
    finally:
        _progress.pop(job_id, None)
        if get(engine, job_id).status in DONE:
            _discard(engine, job)
    return get(engine, job_id)


def sweep_uploads(engine: Engine, home: Path, *, grace: timedelta = timedelta(hours=1),
                  now: datetime | None = None) -> int:
    """Delete what a crash left in `<home>/imports`: the upload of a job that has ended (and a
    wrapped key still on an ended job's row), and any upload no job holds once it is older than
    `grace` (a younger one may be arriving, its job not recorded yet). Uploads of queued and
    running jobs stay. How many files were deleted."""
    d = home / "imports"
    files = [p for p in d.iterdir() if p.is_file()] if d.is_dir() else []
    status: dict[str, str] = {}
    with transaction(engine) as s:
        s.execute(update(ImportJob).where(col(ImportJob.status).in_(DONE),
                                          col(ImportJob.upload_key).is_not(None))
                  .values(upload_key=None))
        names = [str(p) for p in files]
        for i in range(0, len(names), 500):
            rows = s.execute(select(col(ImportJob.path), col(ImportJob.status)).where(
                col(ImportJob.path).in_(names[i:i + 500]))).all()
            status.update((row[0], row[1]) for row in rows)
    cutoff = (now or utcnow()).timestamp() - grace.total_seconds()
    gone = 0
    for p in files:
        state = status.get(str(p))
        try:
            if state in (QUEUED, RUNNING) or (state is None and p.stat().st_mtime > cutoff):
                continue
            p.unlink(missing_ok=True)
            gone += 1
        except OSError:
            continue
    if gone:
        log.info("import_jobs.uploads_swept", files=gone)
    return gone
