"""/v1/sims: list, look up (ICCID, IMSI, MSISDN), allocate and the service lifecycle.

Changes take the SIM's `version` (body) or `If-Match: "<version>"`: a stale one is a 409
`stale-version`. Every route is: dependencies → one simcore.inventory call → SimPublic.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Response

from api.deps import EngineDep, Scope, SettingsDep, actor
from api.idempotent import IdempotentRoute
from api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, next_cursor
from api.problems import openapi_responses
from api.responses import model_response
from api.schemas import (
    SimActivate,
    SimAllocate,
    SimPublic,
    SimSuspend,
    SimSwap,
    SimTerminate,
    SwapPublic,
    VersionedAction,
)
from simcore import inventory
from simcore.errors import InvalidInput
from simcore.models import Sim
from simcore.models_api import ApiKey

router = APIRouter(tags=["sims"], route_class=IdempotentRoute,
                   responses=openapi_responses(401, 403, 404, 409, 422))
Reader = Annotated[ApiKey, Scope("sims:read")]
Writer = Annotated[ApiKey, Scope("sims:write")]
IfMatch = Annotated[str | None, Header(description='Expected version: "3" (or W/"3")')]


def _version(body: VersionedAction, if_match: str | None) -> int | None:
    if body.version is not None:
        return body.version
    if if_match is None:
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise InvalidInput("If-Match", "not a SIM version", value=if_match[:20],
                           expected='"<version>"')
    return int(text)


def _out(sim: Sim, response: Response) -> SimPublic:
    response.headers["ETag"] = f'"{sim.version}"'
    return SimPublic.of(sim)


@router.get("/v1/sims")
def list_sims(
    engine: EngineDep, _k: Reader, cursor: CursorQuery = None, limit: LimitQuery = 100,
    state: str | None = None, kind: Literal["physical", "esim"] | None = None,
    batch: str | None = None,
) -> Page[SimPublic]:
    """SIMs in ICCID order, filtered by state, kind and batch."""
    sims = inventory.list_sims(engine, state=state, kind=kind, batch=batch,
                               after=decode_cursor(cursor), limit=limit)
    return Page(items=[SimPublic.of(s) for s in sims],
                next_cursor=next_cursor([s.iccid for s in sims], limit))


@router.get("/v1/sims/by-imsi/{imsi}")
def get_by_imsi(imsi: str, engine: EngineDep, _k: Reader, response: Response) -> SimPublic:
    return _out(inventory.find_sim(engine, imsi=imsi), response)


@router.get("/v1/sims/by-msisdn/{msisdn}")
def get_by_msisdn(msisdn: str, engine: EngineDep, _k: Reader,
                  response: Response) -> SimPublic:
    return _out(inventory.find_sim(engine, msisdn=msisdn), response)


@router.get("/v1/sims/{iccid}", response_model=SimPublic)
def get_sim(iccid: str, engine: EngineDep, _k: Reader) -> Response:
    sim = inventory.get_sim(engine, iccid)
    return model_response(SimPublic.of(sim), headers={"ETag": f'"{sim.version}"'})


@router.post("/v1/sims/allocate", status_code=201)
def allocate(body: SimAllocate, engine: EngineDep, key: Writer,
             response: Response) -> SimPublic:
    """Hand the next in-stock SIM to a subscriber (state in_stock → allocated)."""
    return _out(inventory.allocate(engine, body.subscriber_ref, actor=actor(key),
                                   kind=body.kind, form_factor=body.form_factor,
                                   batch=body.batch), response)


@router.post("/v1/sims/{iccid}/activate")
def activate(iccid: str, body: SimActivate, engine: EngineDep, key: Writer,
             response: Response, if_match: IfMatch = None) -> SimPublic:
    """allocated → active; `msisdn` ("auto" or a number) assigns one from the pool."""
    return _out(inventory.activate(engine, iccid, actor=actor(key), msisdn=body.msisdn,
                                   expected_version=_version(body, if_match)), response)


@router.post("/v1/sims/{iccid}/suspend")
def suspend(iccid: str, body: SimSuspend, engine: EngineDep, key: Writer,
            response: Response, if_match: IfMatch = None) -> SimPublic:
    return _out(inventory.suspend(engine, iccid, actor=actor(key), reason=body.reason,
                                  expected_version=_version(body, if_match)), response)


@router.post("/v1/sims/{iccid}/resume")
def resume(iccid: str, body: VersionedAction, engine: EngineDep, key: Writer,
           response: Response, if_match: IfMatch = None) -> SimPublic:
    return _out(inventory.resume(engine, iccid, actor=actor(key),
                                 expected_version=_version(body, if_match)), response)


@router.post("/v1/sims/{iccid}/terminate")
def terminate(iccid: str, body: SimTerminate, engine: EngineDep, key: Writer,
              settings: SettingsDep, response: Response,
              if_match: IfMatch = None) -> SimPublic:
    """End service; the MSISDN goes to quarantine."""
    return _out(inventory.terminate(engine, iccid, actor=actor(key), reason=body.reason,
                                    quarantine_days=settings.quarantine_days,
                                    expected_version=_version(body, if_match)), response)


@router.post("/v1/sims/{iccid}/swap")
def swap(iccid: str, body: SimSwap, engine: EngineDep, key: Writer,
         if_match: IfMatch = None) -> SwapPublic:
    """Move the subscriber and MSISDN to another SIM; the old one is terminated. The new SIM
    takes over the subscription's state: a suspended SIM's new SIM is suspended unless
    `resume`. The old SIM's `version` (body or If-Match) makes a stale swap a 409. (Store only:
    `POST /v1/swaps` runs the swap as a workflow, through the HLR.)"""
    old, new = inventory.swap(engine, iccid, actor=actor(key), new_iccid=body.new_iccid,
                              reason=body.reason, expected_version=_version(body, if_match),
                              resume=body.resume)
    return SwapPublic(old=SimPublic.of(old), new=SimPublic.of(new))
