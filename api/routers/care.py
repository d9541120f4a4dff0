"""/v1/sims/{iccid}/access-codes: customer care reads a SIM's PIN1 and PUK1 (simcore.care).

The only route serving an access code in clear. It needs the `care:access-codes` scope, which
`admin` does not imply: only a key made for customer care gets codes. Each read is audited
(`sim.access_codes_revealed`: actor, codes read, reason) before the response is sent; the
response is `Cache-Control: no-store`; the access log names the route template, never a code.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from api.deps import CtxDep, EngineDep, Scope, actor
from api.problems import openapi_responses
from simcore import care
from simcore.models_api import ApiKey

router = APIRouter(tags=["care"], responses=openapi_responses(401, 403, 404, 409, 422, 503))
Care = Annotated[ApiKey, Scope("care:access-codes")]
Reason = Annotated[str | None, Query(
    max_length=care.REASON_MAX,
    description="Why the codes are read (e.g. a ticket number): recorded in the audit event")]


class AccessCodesPublic(BaseModel):
    """A SIM's PIN1 and PUK1 (ASCII digits). Never cached, never logged."""

    iccid: str
    pin1: str = Field(repr=False, description="PIN1, 4 to 8 digits")
    puk1: str = Field(repr=False, description="PUK1, 8 digits as a rule")


@router.get("/v1/sims/{iccid}/access-codes")
def get_access_codes(iccid: str, engine: EngineDep, ctx: CtxDep, key: Care,
                     response: Response, reason: Reason = None) -> AccessCodesPublic:
    """PIN1 and PUK1 of a SIM in service, unwrapped by the HSM. Every read is audited with the
    caller and the reason (never the values). 404: unknown SIM, or no PIN1/PUK1 in the store;
    409: SIM terminated, in quarantine or recycled; 503: the HSM cannot be opened (checked
    after the SIM: an unknown ICCID is 404 whatever the HSM's state)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    # The HSM is opened only once the SIM is found: an unknown ICCID is 404, not 503.
    codes = care.reveal_access_codes(engine, ctx.open_hsm, iccid, actor=actor(key),
                                     reason=reason)
    return AccessCodesPublic(iccid=codes.iccid, pin1=codes.pin1, puk1=codes.puk1)
