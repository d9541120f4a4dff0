"""eSIM orders from the console: order a profile for a customer and hand over what installs it
— the QR code (PNG, or SVG for an e-mail), the activation code (SGP.22 §4.1) and the `LPA:` and
iOS install links — and cancel an order (ES2+.CancelOrder). The same simcore.esim_orders calls
as the API's /v1/esim-profiles, with the console person as the actor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.console.auth import CheckedForm, Need, text
from api.console.web import PREFIX, redirect, render
from api.deps import ctx_of
from esim import qr
from simcore import esim_orders
from simcore.console.sessions import Principal
from simcore.esim_orders import EsimProfile

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Orderer = Annotated[Principal, Need("esim:order")]


def _show(request: Request, p: EsimProfile, *, new: bool = False) -> HTMLResponse:
    code = p.activation_code
    return render(request, "esim.html", {
        "p": p, "new": new, "code": code.to_string(), "lpa": qr.lpa_uri(code),
        "ios": qr.ios_install_link(code)})


@router.get("/esim/order")
def order_page(request: Request, _me: Orderer) -> HTMLResponse:
    available = esim_orders.available_count(ctx_of(request).engine)
    return render(request, "esim_order.html", {"available": available})


@router.post("/esim/order")
def order(request: Request, me: Orderer, form: CheckedForm) -> HTMLResponse:
    ctx = ctx_of(request)
    p = esim_orders.order(ctx.engine, ctx.smdp, text(form, "external_ref", max_len=128),
                          actor=me.actor, eid=text(form, "eid", max_len=40) or None,
                          confirmation_code=form.get("confirmation_code") == "on")
    return _show(request, p, new=True)


@router.get("/esim/{iccid}")
def profile(request: Request, iccid: str, _me: Orderer) -> HTMLResponse:
    return _show(request, esim_orders.get(ctx_of(request).engine, iccid))


def _download(body: bytes | str, media: str, name: str, download: bool) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{name}"'} if download else {}
    return Response(body, media_type=media, headers=headers)


@router.get("/esim/{iccid}/qr.png")
def qr_png(request: Request, iccid: str, _me: Orderer, download: bool = False) -> Response:
    p = esim_orders.get(ctx_of(request).engine, iccid)
    return _download(qr.qr_png(p.activation_code), "image/png", f"esim-{p.iccid}.png", download)


@router.get("/esim/{iccid}/qr.svg")
def qr_svg(request: Request, iccid: str, _me: Orderer, download: bool = False) -> Response:
    p = esim_orders.get(ctx_of(request).engine, iccid)
    return _download(qr.qr_svg(p.activation_code), "image/svg+xml", f"esim-{p.iccid}.svg",
                     download)


@router.get("/esim/{iccid}/cancel")
def cancel_page(request: Request, iccid: str, _me: Orderer) -> HTMLResponse:
    return render(request, "esim_cancel.html",
                  {"p": esim_orders.get(ctx_of(request).engine, iccid)})


@router.post("/esim/{iccid}/cancel")
def cancel(request: Request, iccid: str, me: Orderer, _form: CheckedForm) -> Response:
    ctx = ctx_of(request)
    p = esim_orders.cancel(ctx.engine, ctx.smdp, iccid, actor=me.actor)
    return redirect(f"{PREFIX}/sims/{p.iccid}")
