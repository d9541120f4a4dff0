"""/v1/audit: query the hash-chained audit log and verify it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from api.deps import EngineDep, Scope, SettingsDep
from api.idempotent import IdempotentRoute
from api.pagination import CursorQuery, LimitQuery, Page, int_cursor, next_cursor
from api.problems import openapi_responses
from api.schemas import AuditEventPublic, AuditVerifyPublic
from simcore import audit, audit_checkpoint
from simcore.models_api import ApiKey

router = APIRouter(tags=["audit"], route_class=IdempotentRoute,
                   responses=openapi_responses(401, 403, 409, 422))
Reader = Annotated[ApiKey, Scope("audit:read")]


@router.get("/v1/audit")
def query(engine: EngineDep, _k: Reader, cursor: CursorQuery = None, limit: LimitQuery = 100,
          subject_id: str | None = None, action: str | None = None) -> Page[AuditEventPublic]:
    """Events in global order, filtered by subject (e.g. an ICCID) and action."""
    events = audit.query(engine, subject_id=subject_id, action=action, limit=limit,
                         after_seq=int_cursor(cursor) or 0)
    return Page(items=[AuditEventPublic.of(e) for e in events],
                next_cursor=next_cursor([int(e.seq or 0) for e in events], limit))


@router.get("/v1/audit/verify")
def verify(engine: EngineDep, settings: SettingsDep, _k: Reader,
           full: bool = False) -> AuditVerifyPublic:
    """Recompute the hashes after the last signed checkpoint (every hash with `full=true`);
    409 `audit-chain-broken` names the first event at fault."""
    path = settings.home / audit_checkpoint.KEY_FILE
    public = audit_checkpoint.load_or_create_key(settings.home).public if path.exists() else None
    r = audit_checkpoint.verify(engine, public=public, full=full)
    return AuditVerifyPublic(ok=True, events=r.report.events, lanes=r.report.lanes,
                             digest=r.report.digest, from_checkpoint=r.from_checkpoint,
                             walked=r.walked)
