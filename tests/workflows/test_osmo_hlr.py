"""Every workflow against a real osmo-hlr over CTRL (the tested HLR adapter): activation,
suspend, resume, swap and termination, read back from osmo-hlr itself."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import Engine

from hsm_sim.soft import SoftHsm
from simcore.export.osmo_ctrl import CtrlClient
from simcore.ports.osmo_hlr import OsmoHlr
from simcore.smdp.in_process import InProcessSmdp
from simcore.workflows import engine as wf
from simcore.workflows.service import (
    get_workflow,
    start_activation,
    start_resume,
    start_suspend,
    start_swap,
    start_termination,
)
from simcore.workflows.steps import Deps
from tests.helpers.services import services_required
from tests.workflows.conftest import FAST

pytestmark = pytest.mark.slow  # subprocesses, osmo-hlr, an HSM opened per command


@pytest.fixture
def hlr_address() -> tuple[str, int]:
    host, port = (os.environ.get("SIMSMITH_TEST_OSMOHLR_HOST"),
                  os.environ.get("SIMSMITH_TEST_OSMOHLR_CTRL_PORT"))
    if not host or not port:
        msg = "osmo-hlr not configured: run scripts/services/osmohlr.sh start"
        if services_required():
            pytest.fail(msg)
        pytest.skip(msg)
    return host, int(port)


def _info(host: str, port: int, imsi: str) -> dict[str, str] | None:
    with CtrlClient(host, port) as c:
        r = c.pipeline([("GET", f"subscriber.by-imsi-{imsi}.info", None)])[0]
    if not r.ok:
        return None
    return dict(line.split("\t", 1) for line in r.value.strip().splitlines())


def _done(deps: Deps, wid: str) -> dict:  # type: ignore[type-arg]
    w = wf.Worker(deps.engine, deps, policy=FAST)
    for _ in range(20):
        w.run_once()
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.SUCCEEDED, (v.error, [(s.name, s.last_error) for s in v.steps])
    return v.data


def test_every_workflow_against_osmo_hlr(stocked: Engine, hsm: SoftHsm,
                                         hlr_address: tuple[str, int]) -> None:
    host, port = hlr_address
    hlr = OsmoHlr(hsm, "hlr-test", host, port)
    from tests.simcore.helpers import IMSI_FIRST
    imsis = [str(int(IMSI_FIRST) + i).zfill(15) for i in range(8)]
    for i in imsis:
        hlr.remove(i)
    deps = Deps(stocked, hlr, InProcessSmdp(stocked, "smdp.simsmith.test"), hsm)
    try:
        data = _done(deps, start_activation(stocked, {"subscriber_ref": "r1"}, actor="t"))
        info = _info(host, port, data["imsi"])
        assert info is not None and info["msisdn"] == data["msisdn"]
        assert (info["nam_cs"], info["nam_ps"]) == ("1", "1")

        _done(deps, start_suspend(stocked, data["iccid"], actor="t", reason="unpaid"))
        info = _info(host, port, data["imsi"])
        assert info is not None and (info["nam_cs"], info["nam_ps"]) == ("0", "0")
        _done(deps, start_resume(stocked, data["iccid"], actor="t"))
        info = _info(host, port, data["imsi"])
        assert info is not None and (info["nam_cs"], info["nam_ps"]) == ("1", "1")

        # A suspended SIM's swap: the new subscriber is provisioned barred.
        _done(deps, start_suspend(stocked, data["iccid"], actor="t", reason="unpaid"))
        swapped = _done(deps, start_swap(stocked, data["iccid"], actor="t"))
        assert _info(host, port, data["imsi"]) is None
        new = _info(host, port, swapped["new_imsi"])
        assert new is not None and new["msisdn"] == data["msisdn"]
        assert (new["nam_cs"], new["nam_ps"]) == ("0", "0")

        _done(deps, start_termination(stocked, swapped["new_iccid"], actor="t", reason="gone"))
        assert _info(host, port, swapped["new_imsi"]) is None
        assert get_workflow(stocked, start_termination(
            stocked, swapped["new_iccid"], actor="t", reason="again")).status == wf.PENDING
    finally:
        for i in imsis:
            hlr.remove(i)
        hlr.close()


def test_cli_activates_and_suspends_against_osmo_hlr(
        cli_env: Engine, hsm: SoftHsm, hlr_address: tuple[str, int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from tests.helpers.cli import ok

    host, port = hlr_address
    monkeypatch.setenv("SIMSMITH_HLR_HOST", host)
    monkeypatch.setenv("SIMSMITH_HLR_CTRL_PORT", str(port))
    monkeypatch.setenv("SIMSMITH_HLR_TARGET", "hlr-test")
    hlr = OsmoHlr(hsm, "hlr-test", host, port)
    from tests.simcore.helpers import IMSI_FIRST
    imsis = [str(int(IMSI_FIRST) + i).zfill(15) for i in range(8)]
    try:
        for i in imsis:
            hlr.remove(i)
        v = json.loads(ok("activate", "cli-1", "--wait", "60", "--json"))
        assert v["status"] == "succeeded", v
        info = _info(host, port, v["data"]["imsi"])
        assert info is not None and info["msisdn"] == v["data"]["msisdn"]
        s = json.loads(ok("workflows", "suspend", v["data"]["iccid"], "--wait", "60", "--json"))
        assert s["status"] == "succeeded"
        info = _info(host, port, v["data"]["imsi"])
        assert info is not None and info["nam_cs"] == "0"
    finally:
        for i in imsis:
            hlr.remove(i)
        hlr.close()
