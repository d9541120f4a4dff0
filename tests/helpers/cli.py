"""The `simsmith` CLI through Typer's runner, for tests of several packages: `cli_env` (a
fixture: the CLI on the test's store and dev HSM, with ranges), `ok`, `refused`, `run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from hsm_sim.soft import SoftHsm
from tools.cli import app

runner = CliRunner()
# the wiring tests' ranges and dev passphrase (tests/wiring/conftest.py uses the same)
ICCID_FIRST, ICCID_LAST = "8988211000000000011", "8988211000000099997"
IMSI_FIRST, IMSI_LAST = "001010000000001", "001010000009999"
PASSPHRASE = "wiring tests only"
# esim build/build-batch to the lab export target, in clear (`esim_sims` adds the target)
LAB = ("--target", "lab", "--clear")


@pytest.fixture
def cli_env(engine: Engine, hsm: SoftHsm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> SoftHsm:
    """The CLI pointed at this test's store and HSM ($SIMSMITH_HOME/hsm), with ranges."""
    monkeypatch.setenv("SIMSMITH_HOME", str(tmp_path))
    monkeypatch.setenv("SIMSMITH_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("SIMSMITH_HSM_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("SIMSMITH_HSM_BACKEND", "soft")
    for args in (["range", "add", "iccid", ICCID_FIRST, ICCID_LAST, "--name", "i1"],
                 ["range", "add", "imsi", IMSI_FIRST, IMSI_LAST, "--name", "m1",
                  "--mnc-length", "2"]):
        assert run(*args).exit_code == 0
    return hsm


def run(*args: str) -> object:
    return runner.invoke(app, list(args))


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(*args: str, code: int = 1) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    # one line for the error (the dev HSM's loud warning may come before it)
    lines = [ln for ln in result.stderr.splitlines() if not ln.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def esim_sims(count: int) -> list[dict[str, str]]:
    """The `lab` clear export target and `count` eSIMs with keys (batch e1), as listed."""
    ok("hsm", "kek", "add", "lab", "--purpose", "export", "--insecure-clear")
    ok("inventory", "generate", "-n", str(count), "--batch", "e1", "--kind", "esim",
       "--with-keys")
    return json.loads(ok("inventory", "list", "--batch", "e1", "--json"))  # type: ignore[no-any-return]
