"""Route × scope matrix: every route but health refuses a request without a key (401), with a
key lacking its scope (403), and lets through a key holding exactly its scope or admin — except
the customer-care route, which admin does not reach (least privilege)."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from api.deps import required_scope
from simcore import apikeys
from tests.api.conftest import Api

OPEN = {"/healthz", "/readyz"}
SAMPLES = {"iccid": "8988280000000000001", "imsi": "001010000000001",
           "msisdn": "447700900001", "subscription_id": "1", "delivery_id": "1"}


def _routes(api: Api) -> list[tuple[str, str, str | None]]:
    out = []
    for route in api.client.app.state.api_routes:  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute) or not route.path.startswith(("/v1/", "/healthz",
                                                                         "/readyz", "/metrics")):
            continue  # other areas' routers (e.g. ES2+, authenticated by mTLS)
        path = re.sub(r"\{(\w+)\}", lambda m: SAMPLES.get(m.group(1), "x"), route.path)
        for method in sorted(route.methods):
            out.append((method, path, required_scope(route)))
    return out


@pytest.mark.slow
@pytest.mark.storage
def test_every_route_needs_its_scope(api: Api) -> None:
    routes = _routes(api)
    assert len(routes) >= 25
    for method, path, scope in routes:
        kwargs = {"json": {}} if method == "POST" else {}
        if path in OPEN:
            assert scope is None
            assert api.client.request(method, path).status_code == 200
            continue
        assert scope in apikeys.SCOPES, f"{method} {path} has no scope"
        r = api.client.request(method, path, **kwargs)
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["type"] == "urn:simsmith:problem:unauthenticated"
        r = api.client.request(method, path, headers={"Authorization": "Bearer ssk_bogus"},
                               **kwargs)
        assert r.status_code == 401, (method, path)
        allowed = {scope} if scope in apikeys.NOT_IMPLIED_BY_ADMIN else {scope, "admin"}
        for held in apikeys.SCOPES:
            r = api.client.request(method, path, headers=api.h(held), **kwargs)
            if held in allowed:
                assert r.status_code not in (401, 403), (method, path, held, r.text)
            else:
                assert r.status_code == 403, (method, path, held, r.status_code)
                assert r.json()["type"] == "urn:simsmith:problem:insufficient-scope"


def test_only_a_care_key_reaches_the_access_codes(api: Api) -> None:
    routes = {(m, p): s for m, p, s in _routes(api)}
    path = f"/v1/sims/{SAMPLES['iccid']}/access-codes"
    assert routes[("GET", path)] == "care:access-codes"
    assert sorted(s for s in routes.values() if s in apikeys.NOT_IMPLIED_BY_ADMIN) == [
        "care:access-codes", "service:card-codes"]
    r = api.client.get(path, headers=api.h("admin"))
    assert r.status_code == 403 and "care:access-codes" in r.json()["detail"]
    assert api.client.get(path, headers=api.h("care:access-codes")).status_code not in (401,
                                                                                        403)


@pytest.mark.slow
@pytest.mark.storage
def test_revoked_key_and_x_api_key_header(api: Api) -> None:
    r = api.client.get("/v1/sims", headers={"X-API-Key": api.keys["sims:read"]})
    assert r.status_code == 200
    row = apikeys.authenticate(api.engine, api.keys["sims:read"])
    apikeys.revoke(api.engine, int(row.id or 0), actor="t")
    r = api.client.get("/v1/sims", headers=api.h("sims:read"))
    assert r.status_code == 401
    assert all(k.key_hash != api.keys["sims:read"] for k in apikeys.list_keys(api.engine))


def test_openapi_names_scopes_and_problem_types(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    ops = [op for path in spec["paths"].values() for op in path.values()]
    scoped = [op for op in ops if "x-required-scope" in op]
    assert len(scoped) >= 20
    assert "urn:simsmith:problem:stale-version" in spec["info"]["description"]
