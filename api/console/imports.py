"""Vendor-file imports from the console: upload (streamed, size-limited: api.console.upload),
dry run with the row errors (file:line:column), import with live progress (rows/s, ETA) and
the result. The job is the API's (simcore.import_jobs, run by api.import_runner): the same
checks, the same background runner, visible at /v1/imports too.

Uploads are sealed as they arrive (simcore.import_uploads: never in clear on disk). One click
after a dry run: the dry run's file is kept encrypted under a key derived from the console
session's token (simcore.console.import_keep: only that session, in any worker
process, can read it back; never in clear at rest), for SIMSMITH_CONSOLE_IMPORT_KEEP_SECONDS;
"Import this file" on a valid dry run's page starts the real import from it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.auth import CheckedForm, Need, current
from api.console.upload import receive_upload
from api.console.web import COOKIE, PREFIX, Refused, redirect, render
from api.deps import ctx_of
from simcore import import_jobs, import_uploads
from simcore.console import import_keep, sessions
from simcore.console.sessions import Principal
from simcore.errors import InvalidInput
from simcore.log import get_logger
from simcore.models import utcnow
from simcore.models_api import ImportJob
from simcore.vendor_import.service import ImportOptions, preflight

log = get_logger(__name__)
router = APIRouter(prefix=PREFIX, include_in_schema=False)
Importer = Annotated[Principal, Need("imports:write")]
FORMATS = ("", "out", "csv")


def _opt(fields: dict[str, str], name: str, max_len: int = 64) -> str | None:
    value = fields.get(name, "").strip()
    if len(value) > max_len:
        raise InvalidInput(name, "too long", expected=f"at most {max_len} characters")
    return value or None


@router.get("/imports")
def imports_page(request: Request, _me: Importer) -> HTMLResponse:
    ctx = ctx_of(request)
    swept = import_keep.sweep(ctx.settings.home)
    if swept:
        log.info("console.import_keep.swept", files=swept)
    jobs = import_jobs.list_jobs(ctx.engine, limit=1000)[-20:][::-1]
    return render(request, "imports.html", {"jobs": jobs, "formats": FORMATS,
                                            "limit": ctx.settings.console_upload_max_bytes})


@router.post("/imports")
async def upload(request: Request) -> Response:
    """The form's file is written to disk as it arrives; the CSRF token is checked before the
    job exists (and the file is deleted if it is wrong)."""
    me = await _importer(request)
    ctx = ctx_of(request)
    # The file is sealed as it arrives (simcore.import_uploads), under a key the HSM makes.
    hsm = await run_in_threadpool(ctx.open_hsm)
    key = await run_in_threadpool(import_uploads.new_key, hsm)
    up = await receive_upload(request, ctx.settings.home,
                              limit=ctx.settings.console_upload_max_bytes,
                              seal=lambda path: import_uploads.begin(hsm, path, key=key))
    try:
        if not sessions.check_csrf(me, up.fields.get("csrf_token")):
            raise Refused(403, "The form's CSRF token is missing or not this session's: reload "
                          "the page and try again.")
        if up.sealed is None or up.filename is None or up.size == 0:
            raise InvalidInput("file", "no file or an empty one", expected="the vendor file")
        sealed = up.sealed
        fmt = _opt(up.fields, "format", 3)
        if fmt not in (None, "out", "csv"):
            raise InvalidInput("format", "unknown format", value=fmt, expected="out or csv")
        kcv = _opt(up.fields, "kcv", 6)
        opts = import_jobs.JobOptions(
            fmt=fmt, batch=_opt(up.fields, "batch"), vendor=_opt(up.fields, "vendor"),
            profile=_opt(up.fields, "profile"), transport_key=_opt(up.fields, "transport_key"),
            dry_run=up.fields.get("dry_run") == "on", kcv=kcv,
            no_kcv_check=up.fields.get("no_kcv_check") == "on")
        await run_in_threadpool(preflight, sealed.source(), ImportOptions(
            fmt=opts.fmt, transport_key=opts.transport_key, kcv=opts.kcv,
            no_kcv_check=opts.no_kcv_check))
        job = await run_in_threadpool(
            lambda: import_jobs.create(ctx.engine, sealed.sealed, up.filename or "", opts,
                                       actor=me.actor, upload_key=sealed.key_token))
    except BaseException:
        up.discard()
        raise
    token, src, job_id = request.cookies.get(COOKIE), sealed.source(), int(job.id or 0)
    if opts.dry_run and token:
        try:
            await run_in_threadpool(lambda: import_keep.keep(
                ctx.settings.home, job_id, src, session_token=token,
                filename=up.filename or "", sha256=up.sha256,
                keep_for=timedelta(seconds=ctx.settings.console_import_keep_seconds)))
        except OSError as e:  # the dry run goes on; the file must then be uploaded again
            log.warning("console.import_keep.failed", job_id=job_id, error=type(e).__name__)
    ctx.extra["import_runner"].submit(job.id)
    return redirect(f"{PREFIX}/imports/{job.id}")


async def _importer(request: Request) -> Principal:
    me = await current(request)
    if not me.allows("imports:write"):
        raise Refused(403, f"This needs the scope 'imports:write', which {me.name} does not "
                      "hold.")
    return me


def progress_of(job: ImportJob, now: datetime | None = None) -> dict[str, Any]:
    """Rows per second since the upload and the time left, from the job's counters."""
    now = now or utcnow()
    seconds = max((now - job.created_at).total_seconds(), 0.001)
    rate = job.rows_done / seconds if job.rows_done else 0.0
    total = job.rows_total
    left = None
    if rate > 0 and total:
        left = max(total - job.rows_done, 0) / rate
    percent = int(100 * job.rows_done / total) if total else None
    return {"rate": rate, "eta": left, "percent": percent,
            "done": job.status in import_jobs.DONE}


