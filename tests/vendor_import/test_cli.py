"""`simsmith inventory import` through Typer's runner: JSON summary, dry run, one-line errors,
nothing secret on stdout or stderr."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from hsm_sim.hsm import KekPurpose
from hsm_sim.soft import SoftHsm
from simcore.log import configure
from tools.cli import app

from .helpers import TRANSPORT_KEY, cards, out_text, write

runner = CliRunner()


@pytest.fixture
def env(engine: Engine, tmp_path: Path) -> Iterator[dict[str, str]]:
    home = tmp_path / "home"
    warnings.simplefilter("ignore")
    SoftHsm.dev(home / "hsm").kek_add("vendor1", KekPurpose.TRANSPORT, [TRANSPORT_KEY])
    yield {"SIMSMITH_HOME": str(home), "SIMSMITH_LOG_LEVEL": "DEBUG",
            "SIMSMITH_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    # The CLI pointed the (global) log configuration at the runner's stderr: point it back.
    configure("WARNING")


def test_import_json_then_already_imported(env: dict[str, str], tmp_path: Path) -> None:
    cs = cards(5)
    p = write(tmp_path / "b.out", out_text(cs))
    r = runner.invoke(app, ["inventory", "import", str(p), "--json"], env=env)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert {k: out[k] for k in ("status", "rows", "imported", "rejected", "batch")} == {
        "status": "imported", "rows": 5, "imported": 5, "rejected": 0, "batch": "B-TEST-1"}
    assert isinstance(out["batch_id"], int) and out["seconds"] >= 0
    logs = r.stderr
    assert "inventory.imported" in logs  # the debug log was captured, and holds no secret
    r = runner.invoke(app, ["inventory", "import", str(p)], env=env)
    assert r.exit_code == 0 and "already imported" in r.stdout
    for c in cs:
        for secret in (c.values["EKI"], c.values["EOPC"], c.ki.hex(), c.opc.hex(),
                       c.values["PUK1"], c.values["ADM1"]):
            assert secret.lower() not in (r.output + logs).lower()


@pytest.mark.slow
def test_dry_run_and_invalid_file(env: dict[str, str], tmp_path: Path) -> None:
    def bad(t: list[list[str]]) -> None:
        t[1][0] = t[1][0][:-1] + str((int(t[1][0][-1]) + 3) % 10)
        t[2][3] = t[2][3][:20]
    cs = cards(4)
    p = write(tmp_path / "b.out", out_text(cs, mutate=bad))
    r = runner.invoke(app, ["inventory", "import", str(p), "--dry-run", "--json"], env=env)
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert (out["status"], out["rejected"], [i["rule"] for i in out["issues"]]) == (
        "invalid", 2, ["iccid.luhn", "hex.length"])
    r = runner.invoke(app, ["inventory", "import", str(p)], env=env)
    assert r.exit_code == 1
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith("warning: ")]
    assert len(lines) == 2  # one line per issue (after the dev HSM's one warning line)
    assert "error: b.out:21:1: ICCID" in r.stderr and "nothing imported" in r.stderr
    assert cs[2].values["EOPC"][:20] not in r.output
    r = runner.invoke(app, ["inventory", "import", str(p), "--transport-key", "nope"], env=env)
    assert r.exit_code == 1 and "not in the HSM" in r.stderr
