"""/v1/msisdns: the MSISDN pool (list, get, assign to a SIM, release into quarantine)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from api.deps import EngineDep, Scope, SettingsDep, actor
from api.idempotent import IdempotentRoute
from api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, next_cursor
from api.problems import openapi_responses
from api.schemas import MsisdnAssign, MsisdnPublic
from simcore import msisdn_pool
from simcore.models_api import ApiKey

router = APIRouter(tags=["msisdns"], route_class=IdempotentRoute,
                   responses=openapi_responses(401, 403, 404, 409, 422))
Reader = Annotated[ApiKey, Scope("sims:read")]
Writer = Annotated[ApiKey, Scope("sims:write")]


@router.get("/v1/msisdns")
def list_msisdns(engine: EngineDep, _k: Reader, cursor: CursorQuery = None,
                 limit: LimitQuery = 100, state: str | None = None) -> Page[MsisdnPublic]:
    rows = msisdn_pool.list_msisdns(engine, state=state, after=decode_cursor(cursor),
                                    limit=limit)
    return Page(items=[MsisdnPublic.of(e) for e in rows],
                next_cursor=next_cursor([e.msisdn for e in rows], limit))


@router.get("/v1/msisdns/{msisdn}")
def get_msisdn(msisdn: str, engine: EngineDep, _k: Reader) -> MsisdnPublic:
    return MsisdnPublic.of(msisdn_pool.get(engine, msisdn))


@router.post("/v1/msisdns/{msisdn}/assign")
def assign(msisdn: str, body: MsisdnAssign, engine: EngineDep, key: Writer) -> MsisdnPublic:
    """Give a SIM without a number this MSISDN ("auto": the next available)."""
    number = msisdn_pool.assign(engine, msisdn, body.iccid, actor=actor(key))
    return MsisdnPublic.of(msisdn_pool.get(engine, number))


@router.post("/v1/msisdns/{msisdn}/release")
def release(msisdn: str, engine: EngineDep, key: Writer, settings: SettingsDep) -> MsisdnPublic:
    """assigned → quarantine (the number leaves its SIM)."""
    return MsisdnPublic.of(msisdn_pool.release(engine, msisdn, actor=actor(key),
                                               quarantine_days=settings.quarantine_days))
