"""The workflow resources over HTTP: 202 + Location, Idempotency-Key, the step timeline,
scopes, problem+json for bad input, and the siblings (suspend, resume, swap, terminate)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from simcore.workflows import engine as wf
from simcore.workflows.steps import Deps
from tests.workflows.conftest import FAST


def _work(deps: Deps) -> None:
    w = wf.Worker(deps.engine, deps, policy=FAST)
    for _ in range(30):
        w.run_once()


def test_activation_202_poll_and_replay(client: tuple[TestClient, dict[str, str]],
                                        deps: Deps) -> None:
    c, keys = client
    h = {"Authorization": keys["sims:write"], "Idempotency-Key": "act-1",
         "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    r = c.post("/v1/activations", json={"subscriber_ref": "cust-9"}, headers=h)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "pending" and body["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert r.headers["location"].endswith(f"/v1/activations/{body['id']}")
    again = c.post("/v1/activations", json={"subscriber_ref": "cust-9"}, headers=h)
    assert again.status_code == 202 and again.json()["id"] == body["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    _work(deps)
    got = c.get(r.headers["location"], headers={"Authorization": keys["sims:read"]}).json()
    assert got["status"] == "succeeded"
    assert [s["name"] for s in got["steps"]][:5] == ["validate", "reserve", "msisdn", "keys",
                                                     "hlr"]
    assert all(s["attempts"] == 1 for s in got["steps"] if s["status"] == "done")
    listed = c.get("/v1/activations", headers={"Authorization": keys["sims:read"]}).json()
    assert [w["id"] for w in listed["items"]] == [body["id"]]
    assert c.get(f"/v1/suspensions/{body['id']}",
                 headers={"Authorization": keys["sims:read"]}).status_code == 404


def test_the_202_is_the_run_as_written_without_a_read_back(
        client: tuple[TestClient, dict[str, str]], stocked: Engine) -> None:
    """The 202 is built from the rows the start wrote (no SELECT of the run or its steps) and
    says what a GET says while no worker has touched the run."""
    c, keys = client
    reads: list[str] = []

    def capture(_c, _cur, statement, *_):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "FROM workflow" in statement:
            reads.append(statement)

    event.listen(stocked, "before_cursor_execute", capture)
    try:
        r = c.post("/v1/activations", json={"subscriber_ref": "cust-w"},
                   headers={"Authorization": keys["sims:write"]})
    finally:
        event.remove(stocked, "before_cursor_execute", capture)
    assert r.status_code == 202, r.text
    assert reads == []
    got = c.get(r.headers["location"], headers={"Authorization": keys["sims:read"]})
    assert r.json() == got.json()
    assert [s["status"] for s in got.json()["steps"]] == ["pending"] * 8


def test_scopes_and_bad_input(client: tuple[TestClient, dict[str, str]]) -> None:
    c, keys = client
    r = c.post("/v1/activations", json={"subscriber_ref": "x"},
               headers={"Authorization": keys["sims:read"]})
    assert r.status_code == 403
    r = c.post("/v1/activations", json={"subscriber_ref": "x", "iccid": "8988280000000000001"},
               headers={"Authorization": keys["sims:write"]})
    assert r.status_code == 422 and "iccid" in r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    paths = c.get("/openapi.json").json()["paths"]
    for p in ("/v1/activations", "/v1/activations/{workflow_id}", "/v1/suspensions",
              "/v1/resumptions", "/v1/swaps", "/v1/terminations", "/v1/workflows"):
        assert p in paths


def test_siblings_over_http(client: tuple[TestClient, dict[str, str]], deps: Deps) -> None:
    c, keys = client
    w = {"Authorization": keys["sims:write"]}
    rd = {"Authorization": keys["sims:read"]}

    def run(path: str, body: dict[str, str]) -> dict:  # type: ignore[type-arg]
        r = c.post(path, json=body, headers=w)
        assert r.status_code == 202, r.text
        _work(deps)
        out = c.get(r.headers["location"], headers=rd).json()
        assert out["status"] == "succeeded", out
        return out  # type: ignore[no-any-return]

    act = run("/v1/activations", {"subscriber_ref": "s1"})
    iccid, imsi = act["data"]["iccid"], act["data"]["imsi"]
    run("/v1/suspensions", {"iccid": iccid, "reason": "unpaid"})
    assert not deps.hlr.subscribers[imsi].allowed  # type: ignore[attr-defined]
    run("/v1/resumptions", {"iccid": iccid})
    assert deps.hlr.subscribers[imsi].allowed  # type: ignore[attr-defined]
    swap = run("/v1/swaps", {"iccid": iccid})
    assert imsi not in deps.hlr.subscribers  # type: ignore[attr-defined]
    new = swap["data"]["new_iccid"]
    assert c.get(f"/v1/sims/{new}", headers=rd).status_code in (200, 403)
    run("/v1/terminations", {"iccid": new, "reason": "gone"})
    assert deps.hlr.subscribers == {}  # type: ignore[attr-defined]
    kinds = [x["kind"] for x in c.get("/v1/workflows", headers=rd).json()["items"]]
    assert kinds == ["termination", "swap", "resume", "suspend", "activation"]
