"""Cancelling a run (issue 19 item 3, docs/workflows.md): marked at once, acted on by the worker
at the next step boundary — the finished steps compensated in reverse as after a permanent
failure, the run `cancelled`; a finished or compensating run refused (409); idempotent;
audited with the actor and reason and announced through the outbox; safe when the worker
holding the run is SIGKILLed with a step in flight. SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlmodel import col

from simcore import audit
from simcore.db import read_session
from simcore.errors import Conflict, InvalidInput, NotFound
from simcore.inventory import get_sim
from simcore.models import OutboxEvent, Sim
from simcore.workflows import engine as wf
from simcore.workflows.activation import ACTIVATION
from simcore.workflows.service import cancel_workflow, get_workflow, start_activation
from simcore.workflows.steps import Deps
from tests.helpers.fake_hlr import FakeHlr, FileHlr
from tests.workflows import invariants
from tests.workflows.conftest import FAST
from tests.workflows.crash_worker import finish_after_kill

ROOT = Path(__file__).resolve().parents[2]


def _run(deps: Deps, registry: wf.Registry = wf.REGISTRY,
         policy: wf.RetryPolicy = FAST) -> None:
    w = wf.Worker(deps.engine, deps, policy=policy, registry=registry)
    for _ in range(50):
        w.run_once()


def _topics(engine: Engine) -> Counter[str]:
    with read_session(engine) as s:
        return Counter(s.execute(select(col(OutboxEvent.topic))).scalars())


def test_cancel_a_pending_run_runs_no_step(deps: Deps, fake_hlr: FakeHlr) -> None:
    wid = start_activation(deps.engine, {"subscriber_ref": "c-pend"}, actor="t")
    v = cancel_workflow(deps.engine, wid, actor="ops:alice", reason="customer changed mind")
    assert v.status == wf.PENDING and v.cancel_requested_by == "ops:alice"
    assert v.cancel_reason == "customer changed mind" and v.cancel_requested_at is not None
    _run(deps)
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.CANCELLED and v.finished
    assert v.error == "cancelled by ops:alice: customer changed mind"
    assert all(s.status == "pending" and s.attempts == 0 for s in v.steps)
    assert fake_hlr.calls == Counter()
    events = [e for e in audit.query(deps.engine, subject_id=wid)]
    asked = [e for e in events if e.action == "workflow.activation.cancel_requested"]
    assert len(asked) == 1 and asked[0].actor == "ops:alice"
    assert json.loads(asked[0].details)["reason"] == "customer changed mind"
    topics = _topics(deps.engine)
    assert topics["workflow.activation.cancel_requested"] == 1
    assert topics["workflow.activation.cancelled"] == 1
    # Asking again changes nothing; a finished run is refused.
    again = cancel_workflow(deps.engine, wid, actor="ops:bob", reason="again")
    assert again.status == wf.CANCELLED and again.cancel_requested_by == "ops:alice"
    assert _topics(deps.engine)["workflow.activation.cancel_requested"] == 1


def _cancelling(step_name: str) -> wf.Registry:
    """The activation with a cancel asked while `step_name`'s peer call is in flight."""
    def steps() -> Iterator[wf.Step]:
        for st in ACTIVATION.steps:
            if st.name != step_name:
                yield st
                continue
            call = st.call
            assert call is not None

            def call_then_cancel(run: wf.Run, call: wf.StepCall = call) -> object:
                out = call(run)
                cancel_workflow(run.deps.engine, run.id, actor="care:dan", reason="in flight")
                return out
            yield dataclasses.replace(st, call=call_then_cancel)
    return wf.Registry({"activation": dataclasses.replace(ACTIVATION, steps=tuple(steps()))})


def test_cancel_while_a_step_is_in_flight_compensates_from_the_boundary(
        deps: Deps, fake_hlr: FakeHlr) -> None:
    # An eSIM activation: the SM-DP+ order after the HLR is the next peer step, so the HLR
    # step's record is a boundary (store steps chained after a peer step commit with it).
    wid = start_activation(deps.engine, {"subscriber_ref": "c-fly", "kind": "esim"},
                           actor="t")
    _run(deps, registry=_cancelling("hlr"))
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.CANCELLED, (v.error, [(s.name, s.status) for s in v.steps])
    by = {s.name: s for s in v.steps}
    # The step in flight finished and was recorded, then undone with everything before it.
    assert by["hlr"].status == "compensated" and by["hlr"].attempts == 1
    assert by["msisdn"].status == "compensated" and by["reserve"].status == "compensated"
    assert by["validate"].status == "done"  # a check: nothing to undo
    assert [by[n].status for n in ("smdp_order", "activate", "notify")] == ["pending"] * 3
    assert all(by[n].attempts == 0 for n in ("smdp_order", "activate", "notify"))
    assert fake_hlr.calls["provision"] == 1 and fake_hlr.calls["remove"] == 1
    assert fake_hlr.subscribers == {}
    sim = get_sim(deps.engine, v.data["iccid"])
    assert (sim.state, sim.msisdn, sim.subscriber_ref) == ("in_stock", None, None)
    assert sim.profile_state == "available"
    assert _topics(deps.engine)["sim.activated"] == 0
    invariants.check(deps.engine, fake_hlr.subscribers)


