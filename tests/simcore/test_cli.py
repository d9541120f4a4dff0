"""The CLI through Typer's runner: every command's --help, happy paths with --json, and one
clear line for bad input at every command, with a non-zero exit."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import Engine
from typer.testing import CliRunner

from tools.cli import app

from .helpers import ICCID_FIRST, ICCID_LAST, IMSI_FIRST, IMSI_LAST

runner = CliRunner()
Invoke = Callable[..., Result]


def _commands(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    import typer.main

    click_group = typer.main.get_command(app) if not prefix else group
    out = []
    for name, cmd in click_group.commands.items():  # type: ignore[attr-defined]
        path = (*prefix, name)
        out.append(path)
        if hasattr(cmd, "commands"):
            out.extend(_commands(cmd, path))
    return out


@pytest.mark.parametrize("path", _commands(None), ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    r = runner.invoke(app, [*path, "--help"])
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output


@pytest.fixture
def cli(engine: Engine, tmp_path: Path) -> Invoke:
    env = {"SIMSMITH_HOME": str(tmp_path / "home"),
           "SIMSMITH_DATABASE_URL": engine.url.render_as_string(hide_password=False)}

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    return invoke


def _json(r: Result) -> object:
    assert r.exit_code == 0, r.output + r.stderr
    return json.loads(r.stdout)


@pytest.mark.slow
@pytest.mark.storage
def test_a_day_in_the_life(cli: Invoke) -> None:
    _json(cli("range", "add", "iccid", ICCID_FIRST, ICCID_LAST, "--name", "i", "--json"))
    _json(cli("range", "add", "imsi", IMSI_FIRST, IMSI_LAST, "--name", "m", "--json"))
    _json(cli("msisdn", "add-range", "+447700900000", "+447700900009", "--name", "n", "--json"))
    gen = _json(cli("inventory", "generate", "-n", "20", "--batch", "b1", "--json"))
    assert gen == {"batch": "b1", "count": 20, "first_iccid": ICCID_FIRST,
                   "last_iccid": gen["last_iccid"]}  # type: ignore[index]
    sim = _json(cli("inventory", "allocate", "cust-1", "--json"))
    iccid = sim["iccid"]  # type: ignore[index]
    assert sim["state"] == "allocated"  # type: ignore[index]
    act = _json(cli("inventory", "activate", iccid, "--msisdn", "auto", "--json"))
    assert act["msisdn"] == "447700900000"  # type: ignore[index]
    assert _json(cli("inventory", "suspend", iccid, "--reason", "fraud", "--json"))[
        "state"] == "suspended"  # type: ignore[index]
    assert _json(cli("inventory", "resume", iccid, "--json"))["state"] == "active"  # type: ignore[index]
    swapped = _json(cli("inventory", "swap", iccid, "--json"))
    new = swapped["new"]  # type: ignore[index]
    assert new["msisdn"] == "447700900000" and swapped["old"]["reason"] == "swapped"  # type: ignore[index]
    assert _json(cli("inventory", "find", "--msisdn", "+447700900000", "--json"))[
        "iccid"] == new["iccid"]  # type: ignore[index]
    term = _json(cli("inventory", "terminate", new["iccid"], "--reason", "left", "--json"))
    assert term["state"] == "terminated"  # type: ignore[index]
    assert _json(cli("msisdn", "show", "447700900000", "--json"))["state"] == "quarantine"  # type: ignore[index]
    listed = _json(cli("inventory", "list", "--state", "terminated", "--json"))
    assert {s["iccid"] for s in listed} == {iccid, new["iccid"]}  # type: ignore[index,union-attr]
    summary = _json(cli("inventory", "summary", "--json"))
    assert summary["total"] == 20  # type: ignore[index]
    ok = _json(cli("audit", "verify", "--json"))
    assert ok["ok"] is True and ok["events"] > 10  # type: ignore[index]
    assert ok["from_checkpoint"] is None and ok["walked"] == ok["events"]  # type: ignore[index]
    cp = _json(cli("audit", "checkpoint", "--json"))
    assert cp["events"] == ok["events"] and cp["digest"] == ok["digest"]  # type: ignore[index]
    again = _json(cli("audit", "verify", "--json"))
    assert again["from_checkpoint"] == cp["id"] and again["walked"] == 0  # type: ignore[index]
    full = _json(cli("audit", "verify", "--full", "--json"))
    assert full["from_checkpoint"] is None and full["walked"] == ok["events"]  # type: ignore[index]
    events = _json(cli("audit", "list", "--subject", iccid, "--json"))
    assert [e["action"] for e in events][:2] == ["sim.allocated", "sim.active"]  # type: ignore[index,union-attr]
    # No key material or key references ever leave through the CLI.
    assert "ki_ref" not in json.dumps(listed)


@pytest.mark.storage
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("inventory", "show", "8988280000000000001"), "check digit 1 where"),
        (("inventory", "show", ICCID_FIRST), f"no SIM with ICCID {ICCID_FIRST}"),
        (("inventory", "list", "--state", "frozen"), "state 'frozen': unknown SIM state"),
        (("inventory", "generate", "-n", "5", "--batch", "x"), "no iccid range exists"),
        (("inventory", "allocate", "c1"), "no physical SIM in stock"),
        (("inventory", "activate", "89882800000000000x07"), "non-digit 'x' at position 18"),
        (("inventory", "terminate", ICCID_FIRST, "--reason", "x"), "no SIM with ICCID"),
        (("inventory", "swap", ICCID_FIRST), "no SIM with ICCID"),
        (("range", "add", "imsi", IMSI_LAST, IMSI_FIRST, "--name", "r"), "is after last"),
        (("range", "add", "iccid", "8988280000000000000", ICCID_LAST, "--name", "r"),
         "check digit"),
        (("range", "add", "colour", "1", "2", "--name", "r"), "unknown range kind 'colour'"),
        (("msisdn", "add-range", "07700900000", "07700900009", "--name", "n"),
         "starts with 0"),
        (("msisdn", "show", "+447700900000"), "not in the pool"),
        (("msisdn", "assign", ICCID_FIRST), "no SIM with ICCID"),
        (("msisdn", "release", "+44 7700 900000"), "not in the pool"),
        (("msisdn", "recycle", "12"), "msisdn '12': 2 digits"),
        (("msisdn", "list", "--state", "lost"), "unknown MSISDN state"),
        (("inventory", "suspend", ICCID_FIRST), "no SIM with ICCID"),
        (("inventory", "resume", "1234"), "iccid '1234': 4 digits"),
        (("inventory", "release", ICCID_FIRST), "no SIM with ICCID"),
        (("inventory", "quarantine", ICCID_FIRST), "no SIM with ICCID"),
        (("inventory", "recycle", ICCID_FIRST), "no SIM with ICCID"),
        (("inventory", "find", "--imsi", "00101"), "imsi '00101': 5 digits"),
        (("inventory", "find"), "nothing to look up"),
        (("inventory", "generate", "-n", "0", "--batch", "x"), "count '0': too small"),
        (("inventory", "allocate", "c1", "--batch", "nope"), "no batch named 'nope'"),
    ],
)
def test_bad_input_gives_one_clear_line(cli: Invoke, args: tuple[str, ...], message: str) -> None:
    r = cli(*args)
    assert r.exit_code == 1, r.output
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in r.output


def test_unmigrated_database_is_refused(tmp_path: Path) -> None:
    env = {"SIMSMITH_HOME": str(tmp_path), "SIMSMITH_DATABASE_URL":
           f"sqlite:///{tmp_path / 'raw.db'}"}
    for args in (["inventory", "list"], ["audit", "verify"], ["range", "list"],
                 ["msisdn", "list"]):
        r = runner.invoke(app, args, env=env)
        assert r.exit_code == 1
        assert "not initialised" in r.stderr and "simsmith db upgrade" in r.stderr
    r = runner.invoke(app, ["db", "upgrade"], env=env)
    assert r.exit_code == 0, r.output
    assert runner.invoke(app, ["inventory", "list"], env=env).exit_code == 0


@pytest.mark.parametrize(
    ("value", "kind", "code"),
    [("89000123456789012341", "iccid", 0), ("89000123456789012342", "iccid", 1),
     ("001010123456789", "imsi", 0), ("+44 7700 900123", "msisdn", 0),
     ("89049032123451234512345678901235", "eid", 0),
     ("89049032123451234512345678901234", "eid", 1)],
)
def test_id_check(value: str, kind: str, code: int) -> None:
    r = runner.invoke(app, ["id", "check", value, "--json"])
    assert r.exit_code == code
    data = json.loads(r.stdout)
    assert data["kind"] == kind and data["valid"] is (code == 0)


def test_id_check_human_error_and_bad_kind() -> None:
    r = runner.invoke(app, ["id", "check", "8900012345678901234x"])
    assert r.exit_code == 1 and "non-digit 'x' at position 20" in r.stderr
    r = runner.invoke(app, ["id", "check", "123", "--kind", "imei"])
    assert r.exit_code == 2 and "--kind 'imei'" in r.stderr


@pytest.mark.slow
def test_init_and_demo(tmp_path: Path) -> None:
    # (no osmo-hlr named: the demo activates into the embedded HLR)
    env: dict[str, str | None] = {"SIMSMITH_HOME": str(tmp_path / "ws"),
                                  "SIMSMITH_HLR_HOST": None, "SIMSMITH_HLR": None}
    r = runner.invoke(app, ["init", "--json"], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["database"].endswith("ws/simsmith.db")
    r = runner.invoke(app, ["demo", "--json"], env=env)
    data = json.loads(r.stdout)
    assert data["total"] == 1200
    assert {"kind": "physical", "state": "active", "count": 3} in data["by_state"]
    assert {"kind": "esim", "state": "in_stock", "count": 200} in data["by_state"]
    again = json.loads(runner.invoke(app, ["demo", "--json"], env=env).stdout)
    assert again["total"] == 1200  # a second run adds nothing
    # The demo customers were activated end to end as workflows, into the embedded HLR (no
    # osmo-hlr here), and `make run` prints the first activation's result.
    entries = json.loads(runner.invoke(app, ["hlr", "list", "--json"], env=env).stdout)
    assert len(entries) == 3 and {e["access"] for e in entries} == {"allowed"}
    shown = runner.invoke(app, ["demo"], env=env).stdout
    assert "activation of demo-customer-1" in shown and "succeeded" in shown
    assert "HLR (embedded)" in shown
    assert (tmp_path / "ws" / "demo-api-key").read_text().startswith("ssk_")
