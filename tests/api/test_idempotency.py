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


@pytest.mark.storage
def test_a_confirmation_code_is_not_stored_with_the_replayable_answer(api: Api) -> None:
    """The order keeps SHA256(CC) only; the idempotency record must not keep the CC in clear
    either. The first answer has it, a replay has null there and is otherwise the same."""
    from sqlalchemy import select

    from simcore.models_api import IdempotencyRecord

    h = api.h("esim:order", **{"Idempotency-Key": "order-cc"})
    body = {"external_ref": "cust-cc", "confirmation_code": True}
    first = api.client.post("/v1/esim-profiles?qr_data_uri=false", json=body, headers=h)
    assert first.status_code == 201
    cc = first.json()["confirmation_code"]
    assert cc and cc.isdigit()
    with api.engine.connect() as c:
        stored = c.execute(select(IdempotencyRecord.body)).scalars().all()  # type: ignore[call-overload]
    assert stored and all(cc not in (b or "") for b in stored)
    again = api.client.post("/v1/esim-profiles?qr_data_uri=false", json=body, headers=h)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == {**first.json(), "confirmation_code": None}
    assert again.json()["confirmation_code_required"] is True
