"""`simsmith activate`, `simsmith workflows list/show/suspend/swap`, `simsmith worker --once`
and `simsmith hlr show` through Typer's runner. Without an osmo-hlr the workflows provision the
embedded HLR (simsmith's own subscriber register), so a fresh workspace activates end to end;
`simsmith hlr show IMSI|MSISDN` reads it back (keys only as reference fingerprints)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine

from simcore.inventory import get_sim
from tests.helpers.cli import ok, run

pytestmark = pytest.mark.slow  # subprocesses, osmo-hlr, an HSM opened per command


def test_activate_suspend_swap_with_the_embedded_hlr(cli_env: Engine) -> None:
    v = json.loads(ok("activate", "cust-cli", "--wait", "30", "--json"))
    assert v["status"] == "succeeded", v
    d = v["data"]
    assert get_sim(cli_env, d["iccid"]).state == "active"
    entry = json.loads(ok("hlr", "show", d["msisdn"], "--json"))
    assert (entry["imsi"], entry["iccid"], entry["access"]) == (d["imsi"], d["iccid"], "allowed")
    assert json.loads(ok("hlr", "show", d["imsi"], "--json")) == entry
    shown = ok("hlr", "show", d["imsi"])
    assert "HSM reference sha256:" in shown and "allowed" in shown
    listed = json.loads(ok("workflows", "list", "--json"))
    assert [w["id"] for w in listed] == [v["id"]]
    assert "hlr" in ok("workflows", "show", v["id"])

    s = json.loads(ok("workflows", "suspend", d["iccid"], "--reason", "unpaid", "--wait", "30",
                      "--json"))
    assert s["status"] == "succeeded"
    assert json.loads(ok("hlr", "show", d["imsi"], "--json"))["access"] == "barred"
    # A suspended SIM's swap: the new SIM provisioned barred; --resume resumes with it.
    sw = json.loads(ok("workflows", "swap", d["iccid"], "--wait", "30", "--json"))
    assert sw["status"] == "succeeded" and sw["data"]["new_state"] == "suspended"
    new = json.loads(ok("hlr", "show", d["msisdn"], "--json"))
    assert (new["imsi"], new["access"]) == (sw["data"]["new_imsi"], "barred")
    assert run("hlr", "show", d["imsi"]).exit_code == 1  # type: ignore[attr-defined]
    again = json.loads(ok("workflows", "swap", sw["data"]["new_iccid"], "--resume", "--wait",
                          "30", "--json"))
    assert again["input"]["resume"] is True and again["data"]["resumed"] is True
    assert get_sim(cli_env, again["data"]["new_iccid"]).state == "active"
    assert json.loads(ok("hlr", "show", d["msisdn"], "--json"))["access"] == "allowed"


def test_start_then_worker_once(cli_env: Engine) -> None:
    v = json.loads(ok("activate", "cust-2", "--json"))
    assert v["status"] == "pending"
    ok("worker", "--once")
    after = json.loads(ok("workflows", "show", v["id"], "--json"))
    assert after["status"] == "succeeded"  # carried out by the worker, embedded HLR
    assert run("workflows", "show", "nope").exit_code == 1  # type: ignore[attr-defined]
    assert run("hlr", "show", "not-a-number").exit_code == 1  # type: ignore[attr-defined]


def test_cancel_a_run(cli_env: Engine) -> None:
    v = json.loads(ok("activate", "cust-cancel", "--json"))
    c = json.loads(ok("workflows", "cancel", v["id"], "--reason", "wrong plan", "--json"))
    assert c["status"] == "pending" and c["cancel_reason"] == "wrong plan"
    assert c["cancel_requested_by"]
    ok("worker", "--once")
    after = json.loads(ok("workflows", "show", v["id"], "--json"))
    assert after["status"] == "cancelled" and after["error"].startswith("cancelled by ")
    assert "wrong plan" in ok("workflows", "show", v["id"])
    assert json.loads(ok("workflows", "cancel", v["id"], "--reason", "again", "--json")
                      )["cancel_reason"] == "wrong plan"  # asked once
    done = json.loads(ok("activate", "cust-f", "--wait", "30", "--json"))
    r = run("workflows", "cancel", done["id"], "--reason", "late")
    assert r.exit_code == 1 and "finished (succeeded)" in r.output  # type: ignore[attr-defined]
