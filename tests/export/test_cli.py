"""`simsmith export` through Typer's runner: osmo-hlr with the GSUP check, a file, errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from hsm_sim.hsm import KekPurpose
from hsm_sim.soft import SoftHsm
from simcore.export.osmo_ctrl import CtrlClient
from tests.vendor_import.helpers import TRANSPORT_KEY, cards, out_text, write
from tools.cli import app

runner = CliRunner()


def test_import_then_export(engine: Engine, tmp_path: Path, osmohlr: tuple[str, int, int]
                            ) -> None:
    host, ctrl, gsup = osmohlr
    home = tmp_path / "home"
    warnings.simplefilter("ignore")
    hsm = SoftHsm.dev(home / "hsm")
    hsm.kek_add("vendor1", KekPurpose.TRANSPORT, [TRANSPORT_KEY])
    hsm.kek_add("lab-hlr", KekPurpose.EXPORT, insecure_clear=True)
    env = {"SIMSMITH_HOME": str(home),
           "SIMSMITH_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    cs = cards(3, offset=700)
    with CtrlClient(host, ctrl) as c:
        c.pipeline([("SET", "subscriber.delete", x.imsi) for x in cs])
    p = write(tmp_path / "b.out", out_text(cs, var_in=False))
    assert runner.invoke(app, ["inventory", "import", str(p)], env=env).exit_code == 0
    r = runner.invoke(app, ["export", "osmo-hlr", "--target", "lab-hlr", "--host", host,
                            "--port", str(ctrl), "--gsup-port", str(gsup), "--check", "3",
                            "--json"], env=env)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["count"], out["created"]) == (3, 3)
    assert out["keys"]["insecure_clear"] is True
    assert "checked 3 subscribers" in r.stderr
    for x in cs:
        assert x.ki.hex() not in r.output and x.opc.hex() not in r.output
    r = runner.invoke(app, ["export", "file", "--format", "csv", "--target", "lab-hlr",
                            "-o", str(tmp_path / "k.csv")], env=env)
    assert r.exit_code == 0, r.output
    assert cs[0].ki.hex() in (tmp_path / "k.csv").read_text()
    r = runner.invoke(app, ["export", "file", "--format", "nope", "--target", "lab-hlr",
                            "-o", str(tmp_path / "x")], env=env)
    assert r.exit_code == 1 and "unknown export format" in r.stderr
