"""The virtual eUICC on the real PC/SC stack (pcscd + vsmartcard-vpcd): simsmith's LPA ES10
client over pyscard installs the recorded independent SM-DP+'s BPP byte for byte."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cards.pcsc import PcscTransport
from cards.read import read_card
from esim.euicc.card import ATR
from esim.lpa.functions import Es10Functions
from esim.sgp22.notifications import InstallationResult, read_pending_notification
from simcore.euicc import EuiccLoopback, es10_session, virtual_euicc
from tests.cards.conftest import Insert
from tests.esim.sgp22_vectors import data, session
from tests.euicc.recorded import cert, recorded_euicc
from tests.euicc.smdp_side import download, milenage_upp
from tests.euicc.test_apdu_download import _download
from tools.lpa_cli import app as lpa_app

runner = CliRunner()
ICCID, IMSI = "8949440000000000025", "001010000000025"


def test_recorded_download_through_pcscd(insert: Insert) -> None:
    card = virtual_euicc(recorded_euicc())
    _vcard, reader = insert(card)
    with PcscTransport(reader) as transport:
        assert transport.atr == ATR
        with es10_session(transport) as es10:
            functions = Es10Functions(es10.call)
            assert functions.eid() == session()["eid"]
            pir = _download(functions)
        apdus = transport.stats.apdus
    result = read_pending_notification(pir)
    assert isinstance(result, InstallationResult) and result.success
    result.verify(cert("CERT_EUICC_ECDSA_NIST.pem"))
    assert bytes.fromhex(card.core.state.profiles[0].upp) == data("upp.der")
    assert 0 < apdus < 160


def test_lpa_cli_through_pcscd(insert: Insert, tmp_path: Path) -> None:
    """`simsmith lpa profiles|nickname|enable|notifications` against the virtual eUICC in a
    reader, then `card read` sees the enabled profile's USIM."""
    core = recorded_euicc(tmp_path / "euicc.json", random=os.urandom)
    card = virtual_euicc(core)
    with es10_session(EuiccLoopback(card)) as es10:
        download(Es10Functions(es10.call), milenage_upp(ICCID, IMSI), ICCID, session()["eid"])
    _vcard, reader = insert(card)
    result = runner.invoke(lpa_app, ["profiles", "--reader", reader, "--json"])
    assert result.exit_code == 0, result.output
    [profile] = json.loads(result.output)
    assert (profile["iccid"], profile["state"]) == (ICCID, "disabled")
    assert runner.invoke(lpa_app, ["nickname", ICCID, "mine", "-r", reader]).exit_code == 0
    result = runner.invoke(lpa_app, ["enable", ICCID, "-r", reader, "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["result"] == "ok"
    result = runner.invoke(lpa_app, ["enable", ICCID, "-r", reader])
    assert result.exit_code == 1 and "profileNotInDisabledState" in result.output
    result = runner.invoke(lpa_app, ["notifications", "-r", reader, "--json", "--remove", "1"])
    out = json.loads(result.output)
    assert out["removed"] == {"1": "ok"}
    assert [n["event"] for n in out["notifications"]] == ["enable"]
    with PcscTransport(reader) as transport:
        assert read_card(transport)["imsi"] == IMSI
    result = runner.invoke(lpa_app, ["info", "-r", reader, "--json"])
    assert json.loads(result.output)["eid"] == session()["eid"]


def test_lpa_download_cli_through_pcscd(insert: Insert, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`simsmith lpa download 'LPA:1$…'` against the virtual eUICC in a reader, the SM-DP+'s
    ES9+ behind the HTTPS client (MockTransport), then `lpa notifications --process`."""
    import esim.lpa.es9_client as es9_client
    from esim.euicc.identity import dev_euicc
    from esim.rsp_pki import DevRspPki
    from tests.euicc.fake_smdp import FakeSmdp, Order

    smdp = FakeSmdp(DevRspPki(tmp_path / "rsp"))
    smdp.orders["M-2"] = Order(milenage_upp(ICCID, IMSI), ICCID)
    real = es9_client.HttpEs9
    monkeypatch.setattr(es9_client, "HttpEs9", lambda address, **kw: real(
        address, transport=smdp.http()))
    card = virtual_euicc(dev_euicc(tmp_path / "rsp", state=tmp_path / "euicc.json"))
    _vcard, reader = insert(card)
    result = runner.invoke(lpa_app, ["download", f"LPA:1${smdp.address}$M-2", "-r", reader,
                                     "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["success"] and out["iccid"] == ICCID and out["notification_sent"]
    assert smdp.orders["M-2"].state == "installed"
    assert runner.invoke(lpa_app, ["enable", ICCID, "-r", reader]).exit_code == 0
    result = runner.invoke(lpa_app, ["notifications", "--process", "-r", reader, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["notifications"] == []
