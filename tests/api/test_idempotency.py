from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from simcore.models_api import EsimOrder
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


@pytest.mark.storage
def test_an_order_refused_by_its_service_is_not_recorded(api: Api) -> None:
    """The order records its Idempotency-Key in the transaction that claims the profile: when
    no profile is left (409) nothing is recorded, so the same key works once stock is back."""
    from simcore import esim_orders, inventory

    h = api.h("esim:order", **{"Idempotency-Key": "order-empty"})
    for i in range(20):  # the fixture stocks 20 profiles
        assert api.client.post("/v1/esim-profiles?qr_data_uri=false",
                               json={"external_ref": f"x{i}"},
                               headers=api.h("esim:order")).status_code == 201
    body = {"external_ref": "late"}
    refused = api.client.post("/v1/esim-profiles?qr_data_uri=false", json=body, headers=h)
    assert refused.status_code == 409
    inventory.generate_sims(api.engine, 1, batch="esim2", kind="esim", actor="t")
    esim_orders.stock_profiles(api.engine, actor="t")
    done = api.client.post("/v1/esim-profiles?qr_data_uri=false", json=body, headers=h)
    assert done.status_code == 201 and "idempotent-replayed" not in done.headers
    again = api.client.post("/v1/esim-profiles?qr_data_uri=false", json=body, headers=h)
    assert again.headers["idempotent-replayed"] == "true" and again.json() == done.json()


@pytest.mark.slow
@pytest.mark.storage
def test_concurrent_orders_with_one_key_make_one_order(engine: Engine, tmp_path: Path) -> None:
    """24 concurrent requests with one Idempotency-Key against two workers: one profile is
    ordered; every other answer is its replay or 409 while it runs, never a second order."""
    import asyncio

    import httpx

    from simcore import apikeys
    from tests.api.conftest import seed_inventory
    from tests.api.live import LiveServer

    seed_inventory(engine, physical=2, esims=30)
    _, key = apikeys.create(engine, "shop", ["esim:order"], actor="t")
    server = LiveServer(engine.url.render_as_string(hide_password=False), tmp_path, workers=2)

    async def burst() -> list[httpx.Response]:
        h = {"Authorization": f"Bearer {key}", "Idempotency-Key": "same"}
        async with httpx.AsyncClient(base_url=server.url, headers=h, timeout=60) as c:
            return await asyncio.gather(*(
                c.post("/v1/esim-profiles?qr_data_uri=false", json={"external_ref": "one"})
                for _ in range(24)))

    try:
        answers = asyncio.run(burst())
        after = httpx.post(server.url + "/v1/esim-profiles?qr_data_uri=false",
                           json={"external_ref": "one"}, timeout=30,
                           headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "same"})
    finally:
        server.stop()
    assert {a.status_code for a in answers} <= {201, 409}
    created = [a for a in answers if a.status_code == 201]
    assert len({a.json()["iccid"] for a in created}) == 1
    assert sum("idempotent-replayed" not in a.headers for a in created) == 1
    assert after.status_code == 201 and after.json() == created[0].json()
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(EsimOrder)).scalar_one() == 1


@pytest.mark.storage
def test_a_refused_order_leaves_a_concurrent_requests_record_alone(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Race: another request with the same key commits its order (and pending record) just
    after this one's lookup; this one is then refused before its own commit (a bad EID). Its
    clean-up must not delete the other's record, or a third request would order again."""
    from simcore import apikeys, idempotency
    from simcore.db import connection_transaction
    from simcore.models_api import IdempotencyRecord

    key_id = next(k.id for k in apikeys.list_keys(api.engine) if k.name == "k-esim:order")
    other = idempotency.Claim(int(key_id or 0), "raced", "f" * 64)
    with connection_transaction(api.engine) as conn:
        idempotency.record_pending(conn, other)
    monkeypatch.setattr(idempotency, "lookup", lambda *a, **k: None)  # looked before it landed
    r = api.client.post("/v1/esim-profiles", json={"external_ref": "x", "eid": "123"},
                        headers=api.h("esim:order", **{"Idempotency-Key": "raced"}))
    assert r.status_code == 422
    with api.engine.connect() as c:
        states = c.execute(select(IdempotencyRecord.state)).scalars().all()  # type: ignore[call-overload]
    assert states == ["pending"]


def test_fingerprint_counts_the_query_in_any_order_and_streams_the_body() -> None:
    """Before, the query was not in the fingerprint: a repeat of `POST /v1/imports?dry_run=true`
    with the key of a real import replayed the real one. The query's pairs count in any order;
    without a query the value is as before (records made before the change still replay); a
    streamed body is fingerprinted from its chunks, whatever their sizes."""
    import hashlib

    from simcore.idempotency import StreamFingerprint, fingerprint

    old = hashlib.sha256()
    for part in (b"POST", b"/v1/x", b"{}"):
        old.update(len(part).to_bytes(8, "big") + part)
    assert fingerprint("post", "/v1/x", b"{}") == old.hexdigest()
    assert fingerprint("POST", "/v1/x", b"{}", "a=1&b=2") == fingerprint(
        "POST", "/v1/x", b"{}", "b=2&a=1")
    assert fingerprint("POST", "/v1/x", b"{}", "a=1") != fingerprint("POST", "/v1/x", b"{}")
    assert fingerprint("POST", "/v1/x", b"{}", "a=1") != fingerprint("POST", "/v1/x", b"{}", "a=2")
    body = bytes(range(256)) * 300
    one, many = StreamFingerprint("POST", "/v1/i", "f=a"), StreamFingerprint("POST", "/v1/i", "f=a")
    one.update(body)
    for i in range(0, len(body), 1000):
        many.update(body[i:i + 1000])
    assert one.hexdigest() == many.hexdigest()
    other = StreamFingerprint("POST", "/v1/i", "f=b")
    other.update(body)
    assert other.hexdigest() != one.hexdigest()
