"""ES10c local profile management on the virtual eUICC through the LPA's functions, in
process over APDUs: GetProfilesInfo, EnableProfile, DisableProfile, SetNickname, DeleteProfile,
eUICCMemoryReset, and the enable/disable/delete notifications the profile's metadata asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from esim.euicc.card import VirtualEuicc
from esim.lpa.es10 import Es10Session
from esim.lpa.functions import Es10Functions, LpaError
from esim.sgp22.certificates import TrustedCis
from esim.sgp22.notifications import NotificationEvent, OtherNotification, read_pending_notification
from esim.sgp22.tlv import children, read_tlv
from simcore.euicc import EuiccLoopback, es10_session, virtual_euicc
from tests.esim.sgp22_vectors import session
from tests.euicc.recorded import cert, recorded_euicc
from tests.euicc.test_apdu_download import _download

ICCID = session()["iccid"].rstrip("f")


def _installed(tmp_path: Path) -> tuple[VirtualEuicc, Es10Session, Es10Functions]:
    card = virtual_euicc(recorded_euicc(tmp_path / "euicc.json"))
    es10 = es10_session(EuiccLoopback(card))
    es10.open()
    functions = Es10Functions(es10.call)
    _download(functions)
    return card, es10, functions


def _pending(functions: Es10Functions) -> list[bytes]:
    data = functions.retrieve_notifications()
    root = read_tlv(data)
    return [k.raw(data) for k in children(data, children(data, root)[0])]


def test_profile_lifecycle(tmp_path: Path) -> None:
    card, es10, functions = _installed(tmp_path)
    [info] = functions.profiles()
    assert info["iccid"] == ICCID and info["state"] == "disabled"
    assert info["isdp_aid"] == "A0000005591010FFFFFFFF8900001000"
    assert info["profile_name"] == "TS48V5-SAIP2-3-BERTLV-SUCI-UNIQUE"
    functions.set_nickname(ICCID, "work")
    functions.enable(ICCID)
    assert functions.profiles()[0]["state"] == "enabled"
    assert functions.profiles()[0]["nickname"] == "work"
    with pytest.raises(LpaError) as info_err:
        functions.enable(ICCID)
    assert info_err.value.code == "profileNotInDisabledState"
    with pytest.raises(LpaError) as info_err:
        functions.delete(ICCID)  # an enabled profile is not deleted
    assert info_err.value.code == "profileNotInDisabledState"
    functions.disable(ICCID)
    functions.delete(ICCID)
    assert functions.profiles() == []
    with pytest.raises(LpaError) as info_err:
        functions.enable(ICCID)
    assert info_err.value.code == "iccidOrAidNotFound"
    # install, enable, disable, delete: four notifications; the recorded metadata asks for
    # enable/disable/delete to testsmdpplus1.example.com, each signed by the eUICC
    listed = functions.list_notifications()
    assert [m["seqNumber"] for m in listed] == [1, 2, 3, 4]
    pending = _pending(functions)
    events = []
    for der in pending[1:]:
        notification = read_pending_notification(der)
        assert isinstance(notification, OtherNotification)
        notification.verify(TrustedCis([cert("CERT_CI_ECDSA_NIST.pem")]),
                            eid=session()["eid"])
        events.append(notification.event)
    assert events == [NotificationEvent.ENABLE, NotificationEvent.DISABLE,
                      NotificationEvent.DELETE]
    for seq in (1, 2, 3, 4):
        assert functions.remove_notification(seq) == 0
    assert functions.remove_notification(1) == 1  # nothingToDelete
    assert functions.list_notifications() == []
    es10.close()
    assert card.core.state.profiles == []


def test_memory_reset(tmp_path: Path) -> None:
    _card, es10, functions = _installed(tmp_path)
    # resetOptions: deleteFieldLoadedTestProfiles only — the profile is operational, stays
    assert es10.call(bytes.fromhex("BF3404820206 40".replace(" ", ""))) == bytes.fromhex(
        "BF3403800101")
    assert len(functions.profiles()) == 1
    assert es10.call(bytes.fromhex("BF340482020780")) == bytes.fromhex("BF3403800100")
    assert functions.profiles() == []
    assert recorded_euicc(tmp_path / "euicc.json").state.profiles == []
