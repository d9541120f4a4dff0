"""A swap moves the subscription's state with it (issue 18): the new SIM of a suspended SIM is
provisioned barred at the HLR — barred before it holds keys — and takes over suspended with the
suspension's reason, unless the request asks to resume with the swap (`resume`, audited). The
compensation leaves the old SIM suspended and barred, the new one back in stock and gone from
the HLR. On SQLite and PostgreSQL, from the service and the API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import col

from simcore.db import read_session
from simcore.export.keys import ExportedSim
from simcore.export.osmo_ctrl import Reply
from simcore.export.osmo_hlr import provision
from simcore.inventory import get_sim
from simcore.models import AuditEvent
from simcore.workflows import engine as wf
from simcore.workflows.service import (
    get_workflow,
    start_activation,
    start_suspend,
    start_swap,
)
from simcore.workflows.steps import Deps
from tests.helpers.fake_hlr import FakeHlr
from tests.workflows.conftest import FAST


def _done(deps: Deps, wid: str, status: str = wf.SUCCEEDED) -> dict[str, Any]:
    w = wf.Worker(deps.engine, deps, policy=FAST)
    for _ in range(30):
        w.run_once()
    v = get_workflow(deps.engine, wid)
    assert v.status == status, (v.error, [(s.name, s.last_error) for s in v.steps])
    return v.data


def _suspended(deps: Deps) -> dict[str, Any]:
    data = _done(deps, start_activation(deps.engine, {"subscriber_ref": "sus"}, actor="t"))
    _done(deps, start_suspend(deps.engine, data["iccid"], actor="t", reason="unpaid"))
    return data


class WatchingHlr(FakeHlr):
    """Records the access each subscriber had the moment it was provisioned."""

    at_provision: dict[str, bool]

    def __init__(self) -> None:
        super().__init__()
        self.at_provision = {}

    def provision(self, sub: Any) -> None:
        super().provision(sub)
        self.at_provision[sub.imsi] = self.subscribers[sub.imsi].allowed


@pytest.fixture
def watching(deps: Deps) -> WatchingHlr:
    deps.hlr = WatchingHlr()
    return deps.hlr


def test_swap_of_a_suspended_sim_stays_suspended_and_barred(deps: Deps,
                                                            watching: WatchingHlr) -> None:
    old = _suspended(deps)
    access_calls = watching.calls["set_access"]
    data = _done(deps, start_swap(deps.engine, old["iccid"], actor="t"))
    new = get_sim(deps.engine, data["new_iccid"])
    assert (new.state, new.reason, new.msisdn) == ("suspended", "unpaid", old["msisdn"])
    assert get_sim(deps.engine, old["iccid"]).state == "terminated"
    # Provisioned barred: no set_access afterwards, barred the moment it was created.
    assert watching.at_provision[new.imsi] is False
    assert watching.calls["set_access"] == access_calls
    entry = watching.subscribers[new.imsi]
    assert (entry.allowed, entry.msisdn) == (False, old["msisdn"])
    assert old["imsi"] not in watching.subscribers
    assert (data["new_state"], data["resumed"]) == ("suspended", False)


def test_swap_with_resume_gives_an_active_allowed_sim_and_says_so(
        deps: Deps, watching: WatchingHlr) -> None:
    old = _suspended(deps)
    wid = start_swap(deps.engine, old["iccid"], actor="care-7", resume=True)
    assert get_workflow(deps.engine, wid).input == {"iccid": old["iccid"], "resume": True}
    data = _done(deps, wid)
    new = get_sim(deps.engine, data["new_iccid"])
    assert (new.state, new.reason) == ("active", None)
    assert watching.at_provision[new.imsi] is True and watching.subscribers[new.imsi].allowed
    with read_session(deps.engine) as s:
        rows = s.execute(select(AuditEvent).where(
            col(AuditEvent.action).in_(("sim.swap", "sim.active")),
            col(AuditEvent.subject_id).in_((old["iccid"], new.iccid)))).scalars().all()
    swap = next(r for r in rows if r.action == "sim.swap")
    assert json.loads(swap.details)["resumed"] is True and swap.actor == "care-7"
    took_over = next(r for r in rows if r.action == "sim.active" and r.subject_id == new.iccid)
    assert json.loads(took_over.details)["resumed_with_swap"] is True


def test_resume_of_an_active_sim_changes_nothing(deps: Deps, watching: WatchingHlr) -> None:
    act = _done(deps, start_activation(deps.engine, {"subscriber_ref": "a"}, actor="t"))
    data = _done(deps, start_swap(deps.engine, act["iccid"], actor="t", resume=True))
    assert get_sim(deps.engine, data["new_iccid"]).state == "active"
    assert data["resumed"] is False


@pytest.mark.parametrize("resume", [False, True], ids=["carried", "resumed"])
def test_a_failed_swap_of_a_suspended_sim_is_compensated(deps: Deps, watching: WatchingHlr,
                                                         resume: bool) -> None:
    old = _suspended(deps)
    refuse_to = old["imsi"]

    def set_msisdn(imsi: str, msisdn: str | None) -> None:
        # The new SIM refuses the number: the swap fails for good after the new SIM is in
        # the HLR (moving it back to the old one works).
        if msisdn is not None and imsi != refuse_to:
            from simcore.ports.hlr import HlrRefused
            raise HlrRefused("MSISDN refused")
        FakeHlr.set_msisdn(watching, imsi, msisdn)

    watching.set_msisdn = set_msisdn  # type: ignore[method-assign]
    wid = start_swap(deps.engine, old["iccid"], actor="t", resume=resume)
    _done(deps, wid, status=wf.FAILED)
    assert watching.at_provision[get_workflow(deps.engine, wid).data["new_imsi"]] is resume
    sim = get_sim(deps.engine, old["iccid"])  # a failed swap resumes nothing
    assert (sim.state, sim.msisdn) == ("suspended", old["msisdn"])
    entry = watching.subscribers[old["imsi"]]
    assert (entry.allowed, entry.msisdn) == (False, old["msisdn"])  # still barred, its number
    assert set(watching.subscribers) == {old["imsi"]}  # the new SIM is gone from the HLR
    new = get_sim(deps.engine, get_workflow(deps.engine, wid).data["new_iccid"])
    assert (new.state, new.subscriber_ref) == ("in_stock", None)


def test_swap_resume_over_http(client: tuple[TestClient, dict[str, str]], deps: Deps,
                               watching: WatchingHlr) -> None:
    c, keys = client
    old = _suspended(deps)
    r = c.post("/v1/swaps", json={"iccid": old["iccid"], "resume": True},
               headers={"Authorization": keys["sims:write"]})
    assert r.status_code == 202, r.text
    assert r.json()["input"]["resume"] is True
    _done(deps, r.json()["id"])
    got = c.get(r.headers["location"], headers={"Authorization": keys["sims:read"]}).json()
    assert (got["data"]["new_state"], got["data"]["resumed"]) == ("active", True)
    assert watching.subscribers[got["data"]["new_imsi"]].allowed
    schema = c.get("/openapi.json").json()["components"]["schemas"]["SwapCreate"]
    assert schema["properties"]["resume"]["default"] is False


class RecordingCtrl:
    """A CTRL client that answers every command OK (the subscriber is new) and keeps the
    order of what it was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str | None]] = []

    def pipeline(self, cmds: list[tuple[str, str, str | None]]) -> list[Reply]:
        self.sent.extend(cmds)
        return [Reply(not c[1].endswith(".info-aud"), "") for c in cmds]


def test_osmo_hlr_bars_a_new_subscriber_before_its_keys() -> None:
    ctrl = RecordingCtrl()
    sim = ExportedSim("8988211000000000011", "001010000000011", "447700900001",
                      bytes(16), bytes(16))
    [result] = provision(ctrl, [sim], cs=False, ps=False)  # type: ignore[arg-type]
    assert result.status == "created"
    names = [c[1].rsplit(".", 1)[-1] for c in ctrl.sent if c[0] == "SET"]
    assert names[:4] == ["create", "cs-enabled", "ps-enabled", "aud3g"]
    assert [c[2] for c in ctrl.sent if c[1].endswith("-enabled")] == ["0", "0"]
    allowed = RecordingCtrl()
    provision(allowed, [sim])  # type: ignore[arg-type]
    assert not [c for c in allowed.sent if c[1].endswith("-enabled")]  # osmo-hlr's default
