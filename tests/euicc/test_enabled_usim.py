"""The enabled profile's USIM answers as a UICC does: a simsmith Milenage profile, downloaded
in a fresh session (simsmith's SM-DP+ functions, not the recording), enabled over ES10c, then
read and authenticated through the same APDU path — and it survives a restart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cards.apdu import Apdu
from cards.errors import SyncFailureError
from cards.personalise import verify_card
from cards.profile import AuthVector
from cards.read import read_card
from cards.virtual.milenage_card import Milenage
from esim.lpa.functions import Es10Functions
from esim.sgp22.notifications import InstallationResult, read_pending_notification
from simcore.euicc import EuiccLoopback, es10_session, virtual_euicc
from tests.esim.sgp22_vectors import session
from tests.euicc.recorded import recorded_euicc
from tests.euicc.smdp_side import KI, OPC, download, milenage_upp

ICCID, IMSI = "8949440000000000017", "001010000000017"


def _vector(seq: int) -> AuthVector:
    m = Milenage(KI, OPC)
    rand, amf = os.urandom(16), b"\x80\x00"
    sqn = (seq << 5).to_bytes(6, "big")
    mac_a, _ = m.f1(rand, sqn, amf)
    res, ck, ik, ak, _ = m.f2345(rand)
    return AuthVector(rand, bytes(a ^ b for a, b in zip(sqn, ak, strict=True)) + amf + mac_a,
                      res, ck, ik)


def test_download_enable_read_authenticate(tmp_path: Path) -> None:
    state = tmp_path / "euicc.json"
    card = virtual_euicc(recorded_euicc(state, random=os.urandom))
    transport = EuiccLoopback(card)
    with es10_session(transport) as es10:
        functions = Es10Functions(es10.call)
        pir = download(functions, milenage_upp(ICCID, IMSI), ICCID, session()["eid"])
        result = read_pending_notification(pir)
        assert isinstance(result, InstallationResult) and result.success
        assert card.uicc is None  # installed disabled: no USIM yet
        functions.enable(ICCID)
    assert card.uicc is not None
    data = read_card(transport)
    assert data["iccid"] == ICCID and data["imsi"] == IMSI
    verify_card(transport, _vector(1))
    # a restart keeps the enabled profile and its SQN state: SEQ 1 again is a sync failure
    again = virtual_euicc(recorded_euicc(state))
    transport2 = EuiccLoopback(again)
    assert read_card(transport2)["imsi"] == IMSI
    verify_card(transport2, _vector(2))
    with pytest.raises(SyncFailureError):
        verify_card(transport2, _vector(2))
    # disabled: the USIM goes away
    with es10_session(transport2) as es10:
        Es10Functions(es10.call).disable(ICCID)
    assert again.uicc is None
    assert transport2.send(Apdu(0x00, 0xA4, 0x00, 0x04, b"\x3f\x00"))[1] == 0x6A82