def test_a_finished_run_is_refused(deps: Deps) -> None:
    wid = start_activation(deps.engine, {"subscriber_ref": "c-done"}, actor="t")
    _run(deps)
    assert get_workflow(deps.engine, wid).status == wf.SUCCEEDED
    with pytest.raises(Conflict, match=r"finished \(succeeded\)"):
        cancel_workflow(deps.engine, wid, actor="a", reason="too late")
    assert get_workflow(deps.engine, wid).cancel_requested_at is None


def test_a_cancel_during_the_last_peer_step_comes_too_late(deps: Deps,
                                                          fake_hlr: FakeHlr) -> None:
    """A physical activation's last peer step is the HLR: the store steps after it commit
    with its record, so the run is done when it would have looked at the cancel."""
    wid = start_activation(deps.engine, {"subscriber_ref": "c-hlr-last"}, actor="t")
    _run(deps, registry=_cancelling("hlr"))
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.SUCCEEDED and v.cancel_reason == "in flight"
    assert len(fake_hlr.subscribers) == 1


def test_a_cancel_during_the_last_step_comes_too_late(deps: Deps) -> None:
    wid = start_activation(deps.engine, {"subscriber_ref": "c-last"}, actor="t")
    last = ACTIVATION.steps[-1]
    steps = (*ACTIVATION.steps[:-1], dataclasses.replace(
        last, call=lambda run: cancel_workflow(run.deps.engine, run.id, actor="a",
                                               reason="late") and None))
    _run(deps, registry=wf.Registry({"activation": dataclasses.replace(ACTIVATION,
                                                                        steps=steps)}))
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.SUCCEEDED and v.cancel_reason == "late"


def test_cancel_a_run_waiting_for_a_retry(deps: Deps, fake_hlr: FakeHlr) -> None:
    slow = wf.RetryPolicy(initial=300, maximum=300, jitter=0, max_attempts=5)
    fake_hlr.down = -1  # the HLR unreachable: the hlr step waits 300 s for its retry
    wid = start_activation(deps.engine, {"subscriber_ref": "c-wait"}, actor="t")
    _run(deps, policy=slow)
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.RUNNING and v.next_attempt_at is not None
    fake_hlr.down = 0
    cancel_workflow(deps.engine, wid, actor="ops", reason="give up")
    _run(deps, policy=slow)  # due at once, not in 300 s
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.CANCELLED, v.error
    hlr = next(s for s in v.steps if s.name == "hlr")
    # Its attempt may have reached the HLR before it failed: undone too (idempotent there).
    assert hlr.status == "failed" and hlr.compensated_at is not None and hlr.attempts == 1
    assert fake_hlr.calls["provision"] == 0 and fake_hlr.subscribers == {}
    invariants.check(deps.engine, fake_hlr.subscribers)


def test_a_compensating_run_is_refused(deps: Deps) -> None:
    def failing_undo(run: wf.Run) -> None:
        raise wf.Transient("peer down")

    def refuse(run: wf.Run) -> None:
        raise wf.StepFailed("refused")

    d = wf.Definition("activation", (wf.Step("a", call=lambda r: None, undo=failing_undo),
                                     wf.Step("b", call=refuse)))
    wid = wf.start(deps.engine, d, {}, actor="t")
    w = wf.Worker(deps.engine, deps, policy=FAST, registry=wf.Registry({"activation": d}))
    w.run_once()
    assert get_workflow(deps.engine, wid).status == wf.COMPENSATING
    with pytest.raises(Conflict, match="already being compensated"):
        cancel_workflow(deps.engine, wid, actor="a", reason="r")


def test_bad_requests(deps: Deps) -> None:
    wid = start_activation(deps.engine, {"subscriber_ref": "c-bad"}, actor="t")
    with pytest.raises(InvalidInput, match="reason"):
        cancel_workflow(deps.engine, wid, actor="a", reason=" ")
    with pytest.raises(InvalidInput, match=r"at 4"):
        cancel_workflow(deps.engine, wid, actor="a", reason="abc\x1bdef")
    with pytest.raises(InvalidInput, match="workflow_id"):
        cancel_workflow(deps.engine, "nope", actor="a", reason="r")
    with pytest.raises(NotFound):
        cancel_workflow(deps.engine, wid, actor="a", reason="r", kind="swap")
    assert get_workflow(deps.engine, wid).cancel_requested_at is None


