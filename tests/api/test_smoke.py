from __future__ import annotations

from tests.api.conftest import Api


def test_health_and_order(api: Api) -> None:
    c = api.client
    assert c.get("/healthz").json() == {"status": "ok", "checks": {}}
    assert c.get("/readyz").status_code == 200
    r = c.get("/v1/sims")
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:simsmith:problem:unauthenticated"
    assert r.headers["x-request-id"]
    r = c.get("/v1/sims?limit=5", headers=api.h("sims:read"))
    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == 5 and r.json()["next_cursor"]
    r = c.post("/v1/esim-profiles", json={"external_ref": "cust-1", "confirmation_code": True},
               headers=api.h("esim:order"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "released" and body["confirmation_code"]
    assert body["activation_code"].startswith("1$smdp.simsmith.test$")
    r = c.get(body["qr"]["png_url"], headers=api.h("esim:order"))
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
