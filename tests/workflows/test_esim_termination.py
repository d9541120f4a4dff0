"""Termination (and swap) of an eSIM profile that is installed on a device (issue 18): SGP.22 v2
gives the SM-DP+ no way to delete it there (ES2+ CancelOrder ends an order before the download),
so the workflow does what can be done and says so — HLR entry removed, the profile retired at
the SM-DP+ (unavailable: never downloaded again), its order closed, the ICCID quarantined, and
a notice that the profile remains on the device. When the user deletes it and the device's LPA
sends the delete notification (ES9+ HandleNotification), the profile becomes deleted, recorded.

The whole path in process: an eSIM activated by the workflow, downloaded by simsmith's LPA into
the virtual eUICC from simsmith's SM-DP+ (its ES9+ listener on this store), enabled, terminated
through the API, deleted on the device. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlmodel import col

from api.main import create_app
from api.settings import ApiSettings
from esim.lpa.download import Es9Refused, download, process_notifications
from hsm_sim.soft import SoftHsm
from simcore import apikeys
from simcore.db import read_session
from simcore.inventory import get_sim
from simcore.models import AuditEvent
from simcore.models_api import EsimOrder
from simcore.smdp.in_process import InProcessSmdp
from simcore.workflows import engine as wf
from simcore.workflows.service import get_workflow, start_activation, start_swap
from simcore.workflows.steps import Deps
from tests.helpers.fake_hlr import FakeHlr
from tests.smdp.es9_http import Smdp, lpa, running_smdp
from tests.workflows.conftest import FAST

pytestmark = [pytest.mark.storage, pytest.mark.slow]


@pytest.fixture
def smdp(engine: Engine, hsm: SoftHsm, tmp_path: Path) -> Iterator[Smdp]:
    with running_smdp(engine, hsm, tmp_path / "home", count=4) as s:
        yield s


@pytest.fixture
def esim_deps(smdp: Smdp, hsm: SoftHsm) -> Deps:
    return Deps(smdp.engine, FakeHlr(), InProcessSmdp(smdp.engine, smdp.address), hsm)


def _done(deps: Deps, wid: str) -> dict[str, Any]:
    w = wf.Worker(deps.engine, deps, policy=FAST)
    for _ in range(30):
        w.run_once()
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.SUCCEEDED, (v.error, [(s.name, s.last_error) for s in v.steps])
    return v.data


def _installed(deps: Deps, smdp: Smdp, tmp_path: Path, ref: str = "c1",
               ) -> tuple[dict[str, Any], str, Any]:
    """An eSIM activated by the workflow and installed, enabled, on a virtual eUICC."""
    data = _done(deps, start_activation(deps.engine, {"subscriber_ref": ref, "kind": "esim",
                                                      "msisdn": None}, actor="t"))
    code = f"LPA:1${data['smdp_address']}${data['matching_id']}"
    card = smdp.euicc(tmp_path, name=ref)
    with lpa(card) as functions, smdp.es9() as es9:
        result = download(functions, es9, code)
        assert result.success and result.iccid == data["iccid"]
        functions.enable(data["iccid"])
        process_notifications(functions, lambda address: smdp.es9())
    assert smdp.state(data["iccid"]) == "enabled"
    return data, code, card


def _closed_orders(engine: Engine, iccid: str) -> list[str]:
    with read_session(engine) as s:
        return list(s.execute(select(col(EsimOrder.status))
                              .where(col(EsimOrder.iccid) == iccid)).scalars())


def test_terminating_an_installed_profile_through_the_api(
        smdp: Smdp, esim_deps: Deps, tmp_path: Path) -> None:
    data, code, card = _installed(esim_deps, smdp, tmp_path)
    iccid, imsi = data["iccid"], data["imsi"]
    assert imsi in esim_deps.hlr.subscribers  # type: ignore[attr-defined]
    key = apikeys.create(smdp.engine, "k", ["sims:read", "sims:write"], actor="t")[1]
    auth = {"Authorization": f"Bearer {key}"}
    settings = ApiSettings(home=tmp_path, webhooks_enabled=False,  # type: ignore[call-arg]
                           api_key_cache_seconds=0)
    with TestClient(create_app(settings, engine=smdp.engine)) as c:
        r = c.post("/v1/terminations", json={"iccid": iccid, "reason": "contract ended"},
                   headers=auth)
        assert r.status_code == 202, r.text
        _done(esim_deps, r.json()["id"])
        got = c.get(r.headers["location"], headers=auth).json()
    assert got["status"] == "succeeded"
    assert "remains on the device" in got["notice"] and iccid in got["notice"]
    assert got["data"]["smdp_cancel_remains_on_device"] is True
    assert got["data"]["smdp_cancel_profile_state"] == "enabled"
    # What could be done is done: no HLR entry, retired at the SM-DP+, order closed, quarantine.
    assert imsi not in esim_deps.hlr.subscribers  # type: ignore[attr-defined]
    sim = get_sim(smdp.engine, iccid)
    assert (sim.state, sim.profile_state) == ("quarantine", "unavailable")
    assert _closed_orders(smdp.engine, iccid) == ["cancelled"]
    # The SM-DP+ never serves it again: the same activation code is refused.
    other = smdp.euicc(tmp_path, name="other")
    with lpa(other) as functions, smdp.es9() as es9, pytest.raises(Es9Refused):
        download(functions, es9, code)
    # The user deletes it on the device; the LPA's delete notification is recorded.
    with lpa(card) as functions:
        functions.disable(data["iccid"])
        functions.delete(data["iccid"])
        sent = process_notifications(functions, lambda address: smdp.es9())
    assert sent and all(ok for _, ok in sent)
    assert smdp.state(iccid) == "deleted"
    assert smdp.actions(iccid)[-1] == "esim_profile.deleted"
    assert ("esim_profile.state_changed", "deleted") in smdp.events(iccid)
    with read_session(smdp.engine) as s:
        retired = s.execute(select(AuditEvent).where(
            col(AuditEvent.action) == "esim_profile.unavailable",
            col(AuditEvent.subject_id) == iccid)).scalars().one()
    assert '"remains_on_device":true' in retired.details.replace(" ", "")


def test_a_swap_retires_the_old_installed_profile_and_says_so(
        smdp: Smdp, esim_deps: Deps, tmp_path: Path) -> None:
    data, _, _ = _installed(esim_deps, smdp, tmp_path, ref="c2")
    wid = start_swap(smdp.engine, data["iccid"], actor="t")
    swapped = _done(esim_deps, wid)
    view = get_workflow(smdp.engine, wid)
    assert view.notice and data["iccid"] in view.notice and "remains on" in view.notice
    assert swapped["smdp_cancel_old_remains_on_device"] is True
    old = get_sim(smdp.engine, data["iccid"])
    assert (old.state, old.profile_state) == ("terminated", "unavailable")
    new = get_sim(smdp.engine, swapped["new_iccid"])
    assert (new.state, new.profile_state) == ("active", "released")
    assert _closed_orders(smdp.engine, data["iccid"]) == ["cancelled"]


def test_a_profile_never_downloaded_is_cancelled_and_says_nothing_of_a_device(
        smdp: Smdp, esim_deps: Deps) -> None:
    data = _done(esim_deps, start_activation(smdp.engine, {"subscriber_ref": "c3",
                                                           "kind": "esim", "msisdn": None},
                                             actor="t"))
    from simcore.workflows.service import start_termination

    wid = start_termination(smdp.engine, data["iccid"], actor="t", reason="never used")
    out = _done(esim_deps, wid)
    assert out["smdp_cancel_cancelled"] is True and out["smdp_cancel_remains_on_device"] is False
    assert get_workflow(smdp.engine, wid).notice is None
    assert get_sim(smdp.engine, data["iccid"]).profile_state == "unavailable"
    assert _closed_orders(smdp.engine, data["iccid"]) == ["cancelled"]


def test_an_external_smdp_is_named_in_the_notice(deps: Deps) -> None:
    """With an external SM-DP+ (ES2+ client, not simsmith's store), simsmith retires its own
    record but cannot retire a downloaded profile there: the notice says so."""
    from sqlalchemy import update

    from simcore.db import transaction
    from simcore.models import Sim
    from simcore.workflows.service import start_termination

    data = _done(deps, start_activation(deps.engine, {"subscriber_ref": "x", "kind": "esim"},
                                        actor="t"))
    with transaction(deps.engine) as s:  # as the SM-DP+'s progress notifications left it
        s.execute(update(Sim).where(col(Sim.iccid) == data["iccid"])
                  .values(profile_state="enabled", eid="89049032000000000000000000000001"))

    class External:  # an Es2PlusSmdp towards someone else's SM-DP+ (shared_store False)
        smdp_address = "smdp.example.com"
        shared_store = False

        def cancel_order(self, **kw: object) -> None:
            raise AssertionError("nothing to cancel past download")

    deps.smdp = External()  # type: ignore[assignment]
    wid = start_termination(deps.engine, data["iccid"], actor="t", reason="ended")
    _done(deps, wid)
    notice = get_workflow(deps.engine, wid).notice or ""
    assert "89049032000000000000000000000001" in notice and "external SM-DP+" in notice
    assert get_sim(deps.engine, data["iccid"]).profile_state == "unavailable"