@pytest.mark.slow
def test_sigkill_with_a_step_in_flight_then_cancel(stocked: Engine, tmp_path: Path) -> None:
    """The worker dies right after the HLR created the subscriber, before the step's record;
    the cancel is asked then. The next worker runs no step: it undoes the HLR step (its attempt
    may have acted — it had) and everything before it."""
    url = stocked.url.render_as_string(hide_password=False)
    hlr_file = str(tmp_path / "hlr.json")
    wid = start_activation(stocked, {"subscriber_ref": "kill-cancel", "kind": "esim"},
                           actor="t")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.workflows.crash_worker", url, str(tmp_path / "hsm"),
         hlr_file, "hlr", "call"], cwd=ROOT, capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert FileHlr(hlr_file).state()["subscribers"]  # the peer acted
    v = cancel_workflow(stocked, wid, actor="ops", reason="killed mid-step")
    assert v.status == wf.RUNNING

    finish_after_kill(url, str(tmp_path / "hsm"), hlr_file, stocked, wid)
    v = get_workflow(stocked, wid)
    assert v.status == wf.CANCELLED, (v.error, [(s.name, s.status) for s in v.steps])
    by = {s.name: s for s in v.steps}
    assert by["hlr"].status == "failed" and by["hlr"].compensated_at is not None
    assert by["hlr"].attempts == 1  # the attempt that died; none after the cancel
    assert by["smdp_order"].status == "pending" and by["smdp_order"].attempts == 0
    hlr = FileHlr(hlr_file).state()
    assert [e.split()[0] for e in hlr["effects"]] == ["create", "remove"]
    assert get_sim(stocked, v.data["iccid"]).state == "in_stock"
    invariants.check(stocked, hlr["subscribers"])


# --- over HTTP ---------------------------------------------------------------------------------


def test_cancel_over_http(client: tuple[TestClient, dict[str, str]], deps: Deps) -> None:
    c, keys = client
    w = {"Authorization": keys["sims:write"]}
    wid = c.post("/v1/activations", json={"subscriber_ref": "h1"}, headers=w).json()["id"]
    body = {"reason": "wrong customer"}
    assert c.post(f"/v1/workflows/{wid}/cancel", json=body,
                  headers={"Authorization": keys["sims:read"]}).status_code == 403
    assert c.post(f"/v1/workflows/{wid}/cancel", json={"reason": ""},
                  headers=w).status_code == 422
    assert c.post(f"/v1/swaps/{wid}/cancel", json=body, headers=w).status_code == 404
    r = c.post(f"/v1/activations/{wid}/cancel", json=body, headers=w)
    assert r.status_code == 202, r.text
    assert r.json()["cancel_reason"] == "wrong customer" and r.json()["status"] == "pending"
    again = c.post(f"/v1/workflows/{wid}/cancel", json=body, headers=w)
    assert again.status_code == 202 and again.json()["cancel_requested_at"] == \
        r.json()["cancel_requested_at"]
    _run(deps)
    got = c.get(f"/v1/workflows/{wid}", headers={"Authorization": keys["sims:read"]}).json()
    assert got["status"] == "cancelled"
    listed = c.get("/v1/workflows?status=cancelled",
                   headers={"Authorization": keys["sims:read"]}).json()
    assert [x["id"] for x in listed["items"]] == [wid]
    done = c.post("/v1/activations", json={"subscriber_ref": "h2"}, headers=w).json()["id"]
    _run(deps)
    r = c.post(f"/v1/workflows/{done}/cancel", json=body, headers=w)
    assert r.status_code == 409 and "finished" in r.json()["detail"]
    assert r.headers["content-type"].startswith("application/problem+json")
    ev = [e for e in audit.query(deps.engine, subject_id=wid)
          if e.action.endswith("cancel_requested")]
    assert len(ev) == 1 and ev[0].actor.startswith("api:")


def test_a_termination_cannot_be_cancelled(deps: Deps) -> None:
    from simcore.workflows.service import start_termination

    with read_session(deps.engine) as s:
        iccid = s.execute(select(col(Sim.iccid)).limit(1)).scalar_one()
    wid = start_termination(deps.engine, iccid, actor="t", reason="contract ended")
    with pytest.raises(Conflict, match="goes forward"):
        cancel_workflow(deps.engine, wid, actor="a", reason="r")
