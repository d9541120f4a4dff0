"""/v1/imports: upload a vendor file (.out or card-key CSV) as the request body → 202 and a job
to poll: progress, then the result with per-row issues (file:line:column, rule, masked value)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import CtxDep, EngineDep, Scope, actor
from api.idempotent import IdempotentRoute, StreamedKey, streams_body
from api.pagination import CursorQuery, IdPath, LimitQuery, Page, int_cursor, next_cursor
from api.problems import openapi_responses
from simcore import import_jobs, import_uploads
from simcore.errors import InvalidInput
from simcore.models_api import ApiKey, ImportJob
from simcore.vendor_import.service import ImportOptions, preflight

router = APIRouter(tags=["imports"], route_class=IdempotentRoute,
                   responses=openapi_responses(401, 403, 404, 422, 503))
Importer = Annotated[ApiKey, Scope("imports:write")]
MAX_UPLOAD = 1 << 30


class ImportJobPublic(BaseModel):
    id: int
    filename: str
    status: str = Field(description="queued, running, imported, already_imported, valid, "
                        "invalid or failed")
    options: dict[str, Any]
    rows_done: int
    rows_total: int | None
    result: dict[str, Any] | None
    issue_count: int
    issues: list[dict[str, Any]] | None = Field(
        description="The first issues: path, line, column, field, rule, message, shown (masked)")
    error: str | None
    created_at: Any
    updated_at: Any

    @classmethod
    def of(cls, job: ImportJob) -> ImportJobPublic:
        return cls(id=int(job.id or 0), filename=job.filename, status=job.status,
                   options=json.loads(job.options), rows_done=job.rows_done,
                   rows_total=job.rows_total,
                   result=json.loads(job.result) if job.result else None,
                   issue_count=job.issue_count,
                   issues=json.loads(job.issues) if job.issues else None, error=job.error,
                   created_at=job.created_at, updated_at=job.updated_at)


@router.post("/v1/imports", status_code=202, openapi_extra={"requestBody": {
    "required": True, "content": {"application/octet-stream": {
        "schema": {"type": "string", "format": "binary"}}}}})
@streams_body
async def upload(
    request: Request, ctx: CtxDep, key: Importer, response: Response,
    filename: Annotated[str, Query(min_length=1, max_length=255,
                                   description="The file's name (.out or .csv)")],
    format: Literal["out", "csv"] | None = None,
    batch: Annotated[str | None, Query(max_length=64)] = None,
    vendor: Annotated[str | None, Query(max_length=64)] = None,
    profile: Annotated[str | None, Query(max_length=64)] = None,
    transport_key: Annotated[str | None, Query(max_length=64)] = None,
    kcv: Annotated[str | None, Query(pattern="^[0-9A-Fa-f]{6}$", description=(
        "The transport key's KCV (from the key ceremony): required when the file states "
        "none"))] = None,
    no_kcv_check: Annotated[bool, Query(description=(
        "Import keys under a transport key that no KCV confirms (audited)"))] = False,
    dry_run: bool = False,
) -> ImportJobPublic:
    """Upload the file as the raw body; the import runs in the background (poll the job). The
    upload is kept sealed (AES-256-GCM under a data key the HSM wraps) until the job ends.
    Keys under a transport key need a KCV — the file's, or `kcv` — or `no_kcv_check=true`:
    refused (422, field `kcv`) before a job is queued. With an `Idempotency-Key` the body is
    fingerprinted as it streams in (never held whole), and the key recorded once it is."""
    idem: StreamedKey | None = getattr(request.state, "idempotency", None)
    # Sealed as it arrives (simcore.import_uploads): the body never touches the disk in clear.
    hsm = await run_in_threadpool(ctx.open_hsm)
    up = await run_in_threadpool(import_uploads.begin, hsm,
                                 import_jobs.upload_path(ctx.settings.home, filename))
    try:
        async for chunk in request.stream():
            if up.size + len(chunk) > MAX_UPLOAD:
                raise InvalidInput("body", "file too large", expected="at most 1 GiB")
            up.write(chunk)
            if idem is not None:
                idem.update(chunk)
        if up.size == 0:
            raise InvalidInput("body", "empty upload", expected="the vendor file as the body")
        await run_in_threadpool(up.finish)
        if idem is not None:
            await idem.begin()  # a replay (Replayed) discards this upload below
        opts = import_jobs.JobOptions(fmt=format, batch=batch, vendor=vendor, profile=profile,
                                      transport_key=transport_key, dry_run=dry_run, kcv=kcv,
                                      no_kcv_check=no_kcv_check)
        await run_in_threadpool(preflight, up.source(), ImportOptions(
            fmt=format, transport_key=transport_key, kcv=kcv, no_kcv_check=no_kcv_check))
        job = await run_in_threadpool(import_jobs.create, ctx.engine, up.sealed, filename, opts,
                                      actor=actor(key), upload_key=up.key_token)
    except BaseException:
        up.discard()
        raise
    ctx.extra["import_runner"].submit(job.id)
    response.headers["Location"] = f"/v1/imports/{job.id}"
    return ImportJobPublic.of(job)


@router.get("/v1/imports")
def list_jobs(engine: EngineDep, _k: Importer, cursor: CursorQuery = None,
              limit: LimitQuery = 100, status: str | None = None) -> Page[ImportJobPublic]:
    jobs = import_jobs.list_jobs(engine, status=status, after=int_cursor(cursor), limit=limit)
    return Page(items=[ImportJobPublic.of(j) for j in jobs],
                next_cursor=next_cursor([int(j.id or 0) for j in jobs], limit))


@router.get("/v1/imports/{job_id}")
def get_job(job_id: IdPath, engine: EngineDep, _k: Importer) -> ImportJobPublic:
    return ImportJobPublic.of(import_jobs.get(engine, job_id))
