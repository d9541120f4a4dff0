"""`simsmith suci` through Typer's runner: keys, conceal, audited de-conceal, export, one-line
errors; no command prints a private key."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import Engine
from typer.testing import CliRunner

from hsm_sim.eki import EkiScheme, encrypt_eki
from hsm_sim.hsm import KekPurpose
from hsm_sim.soft import SoftHsm
from tests.hsm.vectors import h
from tests.suci.test_service import C4
from tools.cli import app

runner = CliRunner()
Invoke = Callable[..., Result]
TK = b"\x42" * 16


@pytest.fixture
def cli(engine: Engine, tmp_path: Path) -> Invoke:
    home = tmp_path / "home"
    hsm = SoftHsm.init(home / "hsm", passphrase="dev-pass", scrypt_n=2**10)
    hsm.kek_add("vendor", KekPurpose.TRANSPORT, [TK])
    hsm.kek_add("core", KekPurpose.EXPORT, insecure_clear=True)
    env = {"SIMSMITH_HOME": str(home), "SIMSMITH_HSM_PASSPHRASE": "dev-pass",
           "SIMSMITH_HSM_BACKEND": "soft",
           "SIMSMITH_DATABASE_URL": engine.url.render_as_string(hide_password=False)}

    def invoke(*args: str) -> Result:
        return runner.invoke(app, ["suci", *args], env=env)

    return invoke


def _json(r: Result) -> object:
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.mark.parametrize("args", [[], ["key"], ["key", "generate"], ["key", "import"],
                                  ["key", "list"], ["key", "retire"], ["key", "calc-info"],
                                  ["conceal"], ["deconceal"], ["export"]])
def test_help(args: list[str]) -> None:
    r = runner.invoke(app, ["suci", *args, "--help"])
    assert r.exit_code == 0 and "Usage" in r.output


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::hsm_sim.errors.DevModeWarning")
def test_keys_conceal_deconceal_export(cli: Invoke, tmp_path: Path) -> None:
    enc = encrypt_eki(EkiScheme.AES128_ECB, TK, h(C4["C.4.3.1"], "hn_private")).hex()
    k = _json(cli("key", "import", "--key-id", "27", "--profile", "A", "--encrypted", enc,
                  "--transport", "vendor", "--json"))
    assert k[0]["public_key"] == C4["C.4.3.1"]["hn_public"]  # type: ignore[index]
    _json(cli("key", "generate", "--key-id", "2", "--profile", "B", "--json"))
    listed = _json(cli("key", "list", "--json"))
    assert [(x["key_id"], x["profile"]) for x in listed] == [  # type: ignore[union-attr,index]
        (2, "Profile B"), (27, "Profile A")]
    out = cli("key", "list")
    assert out.exit_code == 0 and "Profile A" in out.output
    s = _json(cli("conceal", "--imsi", "274012001002086", "--mnc-length", "3", "--profile", "B",
                  "--key-id", "2", "--routing-indicator", "678", "--json"))
    assert s["suci"].startswith("suci-0-274-012-678-2-2-")  # type: ignore[index]
    got = _json(cli("deconceal", s["suci"], "--json"))  # type: ignore[index]
    assert got == {"supi": "imsi-274012001002086", "imsi": "274012001002086", "scheme": 2,
                   "key_id": 2, "routing_indicator": "678"}
    annex = f"suci-0-274-012-0-1-27-{C4['C.4.3.1']['scheme_output']}"
    assert cli("deconceal", annex).stdout.strip() == "imsi-274012001002086"
    r = cli("export", "--target", "core", "--format", "open5gs", "--out",
            str(tmp_path / "o5gs"), "--json")
    assert _json(r)["files"]["udm-hnet.yaml"] == [2, 27]  # type: ignore[index]
    assert cli("key", "calc-info").stdout.startswith("a006")
    _json(cli("key", "retire", "27", "--json"))
    r = cli("deconceal", annex)
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "retired" in r.output
    everything = "".join(c.output for c in [cli("key", "list", "--json")])
    assert C4["C.4.3.1"]["hn_private"] not in everything


@pytest.mark.filterwarnings("ignore::hsm_sim.errors.DevModeWarning")
def test_errors_are_one_line(cli: Invoke) -> None:
    for args, text in [
        (("deconceal", "suci-0-274-012-0-5-1-00"), "scheme 5 is reserved"),
        (("deconceal", "suci-0-274-012-0-1-9-" + "00" * 41), "SUCI key id 9"),
        (("key", "generate", "--key-id", "1", "--profile", "C"), "profile 'C'"),
        (("key", "import", "--key-id", "1", "--profile", "A", "--encrypted", "zz",
          "--transport", "vendor"), "--encrypted: not hex"),
        (("conceal", "--imsi", "27401200100208x", "--profile", "A"), "imsi"),
    ]:
        r = cli(*args)
        assert r.exit_code == 1, r.output
        assert text in r.output and r.output.startswith("error: ")
