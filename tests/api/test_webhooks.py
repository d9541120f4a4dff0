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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.storage
def test_deliveries_survive_a_restart(api: Api, receiver: Receiver, tmp_path: Path) -> None:
    _subscribe(api, receiver)
    for i in range(3):
        api.client.post("/v1/sims/allocate", json={"subscriber_ref": f"r{i}"},
                        headers=api.h("sims:write"))
    # A deliverer fans out and leases the deliveries, then dies before sending any.
    webhooks.fan_out(api.engine)
    # a lease long enough that the check below runs inside it even on a loaded machine
    leased = webhooks.claim_due(api.engine, lease=3.0)
    assert len(leased) == 3
    # A new process: nothing is due until the lease runs out, then everything is sent once.
    worker = WebhookWorker(api.engine, settings(tmp_path))
    try:
        assert webhooks.claim_due(api.engine) == []
        time.sleep(3.1)
        _drain(worker, rounds=5)
    finally:
        worker.stop()
    assert sorted(e["id"] for e in receiver.events) == sorted(j.event_id for j in leased)


@pytest.mark.slow
@pytest.mark.storage
def test_a_round_goes_straight_on_only_with_a_full_batch_behind(
        api: Api, receiver: Receiver, tmp_path: Path) -> None:
    """A stream of events is taken a batch per poll, not a round per event: the deliverer goes
    straight on only while a batch was full, and a round that drained everything waits."""
    _subscribe(api, receiver)
    webhooks.fan_out(api.engine)  # the events before: published
    for i in range(3):
        api.client.post("/v1/sims/allocate", json={"subscriber_ref": f"b{i}"},
                        headers=api.h("sims:write"))
    worker = WebhookWorker(api.engine, settings(tmp_path))
    worker.fan_out_batch, worker.send_batch = 2, 2
    try:
        assert worker.run_once() is True  # 2 of 3 events fanned out, 2 deliveries sent
        assert len(receiver.events) == 2
        assert worker.run_once() is False  # the last event fanned out and sent: drained
        assert len(receiver.events) == 3
        assert worker.run_once() is False  # nothing: the poll's wait
    finally:
        worker.stop()


# --- issue 13 item 3: endpoint URLs checked strictly; a bad endpoint cannot stop the others ---

BAD_URLS = [  # (url, what the error names, position of the fault: 1-based character)
    ("https://Äöz¹", "IDNA", 9),  # the URL from the issue: httpx cannot encode its host
    ("https://a_b.example/hook", "IDNA", 9),
    ("https://exa mple.com/", "U+0020", 12),
    ("https://hooks.example.com:0/", "port", 27),
    ("https://hooks.example.com:70000/", "port", 27),
    ("https://hooks.example.com:8a/", "port", 27),
    ("https://user:pw@hooks.example.com/", "user info", 9),
    ("https://hooks.example.com/a#frag", "fragment", 28),
    ("https://hooks.example.com/ä", "U+00E4", 27),
    ("https://hooks.example.com/\x00", "U+0000", 27),
    ("https://1.2.3/", "IPv4", 9),
    ("https://[::g]/", "IPv6", 9),
    ("https://" + "a" * 64 + ".example/", "IDNA", 9),
    ("ftp://hooks.example.com/", "scheme", 1),
]


@pytest.mark.parametrize(("url", "names", "at"), BAD_URLS)
def test_check_url_refuses_with_field_and_position(url: str, names: str, at: int) -> None:
    with pytest.raises(webhooks.InvalidInput) as e:
        webhooks.check_url(url)
    assert e.value.field == "url" and names in str(e.value)
    assert e.value.position == f"character {at}" and e.value.expected


def test_check_url_accepts_what_the_deliverer_can_send() -> None:
    for url in ("https://hooks.example.com/simsmith?token=abc", "http://127.0.0.1:8080/x",
                "https://[::1]:8443/", "https://bücher.example/hook",  # a valid IDN (U-label)
                "https://xn--bcher-kva.example/hook", "https://Hooks.Example.com:443"):
        assert webhooks.check_url(url) == url
    with pytest.raises(webhooks.InvalidInput, match="length 2049"):
        webhooks.check_url("https://h.example/" + "a" * 2031)
    with pytest.raises(webhooks.InvalidInput, match="'äöz1'"):  # the error suggests a mapping
        webhooks.check_url("https://Äöz¹")


@pytest.mark.storage
def test_create_refuses_bad_urls_as_problem_json(api: Api) -> None:
    h = api.h("webhooks:manage")
    for url, _names, at in BAD_URLS:
        r = api.client.post("/v1/webhooks", json={"url": url}, headers=h)
        assert r.status_code == 422, (url, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        if url.startswith("https://"):  # others are refused by the schema (body.url)
            p = r.json()
            assert p["field"] == "url" and f"character {at}" in p["detail"], (url, p)
        else:
            assert ["body", "url"] in [e["loc"] for e in r.json()["errors"]]
    assert api.client.get("/v1/webhooks", headers=h).json() == []
    ok = api.client.post("/v1/webhooks", json={"url": "https://bücher.example/hook"},
                         headers=h)
    assert ok.status_code == 201 and ok.json()["url"] == "https://bücher.example/hook"


@pytest.mark.slow
@pytest.mark.storage
def test_a_poisoned_endpoint_cannot_stop_the_others(api: Api, receiver: Receiver,
                                                   tmp_path: Path) -> None:
    """Rows that bypassed the check (written before it existed, or by hand): each failure is
    recorded against its own delivery, which backs off and dead-letters; the good endpoint,
    queued behind them, still gets every event."""
    from simcore.db import transaction
    from simcore.models_api import WebhookSubscription

    with transaction(api.engine) as s:
        for url in ("https://Äöz¹", "https://hooks.example.com:99999/", "ftp://x/"):
            s.add(WebhookSubscription(url=url, topics="*", secret="whsec_poisoned", active=True))
    _subscribe(api, receiver)
    sims = [api.client.post("/v1/sims/allocate", json={"subscriber_ref": f"p{i}"},
                            headers=api.h("sims:write")).json()["iccid"] for i in range(2)]
    worker = WebhookWorker(api.engine, settings(tmp_path, webhook_backoff_seconds=0.01,
                                                 webhook_max_attempts=3))
    try:
        _drain(worker)
    finally:
        worker.stop()
    assert sorted(e["subject_id"] for e in receiver.events) == sorted(sims)
    items = api.client.get("/v1/webhooks/deliveries", params={"limit": 100},
                           headers=api.h("webhooks:manage")).json()["items"]
    by_sub: dict[int, list[dict]] = {}  # type: ignore[type-arg]
    for d in items:
        by_sub.setdefault(d["subscription_id"], []).append(d)
    assert len(by_sub) == 4 and all(len(v) == 2 for v in by_sub.values())
    good, *bad = sorted(by_sub, reverse=True)  # the good subscription was made last
    assert [(d["state"], d["attempts"]) for d in by_sub[good]] == [("delivered", 1)] * 2
    for sub in bad:
        assert [(d["state"], d["attempts"]) for d in by_sub[sub]] == [("dead", 3)] * 2
        assert all(d["last_error"] and d["last_status"] is None for d in by_sub[sub])
    assert any("IDNA" in d["last_error"] for sub in bad for d in by_sub[sub])
    assert webhooks.claim_due(api.engine) == []  # nothing left to retry: no round loops forever
