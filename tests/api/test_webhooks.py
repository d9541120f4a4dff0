from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.webhook_worker import WebhookWorker
from simcore import webhooks
from tests.api.conftest import Api, settings
from tests.api.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _subscribe(api: Api, receiver: Receiver, topics: list[str] | None = None) -> dict:
    r = api.client.post("/v1/webhooks", json={"url": receiver.url} | (
        {"topics": topics} if topics else {}), headers=api.h("webhooks:manage"))
    assert r.status_code == 201, r.text
    receiver.secret = r.json()["secret"]
    assert r.json()["secret"].startswith("whsec_")
    listed = api.client.get("/v1/webhooks", headers=api.h("webhooks:manage")).json()
    assert all(s["secret"] is None for s in listed)
    return r.json()  # type: ignore[no-any-return]


def _drain(worker: WebhookWorker, rounds: int = 50) -> None:
    for _ in range(rounds):
        if not worker.run_once():
            time.sleep(0.02)


def test_signature_round_trip_and_replay_window() -> None:
    body = b'{"id":1}'
    header = webhooks.signature_header("s3cret", body, timestamp=1_700_000_000)
    assert webhooks.verify_signature("s3cret", header, body, now=1_700_000_100) == 1_700_000_000
    with pytest.raises(webhooks.InvalidSignature, match="replay window"):
        webhooks.verify_signature("s3cret", header, body, now=1_700_000_000 + 301)
    with pytest.raises(webhooks.InvalidSignature, match="does not match"):
        webhooks.verify_signature("s3cret", header, b'{"id":2}', now=1_700_000_000)
    with pytest.raises(webhooks.InvalidSignature):
        webhooks.verify_signature("other", header, body, now=1_700_000_000)


@pytest.mark.storage
def test_events_delivered_signed_with_retries(api: Api, receiver: Receiver,
                                              tmp_path: Path) -> None:
    _subscribe(api, receiver, ["sim.state_changed"])
    receiver.fail_first = 2
    sim = api.client.post("/v1/sims/allocate", json={"subscriber_ref": "w1"},
                          headers=api.h("sims:write")).json()
    worker = WebhookWorker(api.engine, settings(tmp_path, webhook_backoff_seconds=0.01))
    try:
        _drain(worker)
    finally:
        worker.stop()
    assert receiver.bad_signatures == 0
    assert [e["subject_id"] for e in receiver.events] == [sim["iccid"]]
    assert receiver.events[0]["data"]["to"] == "allocated"
    d = api.client.get("/v1/webhooks/deliveries", headers=api.h("webhooks:manage")).json()
    assert [(x["state"], x["attempts"]) for x in d["items"]] == [("delivered", 3)]


@pytest.mark.storage
def test_dead_letter_and_redeliver(api: Api, receiver: Receiver, tmp_path: Path) -> None:
    _subscribe(api, receiver)
    receiver.always_fail = True
    api.client.post("/v1/sims/allocate", json={"subscriber_ref": "w2"},
                    headers=api.h("sims:write"))
    worker = WebhookWorker(api.engine, settings(tmp_path, webhook_backoff_seconds=0.01,
                                                 webhook_max_attempts=3))
    try:
        _drain(worker)
        h = api.h("webhooks:manage")
        dead = api.client.get("/v1/webhooks/deliveries", params={"state": "dead"},
                              headers=h).json()["items"]
        assert len(dead) == 1 and dead[0]["attempts"] == 3 and dead[0]["last_status"] == 500
        receiver.always_fail = False
        r = api.client.post(f"/v1/webhooks/deliveries/{dead[0]['id']}/redeliver", headers=h)
        assert r.status_code == 200 and r.json()["state"] == "pending"
        _drain(worker)
    finally:
        worker.stop()
    assert len(receiver.events) == 1
    assert api.client.get("/v1/webhooks/deliveries", params={"state": "delivered"},
                          headers=api.h("webhooks:manage")).json()["items"]


@pytest.mark.storage
def test_deliveries_survive_a_restart(api: Api, receiver: Receiver, tmp_path: Path) -> None:
    _subscribe(api, receiver)
    for i in range(3):
        api.client.post("/v1/sims/allocate", json={"subscriber_ref": f"r{i}"},
                        headers=api.h("sims:write"))
    # A deliverer fans out and leases the deliveries, then dies before sending any.
    webhooks.fan_out(api.engine)
    leased = webhooks.claim_due(api.engine, lease=0.3)
    assert len(leased) == 3
    # A new process: nothing is due until the lease runs out, then everything is sent once.
    worker = WebhookWorker(api.engine, settings(tmp_path))
    try:
        assert webhooks.claim_due(api.engine) == []
        time.sleep(0.35)
        _drain(worker, rounds=5)
    finally:
        worker.stop()
    assert sorted(e["id"] for e in receiver.events) == sorted(j.event_id for j in leased)
