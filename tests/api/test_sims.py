from __future__ import annotations

import pytest

from tests.api.conftest import Api

P = "urn:simsmith:problem:"


@pytest.mark.storage
def test_list_pages_and_filters(api: Api) -> None:
    seen, cursor = [], None
    while True:
        params = {"limit": 7, "kind": "physical"} | ({"cursor": cursor} if cursor else {})
        page = api.client.get("/v1/sims", params=params, headers=api.h("sims:read")).json()
        seen += [s["iccid"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 20
    assert seen == sorted(seen)
    r = api.client.get("/v1/sims", params={"state": "bogus"}, headers=api.h("sims:read"))
    assert r.status_code == 422 and r.json()["type"] == P + "invalid-input"
    assert r.json()["field"] == "state"
    r = api.client.get("/v1/sims", params={"cursor": "!!"}, headers=api.h("sims:read"))
    assert r.status_code == 422


@pytest.mark.storage
def test_lifecycle_with_optimistic_locking(api: Api) -> None:
    c, w, rd = api.client, api.h("sims:write"), api.h("sims:read")
    r = c.post("/v1/sims/allocate", json={"subscriber_ref": "cust-9", "form_factor": "3FF"},
               headers=w)
    assert r.status_code == 201, r.text
    sim = r.json()
    assert sim["state"] == "allocated" and sim["subscriber_ref"] == "cust-9"
    assert "ki_ref" not in sim and "opc_ref" not in sim
    iccid = sim["iccid"]
    r = c.post(f"/v1/sims/{iccid}/activate", json={"msisdn": "auto", "version": sim["version"]},
               headers=w)
    assert r.status_code == 200, r.text
    active = r.json()
    assert active["state"] == "active" and active["msisdn"]
    assert r.headers["etag"] == f'"{active["version"]}"'
    # Stale version, in the body and as If-Match
    r = c.post(f"/v1/sims/{iccid}/suspend", json={"version": sim["version"]}, headers=w)
    assert r.status_code == 409 and r.json()["type"] == P + "stale-version"
    r = c.post(f"/v1/sims/{iccid}/suspend", json={}, headers=w | {"If-Match": '"1"'})
    assert r.status_code == 409 and r.json()["type"] == P + "stale-version"
    r = c.post(f"/v1/sims/{iccid}/suspend", json={"reason": "lost"},
               headers=w | {"If-Match": f'W/"{active["version"]}"'})
    assert r.status_code == 200 and r.json()["state"] == "suspended"
    # Lookups
    for path in (f"/v1/sims/{iccid}", f"/v1/sims/by-imsi/{active['imsi']}",
                 f"/v1/sims/by-msisdn/{active['msisdn']}"):
        got = c.get(path, headers=rd)
        assert got.status_code == 200 and got.json()["iccid"] == iccid
    r = c.post(f"/v1/sims/{iccid}/resume", json={}, headers=w)
    assert r.json()["state"] == "active"
    r = c.post(f"/v1/sims/{iccid}/swap", json={"version": active["version"]}, headers=w)
    assert r.status_code == 409 and r.json()["type"] == P + "stale-version"  # changed since
    r = c.post(f"/v1/sims/{iccid}/swap", json={}, headers=w)
    assert r.status_code == 200, r.text
    swapped = r.json()
    assert swapped["old"]["state"] == "terminated"
    assert swapped["new"]["msisdn"] == active["msisdn"]
    new = swapped["new"]["iccid"]
    r = c.post(f"/v1/sims/{new}/terminate", json={"reason": "churn"}, headers=w)
    assert r.status_code == 200 and r.json()["state"] == "terminated"
    r = c.post(f"/v1/sims/{new}/resume", json={}, headers=w)
    assert r.status_code == 409 and r.json()["type"] == P + "transition-not-allowed"
    r = c.get("/v1/msisdns", params={"state": "quarantine"}, headers=rd)
    assert [m["msisdn"] for m in r.json()["items"]] == [active["msisdn"]]


@pytest.mark.storage
def test_errors_are_problems(api: Api) -> None:
    c, rd = api.client, api.h("sims:read")
    r = c.get("/v1/sims/8988280000000099990", headers=rd)  # Luhn-valid? maybe not
    assert r.status_code in (404, 422)
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"].startswith(P) and body["request_id"] == r.headers["x-request-id"]
    r = c.get("/v1/sims/123", headers=rd)
    assert r.status_code == 422 and r.json()["field"]
    r = c.post("/v1/sims/allocate", json={"subscriber_ref": ""}, headers=api.h("sims:write"))
    assert r.status_code == 422 and r.json()["type"] == P + "validation-error"
    assert "input" not in r.json()["errors"][0]
    r = c.post("/v1/sims/allocate", json={"subscriber_ref": "x", "batch": "nope"},
               headers=api.h("sims:write"))
    assert r.status_code == 404 and r.json()["type"] == P + "not-found"
    r = c.get("/v1/nothing", headers=rd | {"X-Request-ID": "abc-123"})
    assert r.status_code == 404 and r.json()["type"] == P + "not-found"
    assert r.headers["x-request-id"] == "abc-123"
    r = c.delete("/v1/sims", headers=rd)
    assert r.status_code == 405 and r.json()["type"] == P + "method-not-allowed"


@pytest.mark.slow
@pytest.mark.storage
def test_msisdns_and_audit(api: Api) -> None:
    c = api.client
    sim = c.post("/v1/sims/allocate", json={"subscriber_ref": "a"},
                 headers=api.h("sims:write")).json()
    r = c.post("/v1/msisdns/auto/assign", json={"iccid": sim["iccid"]},
               headers=api.h("sims:write"))
    assert r.status_code == 200, r.text
    number = r.json()["msisdn"]
    assert c.get(f"/v1/msisdns/{number}", headers=api.h("sims:read")).json()["state"] == \
        "assigned"
    r = c.post(f"/v1/msisdns/{number}/release", headers=api.h("sims:write"))
    assert r.json()["state"] == "quarantine"
    r = c.get("/v1/audit", params={"subject_id": sim["iccid"]}, headers=api.h("audit:read"))
    actions = [e["action"] for e in r.json()["items"]]
    assert "sim.allocated" in actions
    assert all(e["actor"].startswith("api:k-sims:write") for e in r.json()["items"])
    v = c.get("/v1/audit/verify", headers=api.h("audit:read")).json()
    assert v["ok"] and v["events"] > 0 and len(v["digest"]) == 64
    assert v["from_checkpoint"] is None and v["walked"] == v["events"]


def test_health_and_metrics(api: Api) -> None:
    c = api.client
    assert c.get("/healthz").json()["status"] == "ok"
    assert c.get("/readyz").json()["checks"] == {"database": "ok", "schema": "ok"}
    from prometheus_client.parser import text_string_to_metric_families

    def sample(text: str, name: str, **labels: str) -> float:
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))

    lbl = {"method": "GET", "route": "/v1/sims"}
    # The registry is the process's (prometheus-client): count what this test adds.
    before = c.get("/metrics", headers=api.h("metrics:read")).text
    c.get("/v1/sims", headers=api.h("sims:read"))
    r = c.get("/metrics", headers=api.h("metrics:read"))
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert sample(text, "simsmith_http_requests_total", status="200", **lbl) == \
        sample(before, "simsmith_http_requests_total", status="200", **lbl) + 1
    assert sample(text, "simsmith_http_request_duration_seconds_count", **lbl) == \
        sample(before, "simsmith_http_request_duration_seconds_count", **lbl) + 1
    assert "simsmith_http_request_duration_seconds_bucket" in text
    assert 'simsmith_webhook_backlog{kind="outbox_pending"}' in text


