"""/v1/sims/{iccid}/service-codes: a service centre reads a SIM's PIN2, PUK2 and ADM1
(simcore.service_codes) to re-program its card.

Needs the `service:card-codes` scope, which neither `admin` nor `care:access-codes` implies.
A reason is required; each read is audited (`sim.service_codes_revealed`: actor, codes read,
reason) before the response is sent; the response is `Cache-Control: no-store`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from api.deps import CtxDep, EngineDep, Scope, actor
from api.problems import openapi_responses
from simcore import care, service_codes
from simcore.models_api import ApiKey

router = APIRouter(tags=["care"], responses=openapi_responses(401, 403, 404, 409, 422, 503))
Service = Annotated[ApiKey, Scope("service:card-codes")]
Reason = Annotated[str, Query(
    min_length=1, max_length=care.REASON_MAX,
    description="Why the codes are read (e.g. a service order number): recorded in the audit "
                "event")]


class ServiceCodesPublic(BaseModel):
    """The service codes a SIM has in the store (ASCII digits). Never cached, never logged."""

    iccid: str
    pin2: str | None = Field(default=None, repr=False, description="PIN2, 4 to 8 digits")
    puk2: str | None = Field(default=None, repr=False, description="PUK2, 8 digits as a rule")
    adm1: str | None = Field(default=None, repr=False, description="ADM1, 8 digits as a rule")


@router.get("/v1/sims/{iccid}/service-codes")
def get_service_codes(iccid: str, engine: EngineDep, ctx: CtxDep, key: Service,
                      response: Response, reason: Reason) -> ServiceCodesPublic:
    """PIN2, PUK2 and ADM1 of a SIM in service (those it has), unwrapped by the HSM. Every read
    is audited with the caller and the reason (never the values). 404: unknown SIM, or none of
    the codes in the store; 409: SIM terminated, in quarantine or recycled; 503: the HSM cannot
    be opened."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    codes = service_codes.reveal_service_codes(engine, ctx.open_hsm, iccid, actor=actor(key),
                                               reason=reason)
    return ServiceCodesPublic(iccid=codes.iccid, pin2=codes.codes.get("PIN2"),
                              puk2=codes.codes.get("PUK2"), adm1=codes.codes.get("ADM1"))
