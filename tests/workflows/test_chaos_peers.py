"""Chaos at the peers (issue 18 item 5): a private osmo-hlr stopped mid-activation (retries,
then compensation; success once it is back and the activation is asked again; a compensation
that waits for the HLR to come back), and an SM-DP+ stand-in that times out (before or after
executing) or fails. Each ends with the invariants (tests/workflows/invariants.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from hsm_sim.soft import SoftHsm
from simcore.db import read_session
from simcore.models import Sim
from simcore.ports.osmo_hlr import OsmoHlr
from simcore.smdp.in_process import InProcessSmdp
from simcore.smdp.port import SmdpRefused, SmdpUnavailable
from simcore.workflows import engine as wf
from simcore.workflows.service import get_workflow, start_activation
from simcore.workflows.steps import Deps
from tests.helpers.fake_hlr import FakeHlr
from tests.helpers.private_osmohlr import PrivateOsmoHlr
from tests.workflows import invariants
from tests.workflows.conftest import FAST

pytestmark = pytest.mark.slow  # subprocesses, osmo-hlr, an HSM opened per command


def _work(deps: Deps, rounds: int = 30) -> None:
    w = wf.Worker(deps.engine, deps, policy=FAST)
    for _ in range(rounds):
        w.run_once()


def _imsis(engine: Engine) -> list[str]:
    with read_session(engine) as s:
        return [x for x in s.execute(select(Sim.imsi)).scalars() if x]


def _hlr_holds(hlr: OsmoHlr, engine: Engine) -> list[str]:
    return [i for i in _imsis(engine) if hlr.exists(i)]


@pytest.fixture
def private_hlr(tmp_path: Path) -> Iterator[PrivateOsmoHlr]:
    h = PrivateOsmoHlr(tmp_path / "osmo-hlr").start()
    yield h
    h.stop()


@pytest.fixture
def osmo_deps(stocked: Engine, hsm: SoftHsm, private_hlr: PrivateOsmoHlr) -> Iterator[Deps]:
    port = OsmoHlr(hsm, "hlr-test", private_hlr.host, timeout=2.0)
    yield Deps(stocked, port, InProcessSmdp(stocked, "smdp.simsmith.test"), hsm)
    port.close()


def test_osmo_hlr_stopped_then_compensated_then_success_when_back(
        osmo_deps: Deps, private_hlr: PrivateOsmoHlr) -> None:
    eng, hlr = osmo_deps.engine, osmo_deps.hlr
    assert isinstance(hlr, OsmoHlr)
    private_hlr.stop()
    wid = start_activation(eng, {"subscriber_ref": "c1"}, actor="t")
    _work(osmo_deps)
    v = get_workflow(eng, wid)
    assert v.status == wf.FAILED and "HlrUnavailable" in (v.error or "")
    step = next(s for s in v.steps if s.name == "hlr")
    assert (step.status, step.attempts) == ("failed", FAST.max_attempts)
    assert [s.status for s in v.steps[1:3]] == ["compensated", "compensated"]
    private_hlr.start()
    invariants.check(eng, _hlr_holds(hlr, eng))
    again = start_activation(eng, {"subscriber_ref": "c1"}, actor="t")
    _work(osmo_deps)
    v2 = get_workflow(eng, again)
    assert v2.status == wf.SUCCEEDED, v2.error
    assert _hlr_holds(hlr, eng) == [v2.data["imsi"]]
    invariants.check(eng, _hlr_holds(hlr, eng))


def test_osmo_hlr_back_before_the_retries_run_out(osmo_deps: Deps,
                                                  private_hlr: PrivateOsmoHlr) -> None:
    eng, hlr = osmo_deps.engine, osmo_deps.hlr
    assert isinstance(hlr, OsmoHlr)
    private_hlr.stop()
    wid = start_activation(eng, {"subscriber_ref": "c2"}, actor="t")
    w = wf.Worker(eng, osmo_deps, policy=FAST)
    while get_workflow(eng, wid).steps[4].attempts < 1:  # the hlr step has failed once
        w.run_once()
    assert get_workflow(eng, wid).steps[4].last_error
    private_hlr.start()
    _work(osmo_deps)
    v = get_workflow(eng, wid)
    assert v.status == wf.SUCCEEDED and v.steps[4].attempts == 2
    assert _hlr_holds(hlr, eng) == [v.data["imsi"]]
    invariants.check(eng, _hlr_holds(hlr, eng))


def test_compensation_waits_for_the_hlr(osmo_deps: Deps, private_hlr: PrivateOsmoHlr) -> None:
    """The SM-DP+ refuses after the HLR entry was made, and the HLR is down just then: the
    removal is retried until the HLR is back; nothing is left behind."""
    eng, hlr = osmo_deps.engine, osmo_deps.hlr
    assert isinstance(hlr, OsmoHlr)

    class RefusingWhileHlrDown:
        smdp_address = "smdp.simsmith.test"

        def download_order(self, **kw: Any) -> None:
            private_hlr.stop()
            raise SmdpRefused("DownloadOrder", "8.2.1", "3.8", "refused")

    osmo_deps.smdp = RefusingWhileHlrDown()  # type: ignore[assignment]
    policy = wf.RetryPolicy(initial=0, maximum=0, jitter=0, max_attempts=3,
                            max_undo_attempts=50)
    wid = start_activation(eng, {"subscriber_ref": "c3", "kind": "esim"}, actor="t")
    w = wf.Worker(eng, osmo_deps, policy=policy)
    for _ in range(5):
        w.run_once()
    v = get_workflow(eng, wid)
    assert v.status == wf.COMPENSATING
    hlr_step = next(s for s in v.steps if s.name == "hlr")
    assert hlr_step.status == "done" and hlr_step.compensation_attempts >= 2
    assert "HlrUnavailable" in (hlr_step.last_error or "")
    private_hlr.start()
    for _ in range(10):
        w.run_once()
    v = get_workflow(eng, wid)
    assert v.status == wf.FAILED
    assert next(s for s in v.steps if s.name == "hlr").status == "compensated"
    assert _hlr_holds(hlr, eng) == []
    invariants.check(eng, [])


class FlakySmdp:
    """The in-process SM-DP+ behind a stand-in that times out: `before` calls never reach it,
    `after` calls execute and then time out (the answer lost). Counts what it executed."""

    def __init__(self, real: InProcessSmdp, *, before: int = 0, after: int = 0) -> None:
        self.real, self.before, self.after = real, before, after
        self.executed: Counter[str] = Counter()
        self.smdp_address = real.smdp_address

    def _call(self, name: str, **kw: Any) -> Any:
        if self.before:
            if self.before > 0:
                self.before -= 1
            raise SmdpUnavailable(f"{name}: timed out", maybe_executed=False)
        result = getattr(self.real, name)(**kw)
        self.executed[name] += 1
        if self.after:
            self.after -= 1
            raise SmdpUnavailable(f"{name}: timed out after sending")
        return result

    def download_order(self, **kw: Any) -> Any:
        return self._call("download_order", **kw)

    def confirm_order(self, **kw: Any) -> Any:
        return self._call("confirm_order", **kw)

    def cancel_order(self, **kw: Any) -> Any:
        self.real.cancel_order(**kw)
        self.executed["cancel_order"] += 1

    def release_profile(self, **kw: Any) -> Any:
        return self._call("release_profile", **kw)


def test_smdp_timing_out_after_executing_is_retried_without_a_second_order(
        deps: Deps, fake_hlr: FakeHlr) -> None:
    assert isinstance(deps.smdp, InProcessSmdp)
    flaky = deps.smdp = FlakySmdp(deps.smdp, after=1)  # type: ignore[assignment]
    wid = start_activation(deps.engine, {"subscriber_ref": "e1", "kind": "esim"}, actor="t")
    _work(deps)
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.SUCCEEDED, v.error
    assert next(s for s in v.steps if s.name == "smdp_order").attempts == 2
    assert flaky.executed == Counter({"download_order": 1, "confirm_order": 1})
    invariants.check(deps.engine, fake_hlr.subscribers)


def test_smdp_down_for_good_is_compensated(deps: Deps, fake_hlr: FakeHlr) -> None:
    assert isinstance(deps.smdp, InProcessSmdp)
    flaky = deps.smdp = FlakySmdp(deps.smdp, before=-1)  # type: ignore[assignment]
    wid = start_activation(deps.engine, {"subscriber_ref": "e2", "kind": "esim"}, actor="t")
    _work(deps)
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.FAILED and "SmdpUnavailable" in (v.error or "")
    assert flaky.executed["download_order"] == 0
    assert fake_hlr.calls["created"] == 1 and fake_hlr.subscribers == {}
    invariants.check(deps.engine, fake_hlr.subscribers)


def test_smdp_failing_after_download_cancels_the_order(deps: Deps, fake_hlr: FakeHlr) -> None:
    """DownloadOrder went through, then every ConfirmOrder times out: CancelOrder puts the
    profile back to available, the HLR entry goes, the SIM returns to stock."""
    assert isinstance(deps.smdp, InProcessSmdp)
    real = deps.smdp

    class ConfirmFails(FlakySmdp):
        def confirm_order(self, **kw: Any) -> Any:
            raise SmdpUnavailable("ConfirmOrder: timed out", maybe_executed=False)

    flaky = deps.smdp = ConfirmFails(real)  # type: ignore[assignment]
    wid = start_activation(deps.engine, {"subscriber_ref": "e3", "kind": "esim"}, actor="t")
    _work(deps)
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.FAILED
    assert flaky.executed["download_order"] == 1 and flaky.executed["cancel_order"] == 1
    with read_session(deps.engine) as s:
        sim = s.get(Sim, v.data["iccid"])
    assert sim is not None and (sim.state, sim.profile_state) == ("in_stock", "available")
    invariants.check(deps.engine, fake_hlr.subscribers)
