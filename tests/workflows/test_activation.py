"""Activation end to end on the engine with the fake HLR and the in-process SM-DP+: success,
retries with backoff, compensation in reverse, idempotency keys, leases."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from simcore.db import read_session
from simcore.errors import Conflict, InvalidInput
from simcore.models import MsisdnEntry, OutboxEvent, Sim
from simcore.models_api import EsimOrder
from simcore.workflows import engine as wf
from simcore.workflows.service import get_workflow, list_workflows, start_activation
from simcore.workflows.steps import Deps
from tests.helpers.fake_hlr import FakeHlr
from tests.workflows.conftest import FAST


def _run(deps: Deps, rounds: int = 50) -> None:
    w = wf.Worker(deps.engine, deps, policy=FAST, lease=30)
    for _ in range(rounds):
        w.run_once()


def _sims(engine: Engine) -> dict[str, Sim]:
    with read_session(engine) as s:
        return {x.iccid: x for x in s.execute(select(Sim)).scalars()}


def _topics(engine: Engine) -> Counter[str]:
    with read_session(engine) as s:
        return Counter(s.execute(select(col(OutboxEvent.topic))).scalars())


def test_physical_activation_runs_every_step(deps: Deps, fake_hlr: FakeHlr) -> None:
    wid = start_activation(deps.engine, {"subscriber_ref": "cust-1"}, actor="t")
    assert get_workflow(deps.engine, wid).status == wf.PENDING
    _run(deps)
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.SUCCEEDED, v.error
    assert [(s.name, s.status) for s in v.steps] == [
        ("validate", "done"), ("reserve", "done"), ("msisdn", "done"), ("keys", "done"),
        ("hlr", "done"), ("smdp_order", "skipped"), ("activate", "done"), ("notify", "done")]
    assert all(s.attempts == 1 for s in v.steps if s.status == "done")
    assert all(s.started_at and s.finished_at for s in v.steps if s.status == "done")
    assert len({s.idempotency_key for s in v.steps}) == len(v.steps)
    assert v.trace_id and len(v.trace_id) == 32
    sim = _sims(deps.engine)[v.data["iccid"]]
    assert (sim.state, sim.subscriber_ref, sim.msisdn) == ("active", "cust-1", "447700900000")
    assert fake_hlr.subscribers[sim.imsi].msisdn == "447700900000"
    assert fake_hlr.calls["provision"] == 1
    topics = _topics(deps.engine)
    assert topics["sim.activated"] == 1 and topics["workflow.activation.succeeded"] == 1


def test_esim_activation_orders_at_the_smdp(deps: Deps, fake_hlr: FakeHlr) -> None:
    wid = start_activation(deps.engine, {"subscriber_ref": "c2", "kind": "esim"}, actor="t")
    _run(deps)
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.SUCCEEDED, v.error
    sim = _sims(deps.engine)[v.data["iccid"]]
    assert (sim.kind, sim.state, sim.profile_state) == ("esim", "active", "released")
    assert sim.ki_ref and sim.opc_ref  # made by the HSM: "keys ready"
    with read_session(deps.engine) as s:
        orders = list(s.execute(select(EsimOrder)).scalars())
    assert [(o.iccid, o.status, o.matching_id) for o in orders] == [
        (sim.iccid, "active", v.data["matching_id"])]
    assert v.data["smdp_address"] == "smdp.simsmith.test"


def test_hlr_down_is_retried_then_succeeds(deps: Deps, fake_hlr: FakeHlr) -> None:
    fake_hlr.down = 2
    wid = start_activation(deps.engine, {"subscriber_ref": "c3"}, actor="t")
    _run(deps)
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.SUCCEEDED, v.error
    hlr = next(s for s in v.steps if s.name == "hlr")
    assert hlr.attempts == 3 and hlr.last_error is None
    assert fake_hlr.calls["provision:down"] == 2 and fake_hlr.calls["created"] == 1


def test_hlr_down_for_good_compensates_in_reverse(deps: Deps, fake_hlr: FakeHlr) -> None:
    fake_hlr.down = FAST.max_attempts
    before = _sims(deps.engine)
    wid = start_activation(deps.engine, {"subscriber_ref": "c4", "kind": "esim"}, actor="t")
    _run(deps)
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.FAILED
    assert v.error and v.error.startswith("hlr: HlrUnavailable")
    assert [(s.name, s.status) for s in v.steps][:6] == [
        ("validate", "done"), ("reserve", "compensated"), ("msisdn", "compensated"),
        ("keys", "done"), ("hlr", "failed"), ("smdp_order", "pending")]
    after = _sims(deps.engine)
    sim = after[v.data["iccid"]]
    assert (sim.state, sim.subscriber_ref, sim.msisdn) == ("in_stock", None, None)
    assert sim.profile_state == before[sim.iccid].profile_state == "available"
    with read_session(deps.engine) as s:
        number = s.get(MsisdnEntry, v.data["msisdn"])
    assert number is not None and number.state == "quarantine" and number.iccid is None
    assert fake_hlr.subscribers == {}
    assert _topics(deps.engine)["workflow.activation.failed"] == 1


def test_smdp_refusal_compensates_hlr_and_everything_before(deps: Deps,
                                                            fake_hlr: FakeHlr) -> None:
    from simcore.smdp.port import SmdpRefused

    class Refusing:
        smdp_address = "smdp.simsmith.test"

        def download_order(self, **kw: object) -> None:
            raise SmdpRefused("DownloadOrder", "8.2.1", "3.8", "no")

        def cancel_order(self, **kw: object) -> None:
            raise AssertionError("nothing to cancel")

    deps.smdp = Refusing()  # type: ignore[assignment]
    wid = start_activation(deps.engine, {"subscriber_ref": "c5", "kind": "esim"}, actor="t")
    _run(deps)
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.FAILED
    assert [s.status for s in v.steps][3:6] == ["done", "compensated", "failed"]
    assert fake_hlr.calls["created"] == 1 and fake_hlr.calls["remove"] == 1
    assert fake_hlr.subscribers == {}
    assert _sims(deps.engine)[v.data["iccid"]].state == "in_stock"


def test_no_sim_in_stock_fails_without_side_effects(deps: Deps, fake_hlr: FakeHlr) -> None:
    wid = start_activation(deps.engine, {"subscriber_ref": "c", "kind": "physical",
                                         "batch": "esims"}, actor="t")
    _run(deps)
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.FAILED and "no physical SIM in stock" in (v.error or "")
    assert fake_hlr.calls == Counter()


def test_bad_input_is_refused_at_start(deps: Deps) -> None:
    with pytest.raises(InvalidInput, match="subscriber_ref"):
        start_activation(deps.engine, {"subscriber_ref": ""}, actor="t")
    with pytest.raises(InvalidInput, match="iccid"):
        start_activation(deps.engine, {"subscriber_ref": "x", "iccid": "8988280000000000001"},
                         actor="t")
    with pytest.raises(InvalidInput, match="colour"):
        start_activation(deps.engine, {"subscriber_ref": "x", "colour": "red"}, actor="t")


def test_idempotency_key_returns_the_same_run(deps: Deps) -> None:
    a = start_activation(deps.engine, {"subscriber_ref": "k"}, actor="t", idempotency_key="i1")
    b = start_activation(deps.engine, {"subscriber_ref": "k"}, actor="t", idempotency_key="i1")
    assert a == b
    with pytest.raises(Conflict):
        start_activation(deps.engine, {"subscriber_ref": "other"}, actor="t",
                         idempotency_key="i1")
    assert len(list_workflows(deps.engine, kind="activation")) == 1


def test_a_lease_lost_cannot_write_and_the_run_resumes(deps: Deps, fake_hlr: FakeHlr) -> None:
    wid = start_activation(deps.engine, {"subscriber_ref": "lease"}, actor="t")
    [first] = wf.claim(deps.engine, "w1", lease=0.0)  # expires at once
    [second] = wf.claim(deps.engine, "w2", lease=30)
    assert first.workflow_id == second.workflow_id == wid
    assert wf.advance(deps.engine, first, deps, policy=FAST) == "lost"
    assert get_workflow(deps.engine, wid).steps[0].status == "pending"
    assert wf.advance(deps.engine, second, deps, policy=FAST) == wf.SUCCEEDED
    assert fake_hlr.calls["provision"] == 1


def test_list_newest_first_with_paging(deps: Deps) -> None:
    ids = [start_activation(deps.engine, {"subscriber_ref": f"p{i}"}, actor="t")
           for i in range(3)]
    page = list_workflows(deps.engine, limit=2)
    assert [w.id for w in page] == [ids[2], ids[1]]
    rest = list_workflows(deps.engine, before=page[-1].id)
    assert [w.id for w in rest] == [ids[0]]
    assert json.dumps(get_workflow(deps.engine, ids[0]).as_dict())


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    p = wf.RetryPolicy(initial=1.0, maximum=30.0, jitter=1.0)
    for attempt, low in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)):
        d = p.delay(attempt)
        assert low <= d <= low + 1.0
    assert p.delay(20) <= 30.0
    assert len({round(p.delay(3), 6) for _ in range(20)}) > 1  # jitter: not all the same
