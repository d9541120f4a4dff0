from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import Engine

from esim.activation_code import ActivationCode
from simcore import esim_orders, inventory
from simcore.smdp.in_process import InProcessSmdp
from simcore.smdp.port import ConfirmOrderResult, SmdpPort, SmdpRefused
from tests.api.conftest import Api

P = "urn:simsmith:problem:"
EID = "89049032123451234512345678901235"


@pytest.mark.storage
def test_order_has_everything_a_shop_needs(api: Api) -> None:
    c, h = api.client, api.h("esim:order")
    r = c.post("/v1/esim-profiles", json={"external_ref": "shop-1", "eid": EID,
                                          "confirmation_code": True}, headers=h)
    assert r.status_code == 201, r.text
    p = r.json()
    code = ActivationCode.parse(p["activation_code"])
    assert code.smdp_address == p["smdp_address"] == "smdp.simsmith.test"
    assert code.matching_id == p["matching_id"] and code.confirmation_code_required
    assert p["status"] == "released" and p["sim_state"] == "allocated" and p["eid"] == EID
    assert p["confirmation_code"].isdigit() and len(p["confirmation_code"]) == 8
    assert p["install"]["lpa"] == "LPA:" + p["activation_code"]
    assert unquote(p["install"]["ios"].split("carddata=")[1]) == p["install"]["lpa"]
    png = base64.b64decode(p["qr"]["png_data_uri"].removeprefix("data:image/png;base64,"))
    assert png.startswith(b"\x89PNG")
    svg = c.get(p["qr"]["svg_url"], headers=h)
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    # Read back: the confirmation code is never shown again
    got = c.get(f"/v1/esim-profiles/{p['iccid']}", headers=h).json()
    assert got["confirmation_code"] is None and got["matching_id"] == p["matching_id"]
    sim = c.get(f"/v1/sims/{p['iccid']}", headers=api.h("sims:read")).json()
    assert sim["kind"] == "esim" and sim["profile_state"] == "released"
    assert sim["subscriber_ref"] == "shop-1"
    # Cancel: profile available again, SIM back in stock, order cancelled
    r = c.post(f"/v1/esim-profiles/{p['iccid']}/cancel", json={}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "available" and r.json()["order_status"] == "cancelled"
    assert r.json()["sim_state"] == "in_stock"
    r = c.post(f"/v1/esim-profiles/{p['iccid']}/cancel", json={}, headers=h)
    assert r.status_code == 409 and r.json()["type"] == P + "conflict"


@pytest.mark.storage
def test_list_pages_and_stock_runs_out(api: Api) -> None:
    c, h = api.client, api.h("esim:order")
    iccids = [c.post("/v1/esim-profiles", json={"external_ref": f"c{i}"},
                     headers=h).json()["iccid"] for i in range(20)]
    assert len(set(iccids)) == 20
    r = c.post("/v1/esim-profiles", json={"external_ref": "late"}, headers=h)
    assert r.status_code == 409 and r.json()["type"] == P + "no-stock"
    seen, cursor = [], None
    while True:
        page = c.get("/v1/esim-profiles", params={"limit": 6} | (
            {"cursor": cursor} if cursor else {}), headers=h).json()
        seen += [p["iccid"] for p in page["items"]]
        assert all(p["qr"]["png_data_uri"] is None for p in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == iccids
    only = c.get("/v1/esim-profiles", params={"external_ref": "c3"}, headers=h).json()
    assert [p["iccid"] for p in only["items"]] == [iccids[3]]


class RemoteLikeSmdp:
    """An SM-DP+ that is not the in-process one (so orders take the saga path): delegates to
    InProcessSmdp, optionally refusing ConfirmOrder as a commercial SM-DP+ might."""

    def __init__(self, engine: Engine, refuse: bool = False) -> None:
        self.inner = InProcessSmdp(engine, "smdp.example.com")
        self.refuse = refuse
        self.smdp_address = self.inner.smdp_address
        self.download_order = self.inner.download_order
        self.cancel_order = self.inner.cancel_order
        self.release_profile = self.inner.release_profile

    def confirm_order(self, **kwargs: Any) -> ConfirmOrderResult:
        if self.refuse:
            raise SmdpRefused("ConfirmOrder", "8.2.6", "3.3", "matching ID already in use")
        return self.inner.confirm_order(**kwargs)


def RefusingSmdp(engine: Engine, _address: str) -> RemoteLikeSmdp:
    return RemoteLikeSmdp(engine, refuse=True)


@pytest.mark.storage
def test_saga_path_through_a_port(api: Api) -> None:
    smdp = RemoteLikeSmdp(api.engine)
    assert isinstance(smdp, SmdpPort)
    p = esim_orders.order(api.engine, smdp, "saga", actor="t", eid=EID, confirmation_code=True)
    assert p.profile_state == "released" and p.sim_state == "allocated" and p.eid == EID
    assert p.smdp_address == "smdp.example.com" and p.confirmation_code
    got = esim_orders.get(api.engine, p.iccid)
    assert got.matching_id == p.matching_id and got.confirmation_code is None
    cancelled = esim_orders.cancel(api.engine, smdp, p.iccid, actor="t",
                                   final_status="unavailable")
    assert cancelled.profile_state == "unavailable" and cancelled.sim_state == "in_stock"


@pytest.mark.storage
def test_refused_order_is_undone(api: Api) -> None:
    smdp = RefusingSmdp(api.engine, "smdp.example.com")
    with pytest.raises(SmdpRefused):
        esim_orders.order(api.engine, smdp, "x", actor="t")
    failed = esim_orders.list_orders(api.engine, status="failed")
    assert len(failed) == 1
    assert failed[0].sim_state == "in_stock" and failed[0].profile_state == "available"
    assert inventory.get_sim(api.engine, failed[0].iccid).subscriber_ref is None
    # The same profile is the next one handed out
    ok = esim_orders.order(api.engine, InProcessSmdp(api.engine, "smdp.example.com"), "y",
                           actor="t")
    assert ok.iccid == failed[0].iccid


def test_refusal_maps_to_problem(api: Api) -> None:
    api.client.app.state.ctx.smdp = RefusingSmdp(api.engine, "smdp.example.com")  # type: ignore[attr-defined]
    r = api.client.post("/v1/esim-profiles", json={"external_ref": "z"},
                        headers=api.h("esim:order"))
    assert r.status_code == 409 and r.json()["type"] == P + "smdp-refused"
    assert "8.2.6" in r.json()["detail"]
