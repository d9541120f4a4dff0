"""`simsmith hsm` through Typer's CliRunner: ceremony, KEKs, calculators, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hsm_sim.kcv import kcv, legacy_kcv
from tests.hsm.vectors import cases
from tools.hsm_cli import app

C1, C2 = "11" * 32, "2c" * 16 + "53" * 16
TK = "00112233445566778899aabbccddeeff"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SIMSMITH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SIMSMITH_HSM_PASSPHRASE", raising=False)
    return CliRunner()


@pytest.mark.parametrize("args", [[], ["init"], ["status"], ["kek"], ["kek", "add"],
                                  ["kek", "list"], ["milenage"], ["tuak"], ["opc"], ["kcv"],
                                  ["resync"], ["rewrap"]])
def test_help(runner: CliRunner, args: list[str]) -> None:
    r = runner.invoke(app, [*args, "--help"])
    assert r.exit_code == 0 and "Usage" in r.output


def test_ceremony_and_keks(runner: CliRunner) -> None:
    r = runner.invoke(app, ["init", "--component", C1, "--component", C2])
    assert r.exit_code == 0, r.output
    master = bytes(a ^ b for a, b in zip(bytes.fromhex(C1), bytes.fromhex(C2), strict=True))
    assert kcv(master).hex().upper() in r.output
    assert kcv(bytes.fromhex(C1)).hex().upper() in r.output
    assert C1 not in r.output.lower() and master.hex() not in r.output.lower()
    r = runner.invoke(app, ["init", "--component", C1, "--component", C2])
    assert r.exit_code == 1 and "already exists" in r.output
    # kek add opens the HSM with the master components at hidden prompts
    r = runner.invoke(app, ["kek", "add", "vendor1", "--purpose", "transport", "--component", TK],
                      input=f"{C1}\n{C2}\n")
    assert r.exit_code == 0, r.output
    assert f"vendor1 (transport): KCV {kcv(bytes.fromhex(TK)).hex().upper()}" in r.output
    assert TK not in r.output and C1 not in r.output
    r = runner.invoke(app, ["kek", "add", "v2", "--purpose", "transport", "--component", TK],
                      input=f"{C1}\n{'22' * 32}\n")
    assert r.exit_code == 1 and "component or the passphrase is wrong" in r.output
    r = runner.invoke(app, ["kek", "list", "--json"])
    keks = json.loads(r.output)
    assert [k["name"] for k in keks] == ["storage", "vendor1"]
    assert keks[1]["legacy_kcv"] == legacy_kcv(bytes.fromhex(TK)).hex()
    r = runner.invoke(app, ["kek", "list"])
    assert r.exit_code == 0 and "vendor1" in r.output
    r = runner.invoke(app, ["status", "--json"])
    assert json.loads(r.output)["master_components"] == 2


def test_dev_passphrase_and_seal(runner: CliRunner) -> None:
    r = runner.invoke(app, ["init", "--dev-passphrase", "pw", "--seal-dev"])
    assert r.exit_code == 0 and "DEV MODE" in r.output and "INSECURE" in r.output
    r = runner.invoke(app, ["kek", "add", "hss", "--purpose", "export", "--component", TK,
                            "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["purpose"] == "export"
    r = runner.invoke(app, ["kek", "add", "osmo", "--purpose", "export", "--insecure-clear"])
    assert r.exit_code == 0 and "INSECURE clear export target" in r.output
    assert "warning: opening the HSM with the INSECURE sealed dev file" in r.output
    r = runner.invoke(app, ["kek", "add", "v9", "--purpose", "transport", "--component", TK,
                            "--kcv", "000000"])
    assert r.exit_code == 1 and "does not match the announced 000000" in r.output
    r = runner.invoke(app, ["kek", "add", "v9", "--purpose", "transport", "--component", TK,
                            "--kcv", legacy_kcv(bytes.fromhex(TK)).hex()])
    assert r.exit_code == 0, r.output


def test_errors_are_one_line_naming_the_input(runner: CliRunner) -> None:
    r = runner.invoke(app, ["status"])
    assert r.exit_code == 1 and "run `simsmith hsm init`" in r.output
    r = runner.invoke(app, ["opc", "--k", "00" * 15, "--op", "00" * 16])
    assert r.exit_code == 1 and r.output.strip() == "error: --k: expected 32 hex digits, got 30"
    r = runner.invoke(app, ["kcv", "--key", "zz" * 16])
    assert r.exit_code == 1 and "--key: not hexadecimal" in r.output
    r = runner.invoke(app, ["milenage", "--k", "00" * 16, "--rand", "00" * 16, "--sqn", "1"])
    assert r.exit_code == 2 and "exactly one of --op and --opc" in r.output
    r = runner.invoke(app, ["init", "--component", C1])
    assert r.exit_code == 1 and "at least 2 components" in r.output


@pytest.mark.parametrize("rec", cases("milenage/ts35208_test_sets.txt")[:4])
def test_milenage_calculator(runner: CliRunner, rec: dict[str, str]) -> None:
    r = runner.invoke(app, ["milenage", "--k", rec["k"], "--op", rec["op"], "--rand", rec["rand"],
                            "--sqn", rec["sqn"], "--amf", rec["amf"], "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    for n in ("opc", "f1", "f1star", "f2", "f3", "f4", "f5", "f5star"):
        assert out[n] == rec[n]
    ak = int(rec["f5"], 16) ^ int(rec["sqn"], 16)
    assert out["autn"] == f"{ak:012x}" + rec["amf"] + rec["f1"]
    human = runner.invoke(app, ["milenage", "--k", rec["k"], "--opc", rec["opc"], "--rand",
                                rec["rand"], "--sqn", rec["sqn"], "--amf", rec["amf"]])
    assert "f5* (AK*)" in human.output and rec["f5star"].upper() in human.output
    r = runner.invoke(app, ["opc", "--k", rec["k"], "--op", rec["op"]])
    assert r.output.strip() == rec["opc"].upper()


def test_tuak_calculator(runner: CliRunner) -> None:
    rec = cases("tuak/ts35233_test_sets.txt")[1].values[0]
    r = runner.invoke(app, ["tuak", "--k", rec["k"], "--top", rec["top"], "--rand", rec["rand"],
                            "--sqn", rec["sqn"], "--amf", rec["amf"], "--mac-bits", "128",
                            "--res-bits", "64", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert (out["topc"], out["f1"], out["f2"], out["f5star"]) == (
        rec["topc"], rec["f1"], rec["f2"], rec["f5star"])
    r = runner.invoke(app, ["tuak", "--k", rec["k"], "--topc", rec["topc"], "--rand", rec["rand"],
                            "--sqn", rec["sqn"], "--mac-bits", "100"])
    assert r.exit_code == 2 and "--mac-bits" in r.output


def test_kcv_and_resync(runner: CliRunner) -> None:
    rec = cases("kcv/kcv.txt")[0].values[0]
    r = runner.invoke(app, ["kcv", "--key", rec["key"], "--json"])
    assert json.loads(r.output) == {"kcv": rec["cmac"], "legacy_kcv": rec["legacy"]}
    from hsm_sim.milenage import Milenage

    k, opc, rand = bytes(range(16)), bytes(16), bytes(16)
    auts = Milenage(k, opc).auts(rand, 0x1234).hex()
    r = runner.invoke(app, ["resync", "--k", k.hex(), "--opc", opc.hex(), "--rand", rand.hex(),
                            "--auts", auts])
    assert r.output.strip() == "SQN_MS 000000001234"
    bad = auts[:-1] + ("0" if auts[-1] != "0" else "1")
    r = runner.invoke(app, ["resync", "--k", k.hex(), "--opc", opc.hex(), "--rand", rand.hex(),
                            "--auts", bad])
    assert r.exit_code == 1 and "MAC-S does not verify" in r.output


def test_pkcs11_backend_commands(tmp_path: Path) -> None:
    """The kek commands against SoftHSM2, in a child process (one PKCS#11 login per process)."""
    import os
    import subprocess
    import sys

    from tests.hsm.conftest import pkcs11_env

    env = pkcs11_env()
    child = {**os.environ, "SIMSMITH_HOME": str(tmp_path), "SIMSMITH_HSM_BACKEND": "pkcs11",
             "SIMSMITH_PKCS11_MODULE": env["SIMSMITH_TEST_PKCS11_MODULE"],
             "SIMSMITH_PKCS11_TOKEN": env["SIMSMITH_TEST_PKCS11_TOKEN"],
             "SIMSMITH_PKCS11_PIN": env["SIMSMITH_TEST_PKCS11_PIN"]}
    root = Path(__file__).resolve().parents[2]

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tools.hsm_cli", *args],
                              env={**child, **(env or {})},
                              cwd=root, capture_output=True, text=True, timeout=60)

    r = run("init")
    assert r.returncode == 0 and "storage KEK" in r.stdout, r.stderr
    name = f"clivendor{os.getpid()}"
    r = run("kek", "add", name, "--purpose", "transport", "--component", TK)
    assert r.returncode == 0, r.stderr
    assert f"KCV {kcv(bytes.fromhex(TK)).hex().upper()}" in r.stdout and TK not in r.stdout
    r = run("kek", "list", "--json")
    # Seen once empty under load (other suites on the same SoftHSM2 token): say why if again.
    assert r.returncode == 0, r.stderr
    assert name in {k["name"] for k in json.loads(r.stdout)}
    r = run("status", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["backend"] == "pkcs11"
    # every command opens the token the one configured way, session pool size included
    for command in (["init"], ["status"], ["kek", "list"]):
        r = run(*command, env={"SIMSMITH_PKCS11_SESSIONS": "0"})
        assert r.returncode == 1 and "SIMSMITH_PKCS11_SESSIONS" in r.stderr, (command, r.stderr)
    child["SIMSMITH_PKCS11_PIN"] = "0000"
    r = run("kek", "list")
    assert r.returncode == 1 and "PIN" in r.stderr and r.stderr.count("\n") == 1


def test_init_with_hidden_prompts(runner: CliRunner) -> None:
    r = runner.invoke(app, ["init", "--json"], input=f"3\n{C1}\n{C2}\n{'77' * 32}\n")
    assert r.exit_code == 0, r.output
    # CliRunner echoes the typed input into stdout; the JSON document follows it.
    assert json.loads(r.stdout[r.stdout.index("{"):])["master_components"] == 3
    assert C1 not in r.output and C2 not in r.output
    assert f"master component 1: KCV {kcv(bytes.fromhex(C1)).hex().upper()}" in r.output
