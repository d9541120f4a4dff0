"""simsmith's LPA download (esim.lpa.download) end to end in process: activation code →
ES9+ (an SM-DP+ on esim.sgp22's functions) ↔ ES10 over APDUs ↔ the virtual eUICC; then the
notification, the SM-DP+'s order state, enable, and AUTHENTICATE with the profile's keys.
Also over HTTP (httpx, through MockTransport), the confirmation-code cases, and
notifications processing."""

from __future__ import annotations

from pathlib import Path

import pytest

from cards.personalise import verify_card
from esim.euicc.card import VirtualEuicc
from esim.euicc.identity import dev_euicc
from esim.lpa.download import Es9Refused, download, process_notifications
from esim.lpa.es9_client import HttpEs9
from esim.lpa.functions import Es10Functions, LpaError
from esim.rsp_pki import DevRspPki
from simcore.euicc import EuiccLoopback, es10_session, virtual_euicc
from tests.euicc.fake_smdp import FakeSmdp, Order
from tests.euicc.smdp_side import milenage_upp
from tests.euicc.test_enabled_usim import _vector

ICCID, IMSI = "8949440000000000017", "001010000000017"
AC = "LPA:1$smdp.simsmith.test$MATCH-1"


def _setup(tmp_path: Path, cc: str | None = None) -> tuple[FakeSmdp, VirtualEuicc]:
    pki = DevRspPki(tmp_path / "rsp")
    smdp = FakeSmdp(pki)
    smdp.orders["MATCH-1"] = Order(milenage_upp(ICCID, IMSI), ICCID, cc=cc)
    return smdp, virtual_euicc(dev_euicc(tmp_path / "rsp", state=tmp_path / "euicc.json"))


def test_download_enable_authenticate(tmp_path: Path) -> None:
    smdp, card = _setup(tmp_path)
    transport = EuiccLoopback(card)
    steps: list[str] = []
    with es10_session(transport) as es10:
        functions = Es10Functions(es10.call)
        result = download(functions, smdp, AC, progress=steps.append)
        assert result.success and result.iccid == ICCID and result.notification_sent
        assert smdp.orders["MATCH-1"].state == "installed"
        assert smdp.calls == ["initiateAuthentication", "authenticateClient",
                              "getBoundProfilePackage", "handleNotification"]
        assert functions.list_notifications() == []  # delivered, removed
        assert any(s.startswith("segment ") for s in steps)
        functions.enable(ICCID)
    verify_card(transport, _vector(1))


def test_download_over_https_client(tmp_path: Path) -> None:
    smdp, card = _setup(tmp_path)
    with es10_session(EuiccLoopback(card)) as es10, \
            HttpEs9(smdp.address, transport=smdp.http()) as es9:
        result = download(Es10Functions(es10.call), es9, AC)
    assert result.success and smdp.orders["MATCH-1"].state == "installed"


def test_confirmation_code(tmp_path: Path) -> None:
    smdp, card = _setup(tmp_path, cc="12345678")
    with es10_session(EuiccLoopback(card)) as es10:
        functions = Es10Functions(es10.call)
        with pytest.raises(LpaError) as missing:
            download(functions, smdp, AC)  # no code given: the LPA stops and cancels
        assert missing.value.code == "confirmationCodeRequired"
        assert "cancelSession" in smdp.calls
        with pytest.raises(Es9Refused) as wrong:
            download(functions, smdp, AC, confirmation_code="87654321")
        assert (wrong.value.subject, wrong.value.reason) == ("8.2.7", "3.8")
        assert card.core.state.profiles == []  # nothing installed
        assert download(functions, smdp, AC, confirmation_code="12345678").success
    assert [p.iccid for p in card.core.state.profiles] == [ICCID]


def test_undelivered_notification_processed_later(tmp_path: Path) -> None:
    smdp, card = _setup(tmp_path)
    original = smdp.handleNotification

    def unreachable(body: dict[str, object]) -> None:
        raise Es9Refused("handleNotification", "8.8", "3.7")
    smdp.handleNotification = unreachable  # type: ignore[method-assign]
    with es10_session(EuiccLoopback(card)) as es10:
        functions = Es10Functions(es10.call)
        assert not download(functions, smdp, AC).notification_sent
        assert len(functions.list_notifications()) == 1
        smdp.handleNotification = original  # type: ignore[method-assign]
        assert process_notifications(functions, lambda address: smdp) == [(1, True)]
        assert functions.list_notifications() == []
    assert smdp.orders["MATCH-1"].state == "installed"


def test_tls_is_verified_by_default(tmp_path: Path) -> None:
    import ssl

    from esim.lpa.es9_client import tls_context
    from esim.pki import dev_init

    pki = dev_init(tmp_path / "tls")
    for context in (tls_context(None), tls_context(pki.ca)):
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    with pytest.raises(Exception):  # noqa: B017 - not a CA bundle
        tls_context(tmp_path / "missing.pem")
