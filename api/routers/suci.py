"""/v1/suci/{suci}: the SIDF for a UDM that calls simsmith (TS 33.501 §6.12.2; simcore.suci_keys).

A UDM (or AUSF) holding a SUCI asks for its SUPI; simsmith de-conceals it in the HSM with the
private key the SUCI's home network public key identifier names. Scope `suci:deconceal` (a key
made for the UDM; `admin` implies it). Every answer is audited (`suci.deconcealed`: caller, key
id, IMSI) before it is sent, and sent `Cache-Control: no-store`. No key is ever in a response.
Errors: 422 invalid-input (malformed SUCI, unsupported scheme, a scheme that is not the key's,
an invalid ephemeral key), 422 suci-mac-failure (the MAC tag does not verify), 404 (unknown key
identifier), 409 (retired key identifier), 503 (the HSM cannot be opened).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from api.deps import CtxDep, EngineDep, Scope, actor, in_thread
from api.problems import openapi_responses
from simcore import suci_keys
from simcore.models_api import ApiKey

router = APIRouter(tags=["suci"], responses=openapi_responses(401, 403, 404, 409, 422, 503))
Udm = Annotated[ApiKey, Scope("suci:deconceal")]
SuciPath = Annotated[str, Path(
    max_length=6100, description="The SUCI: `suci-0-<MCC>-<MNC>-<routing indicator>-<scheme>-"
    "<key id>-<scheme output>` (TS 29.503), or `0x` and the hex of its binary form (TS 24.501 "
    "§9.11.3.4)", examples=["suci-0-001-01-0-0-0-0123456789"])]


class SupiPublic(BaseModel):
    """The SUPI of a SUCI, and what the SUCI was concealed with."""

    supi: str = Field(description="imsi-<IMSI> (TS 29.503)")
    imsi: str
    scheme: int = Field(description="Protection scheme: 0 null, 1 Profile A, 2 Profile B")
    key_id: int = Field(description="Home network public key identifier (0-255)")
    routing_indicator: str


@router.get("/v1/suci/{suci}")
async def deconceal_suci(suci: SuciPath, engine: EngineDep, ctx: CtxDep, key: Udm,
                         response: Response) -> SupiPublic:
    """De-conceal a SUCI to its SUPI in the HSM (audited). Nothing partial is ever returned:
    a SUCI that does not verify is an error naming what is wrong."""
    response.headers["Cache-Control"] = "no-store"
    got = await in_thread(suci_keys.deconceal, engine, ctx.open_hsm, suci, actor=actor(key))
    return SupiPublic(**got.as_dict())
