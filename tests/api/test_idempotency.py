from __future__ import annotations

import pytest

from tests.api.conftest import Api

P = "urn:simsmith:problem:"


@pytest.mark.storage
def test_same_key_same_body_replays(api: Api) -> None:
    h = api.h("sims:write", **{"Idempotency-Key": "order-42"})
    body = {"subscriber_ref": "cust-42"}
    first = api.client.post("/v1/sims/allocate", json=body, headers=h)
    assert first.status_code == 201
    again = api.client.post("/v1/sims/allocate", json=body, headers=h)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    allocated = api.client.get("/v1/sims", params={"state": "allocated"},
                               headers=api.h("sims:read")).json()["items"]
    assert len(allocated) == 1  # the second request allocated nothing
    other = api.client.post("/v1/sims/allocate", json={"subscriber_ref": "cust-43"}, headers=h)
    assert other.status_code == 422 and other.json()["type"] == P + "idempotency-key-reused"
    # Keys are per API key: the admin key may use the same idempotency key for its own request.
    mine = api.client.post("/v1/sims/allocate", json={"subscriber_ref": "cust-44"},
                           headers=api.h("admin", **{"Idempotency-Key": "order-42"}))
    assert mine.status_code == 201 and mine.json()["iccid"] != first.json()["iccid"]


@pytest.mark.storage
def test_client_errors_are_replayed_too(api: Api) -> None:
    h = api.h("sims:write", **{"Idempotency-Key": "k2"})
    r1 = api.client.post("/v1/sims/89882800000000000007/resume", json={}, headers=h)
    assert r1.status_code == 409
    r2 = api.client.post("/v1/sims/89882800000000000007/resume", json={}, headers=h)
    assert r2.status_code == 409 and r2.json() == r1.json()
    assert r2.headers["idempotent-replayed"] == "true"
    bad = api.client.post("/v1/sims/allocate", json={}, headers=api.h(
        "sims:write", **{"Idempotency-Key": "x" * 300}))
    assert bad.status_code == 422 and bad.json()["field"] == "Idempotency-Key"
