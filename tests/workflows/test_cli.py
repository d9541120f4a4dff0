"""`simsmith activate`, `simsmith workflows list/show`, `simsmith worker --once` through Typer's
runner. Without an HLR configured an activation fails for good and is compensated: the SIM is
back in stock and the run says why."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine

from simcore.inventory import get_sim
from tests.helpers.cli import ok, run

pytestmark = pytest.mark.slow  # subprocesses, osmo-hlr, an HSM opened per command


def test_activate_without_an_hlr_is_compensated(cli_env: Engine) -> None:
    r = run("activate", "cust-cli", "--wait", "30", "--json")
    assert r.exit_code == 1, r.output  # type: ignore[attr-defined]
    v = json.loads(r.stdout)  # type: ignore[attr-defined]
    assert v["status"] == "failed" and "no HLR configured" in v["error"]
    assert get_sim(cli_env, v["data"]["iccid"]).state == "in_stock"
    listed = json.loads(ok("workflows", "list", "--json"))
    assert [w["id"] for w in listed] == [v["id"]]
    shown = ok("workflows", "show", v["id"])
    assert "hlr" in shown and "failed" in shown


def test_start_then_worker_once(cli_env: Engine) -> None:
    v = json.loads(ok("activate", "cust-2", "--json"))
    assert v["status"] == "pending"
    ok("worker", "--once")
    after = json.loads(ok("workflows", "show", v["id"], "--json"))
    assert after["status"] == "failed"  # no HLR here: compensated by the worker process
    assert run("workflows", "show", "nope").exit_code == 1  # type: ignore[attr-defined]
