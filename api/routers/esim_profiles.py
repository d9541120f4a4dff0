"""/v1/esim-profiles: order an eSIM profile and get everything a shop needs in one object —
ICCID, SM-DP+ address, matching ID, activation code, confirmation code (when asked for, in the
ordering response only), QR as PNG/SVG URLs and a data URI, `LPA:` and iOS install links."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.deps import EngineDep, Scope, SmdpDep, actor
from api.idempotent import IdempotentRoute, records_key
from api.pagination import CursorQuery, LimitQuery, Page, int_cursor, next_cursor
from api.problems import openapi_responses
from api.responses import model_response
from api.schemas import EsimCancel, EsimOrderCreate, EsimProfilePublic, InstallLinks, QrLinks
from esim import qr
from simcore import esim_orders
from simcore.esim_orders import EsimProfile
from simcore.models_api import ApiKey

router = APIRouter(tags=["esim-profiles"],
                   route_class=IdempotentRoute,
                   responses=openapi_responses(401, 403, 404, 409, 422, 503))
Orderer = Annotated[ApiKey, Scope("esim:order")]
DataUriQuery = Annotated[bool, Query(description="Include the QR PNG as a data URI")]


QR_PNG_PATH = "/v1/esim-profiles/{iccid}/qr.png"
QR_SVG_PATH = "/v1/esim-profiles/{iccid}/qr.svg"


def _public(p: EsimProfile, request: Request, data_uri: bool) -> EsimProfilePublic:
    code = p.activation_code
    # What request.url_for gives, without its search through every route.
    base = str(request.base_url).rstrip("/")
    return EsimProfilePublic(
        iccid=p.iccid, external_ref=p.external_ref, eid=p.eid, status=p.profile_state,
        order_status=p.order_status, sim_state=p.sim_state, smdp_address=p.smdp_address,
        matching_id=p.matching_id, activation_code=code.to_string(),
        confirmation_code_required=p.confirmation_code_required,
        confirmation_code=p.confirmation_code, download_expires_at=p.download_expires_at,
        qr=QrLinks(png_url=base + QR_PNG_PATH.format(iccid=p.iccid),
                   svg_url=base + QR_SVG_PATH.format(iccid=p.iccid),
                   png_data_uri=qr.png_data_uri(code) if data_uri else None),
        install=InstallLinks(lpa=qr.lpa_uri(code), ios=qr.ios_install_link(code)),
        created_at=p.created_at, updated_at=p.updated_at)


@router.post("/v1/esim-profiles", status_code=201, response_model=EsimProfilePublic)
@records_key
def order(body: EsimOrderCreate, request: Request, engine: EngineDep, smdp: SmdpDep,
          key: Orderer, qr_data_uri: DataUriQuery = True) -> Response:
    """Order a profile for `external_ref`: DownloadOrder + ConfirmOrder at the SM-DP+. With an
    `Idempotency-Key`, the key is recorded in the transaction that claims the profile."""
    p = esim_orders.order(engine, smdp, body.external_ref, actor=actor(key), eid=body.eid,
                          confirmation_code=body.confirmation_code, batch=body.batch,
                          idempotency=getattr(request.state, "idempotency", None))
    return model_response(_public(p, request, qr_data_uri), 201)


@router.get("/v1/esim-profiles")
def list_profiles(request: Request, engine: EngineDep, _k: Orderer,
                  cursor: CursorQuery = None, limit: LimitQuery = 100,
                  external_ref: str | None = None, order_status: str | None = None,
                  qr_data_uri: DataUriQuery = False) -> Page[EsimProfilePublic]:
    """Orders, oldest first."""
    items = esim_orders.list_orders(engine, external_ref=external_ref, status=order_status,
                                    after=int_cursor(cursor), limit=limit)
    return Page(items=[_public(p, request, qr_data_uri) for p in items],
                next_cursor=next_cursor([p.order_id for p in items], limit))


@router.get("/v1/esim-profiles/{iccid}", response_model=EsimProfilePublic)
def get_profile(iccid: str, request: Request, engine: EngineDep, _k: Orderer,
                qr_data_uri: DataUriQuery = True) -> Response:
    return model_response(_public(esim_orders.get(engine, iccid), request, qr_data_uri))


@router.get(QR_PNG_PATH, name="esim_qr_png",
            responses={200: {"content": {"image/png": {}}}})
def qr_png(iccid: str, engine: EngineDep, _k: Orderer) -> Response:
    """The QR code (PNG) carrying `LPA:` + the activation code."""
    code = esim_orders.get(engine, iccid).activation_code
    return Response(qr.qr_png(code), media_type="image/png")


@router.get(QR_SVG_PATH, name="esim_qr_svg",
            responses={200: {"content": {"image/svg+xml": {}}}})
def qr_svg(iccid: str, engine: EngineDep, _k: Orderer) -> Response:
    code = esim_orders.get(engine, iccid).activation_code
    return Response(qr.qr_svg(code), media_type="image/svg+xml")


@router.post("/v1/esim-profiles/{iccid}/cancel")
def cancel(iccid: str, body: EsimCancel, request: Request, engine: EngineDep, smdp: SmdpDep,
           key: Orderer) -> EsimProfilePublic:
    """CancelOrder at the SM-DP+; the profile goes back to available (or unavailable)."""
    p = esim_orders.cancel(engine, smdp, iccid, actor=actor(key),
                           final_status=body.final_status)
    return _public(p, request, False)
