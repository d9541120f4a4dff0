"""`simsmith esim …` driven through Typer's runner."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from esim.build import build_package
from esim.params import SubscriberParams
from tests.esim.vectors import VECTORS
from tools.cli import app as root
from tools.esim_cli import app

runner = CliRunner()
TS48 = VECTORS / "ts48" / "ts48v7_saip23_NoBERTLV.der"
TEST_KEY = "000102030405060708090A0B0C0D0E0F"


def test_registered_under_root() -> None:
    result = runner.invoke(root, ["esim", "--help"])
    assert result.exit_code == 0
    for command in ("inspect", "code"):
        assert command in result.output


@pytest.mark.parametrize("command", ["inspect", "code"])
def test_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "--json" in result.output


@pytest.mark.slow
def test_inspect_table_masks_keys() -> None:
    result = runner.invoke(app, ["inspect", str(TS48)])
    assert result.exit_code == 0, result.output
    assert "ICCID: 89000123456789012341" in result.output
    assert "IMSI: 001010123456789" in result.output
    assert "usim-test-algorithm" in result.output and "securityDomain" in result.output
    assert TEST_KEY not in result.output and "3131313131313131" not in result.output


@pytest.mark.slow
def test_inspect_json_masked_and_shown() -> None:
    result = runner.invoke(app, ["inspect", str(TS48), "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["iccid"] == "89000123456789012341" and doc["imsi"] == ["001010123456789"]
    assert doc["valid"] is True and len(doc["elements"]) == 30
    assert TEST_KEY not in result.output and "30303030FFFFFFFF" not in result.output
    aka = doc["elements"][10]["value"]["algoConfiguration"]["algoParameter"]
    assert aka["key"] == "***"
    shown = runner.invoke(app, ["inspect", str(TS48), "--json", "--show-secrets"])
    assert TEST_KEY in shown.output
    table = runner.invoke(app, ["inspect", str(TS48), "--show-secrets"])
    assert f"key {TEST_KEY}" in table.output


def test_inspect_built_package_and_errors(tmp_path: Path) -> None:
    params = SubscriberParams("8944000000000000017", "001019876543210", puk1="12345678",
                              pin2="1234", puk2="24682468", adm1="13571357")
    der = build_package("usim-isim-milenage", params, lambda buf, slots: None)
    (tmp_path / "p.der").write_bytes(der)
    result = runner.invoke(app, ["inspect", str(tmp_path / "p.der")])
    assert result.exit_code == 0 and "milenage, milenage" in result.output
    assert "24682468" not in result.output and "13571357" not in result.output
    (tmp_path / "bad.der").write_bytes(der[:-3])
    bad = runner.invoke(app, ["inspect", str(tmp_path / "bad.der")])
    assert bad.exit_code == 1 and "past the end" in bad.output
    missing = runner.invoke(app, ["inspect", str(tmp_path / "nope.der")])
    assert missing.exit_code == 1


def test_code_build_json_and_qr(tmp_path: Path) -> None:
    qr = tmp_path / "code.png"
    result = runner.invoke(app, ["code", "--smdp", "SMDP.GSMA.COM", "--matching-id",
                                 "04386-AGYFT-A74Y8-3F815", "--oid", "1.3.6.1.4.1.31746",
                                 "--cc-required", "--qr", str(qr), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    code = "1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815$1.3.6.1.4.1.31746$1"
    assert doc["activation_code"] == code and doc["lpa_uri"] == "LPA:" + code
    assert doc["ios_install_link"].endswith("LPA%3A1%24SMDP.GSMA.COM%2404386-AGYFT-A74Y8-3F815"
                                            "%241.3.6.1.4.1.31746%241")
    if shutil.which("zbarimg"):
        out = subprocess.run(["zbarimg", "-q", "--raw", str(qr)], capture_output=True, check=True)
        assert out.stdout.decode().strip() == "LPA:" + code
    svg = tmp_path / "code.svg"
    text = runner.invoke(app, ["code", "--smdp", "rsp.example.com", "--qr", str(svg)])
    assert text.exit_code == 0 and "matching_id: " in text.output
    assert svg.read_text().startswith("<svg")


def test_code_parse() -> None:
    ok = runner.invoke(app, ["code", "--parse", "LPA:1$rsp.example.com$ABC-123$$1", "--json"])
    assert ok.exit_code == 0
    doc = json.loads(ok.output)
    assert doc["matching_id"] == "ABC-123" and doc["confirmation_code_required"] is True
    assert doc["smdp_oid"] is None
    bad = runner.invoke(app, ["code", "--parse", "1$rsp.example.com$abc"])
    assert bad.exit_code == 1
    assert "Matching ID at position 18" in bad.output
    bad_json = runner.invoke(app, ["code", "--parse", "1$rsp.example.com$ABC$", "--json"])
    assert bad_json.exit_code == 1
    assert json.loads(bad_json.output) == {
        "valid": False, "field": "SM-DP+ OID", "position": 22,
        "error": "SM-DP+ OID at position 22: is empty without a Confirmation Code Required Flag "
                 "after it (trailing '$')"}


@pytest.mark.parametrize("args", [
    ["code"], ["code", "--parse", "1$A.COM$B", "--smdp", "a.com"],
    ["code", "--smdp", "a.com", "--qr", "x.gif"],
])
def test_code_usage_errors(args: list[str]) -> None:
    assert runner.invoke(app, args).exit_code == 2


def test_template_list_and_show(tmp_path: Path) -> None:
    listed = runner.invoke(app, ["template", "list", "--json"])
    assert listed.exit_code == 0 and "usim-isim-milenage" in json.loads(listed.output)
    shown = runner.invoke(app, ["template", "show", "usim-isim-milenage", "--json"])
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.output)
    assert doc["algorithm"] == "milenage"
    by_param = {f["parameter"]: f for f in doc["fields"]}
    assert by_param["ki"]["written_by"] == "hsm" and by_param["imsi"]["length"] == 9
    table = runner.invoke(app, ["template", "show", "ts48"])
    assert table.exit_code == 0 and "ota-kvn01-kid01" in table.output
    missing = runner.invoke(app, ["template", "show", str(tmp_path / "none.toml")])
    assert missing.exit_code == 1 and "none.toml" in missing.output