def test_metrics_gauges_are_read_off_the_event_loop(api: Api) -> None:
    """/metrics queries the store for its gauges: that must not block the server's event loop."""
    import asyncio

    seen: list[bool] = []

    def probe() -> dict[str, float]:
        try:
            asyncio.get_running_loop()
            seen.append(True)
        except RuntimeError:
            seen.append(False)
        return {"probe": 1.0}

    api.client.app.state.ctx.metrics.gauges["simsmith_test_probe"] = probe  # type: ignore[attr-defined]
    text = api.client.get("/metrics", headers=api.h("metrics:read")).text
    assert 'simsmith_test_probe{kind="probe"} 1.0' in text
    assert seen == [False]


def test_api_keys_are_checked_off_the_event_loop(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """An API key the cache does not hold is read from the store: in the thread pool, not on
    the event loop (where it would stall every other request during the query)."""
    import asyncio

    from simcore import apikeys

    real = apikeys.authenticate
    seen: list[bool] = []

    def probe(engine, key):  # type: ignore[no-untyped-def]
        try:
            asyncio.get_running_loop()
            seen.append(True)
        except RuntimeError:
            seen.append(False)
        return real(engine, key)

    monkeypatch.setattr(apikeys, "authenticate", probe)
    api.client.app.state.ctx.keys._keys.clear()  # type: ignore[attr-defined]
    assert api.client.get("/v1/sims", headers=api.h("sims:read")).status_code == 200
    assert seen and not any(seen)