def _kept(request: Request, job: ImportJob, options: dict[str, Any]) -> Any:
    """What is kept of a dry run's file for its one-click import (None when nothing is, or
    the dry run found the file unusable: then it is deleted at once)."""
    if not options.get("dry_run"):
        return None
    home, job_id = ctx_of(request).settings.home, int(job.id or 0)
    if job.status in import_jobs.DONE and job.status != "valid":
        import_keep.discard(home, job_id)
        return None
    return import_keep.find(home, job_id)


def _job_context(request: Request, job: ImportJob) -> dict[str, Any]:
    options = json.loads(job.options)
    return {"job": job, "p": progress_of(job), "kept": _kept(request, job, options),
            "keep_minutes": ctx_of(request).settings.console_import_keep_seconds // 60,
            "options": options,
            "result": json.loads(job.result) if job.result else None,
            "issues": json.loads(job.issues) if job.issues else []}


@router.get("/imports/{job_id}")
def job_page(request: Request, job_id: int, _me: Importer) -> HTMLResponse:
    job = import_jobs.get(ctx_of(request).engine, job_id)
    return render(request, "import_job.html", _job_context(request, job))


@router.get("/imports/{job_id}/progress")
def job_progress(request: Request, job_id: int, _me: Importer) -> HTMLResponse:
    """The job's live part, polled by htmx until the job is done."""
    job = import_jobs.get(ctx_of(request).engine, job_id)
    return render(request, "_import_progress.html", _job_context(request, job))


@router.post("/imports/{job_id}/import")
def import_kept(request: Request, job_id: int, me: Importer, _form: CheckedForm) -> Response:
    """Import the file a valid dry run checked, from its encrypted copy: a new job with the
    dry run's options, not a dry run."""
    ctx = ctx_of(request)
    dry = import_jobs.get(ctx.engine, job_id)
    options = json.loads(dry.options)
    if not options.get("dry_run") or dry.status != "valid":
        raise Refused(409, f"Import {job_id} is not a valid dry run: nothing to import from it.")
    # Opened from the session's copy straight into a new upload sealed for the new job.
    dest = import_uploads.begin(ctx.open_hsm(),
                                import_jobs.upload_path(ctx.settings.home, dry.filename))
    try:
        import_keep.restore(ctx.settings.home, job_id, dest,
                            session_token=request.cookies.get(COOKIE) or "")
        dest.finish()
    except import_keep.NotKept as e:
        dest.discard()
        raise Refused(410, f"The file is no longer here ({e}; a dry run's file is kept "
                      f"{ctx.settings.console_import_keep_seconds // 60} minutes, for the "
                      "session that uploaded it): upload it again.") from None
    except BaseException:
        dest.discard()
        raise
    try:
        opts = import_jobs.JobOptions(**{**options, "dry_run": False})
        job = import_jobs.create(ctx.engine, dest.sealed, dry.filename, opts, actor=me.actor,
                                 upload_key=dest.key_token)
    except BaseException:
        dest.discard()
        raise
    ctx.extra["import_runner"].submit(job.id)
    return redirect(f"{PREFIX}/imports/{job.id}")
