"""The virtual eUICC on the real PC/SC stack (pcscd + vsmartcard-vpcd): simsmith's LPA ES10
client over pyscard installs the recorded independent SM-DP+'s BPP byte for byte."""

from __future__ import annotations

from cards.pcsc import PcscTransport
from cards.virtual.euicc.card import ATR, VirtualEuicc
from esim.lpa.es10 import Es10Session
from esim.lpa.functions import Es10Functions
from esim.sgp22.notifications import InstallationResult, read_pending_notification
from tests.cards.conftest import Insert
from tests.esim.sgp22_vectors import data, session
from tests.euicc.recorded import cert, recorded_euicc
from tests.euicc.test_apdu_download import _download


def test_recorded_download_through_pcscd(insert: Insert) -> None:
    card = VirtualEuicc(recorded_euicc())
    _vcard, reader = insert(card)
    with PcscTransport(reader) as transport:
        assert transport.atr == ATR
        with Es10Session(transport) as es10:
            functions = Es10Functions(es10.call)
            assert functions.eid() == session()["eid"]
            pir = _download(functions)
        apdus = transport.stats.apdus
    result = read_pending_notification(pir)
    assert isinstance(result, InstallationResult) and result.success
    result.verify(cert("CERT_EUICC_ECDSA_NIST.pem"))
    assert bytes.fromhex(card.core.state.profiles[0].upp) == data("upp.der")
    assert 0 < apdus < 160
