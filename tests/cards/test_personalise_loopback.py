"""Personalisation plans on the virtual card in-process (no pcscd): every driver programs,
reads back and authenticates; wrong ADM stops after one try; secrets never show."""

from __future__ import annotations

import pytest

from cards.errors import SyncFailureError, UnknownCardError, VerificationError
from cards.fs.ts_31_102 import EF_IMSI
from cards.personalise import describe_plan, plan_card, program_card, verify_card
from cards.status_words import WrongCode
from cards.virtual.card import VirtualUicc
from cards.virtual.loopback import LoopbackTransport
from tests.cards.helpers import KI, OPC, key_writer, profile, vector

DRIVERS = ["sysmoISIM-SJA2", "sysmoISIM-SJA5", "sysmoUSIM-SJS1"]


@pytest.mark.parametrize("card_type", DRIVERS)
def test_program_each_driver(card_type: str) -> None:
    card = VirtualUicc(card_type)
    lines: list[str] = []
    t = LoopbackTransport(card, trace=lines.append)
    result = program_card(t, profile(), key_writer(), vector())
    assert result.driver == card_type
    assert EF_IMSI.decode(bytes(card.node("3F00/7FF0/6F07").data)) == "001010000000011"
    assert EF_IMSI.decode(bytes(card.node("3F00/7F20/6F07").data)) == "001010000000011"
    assert result.apdus <= 60 and result.exchanges <= 60, result
    trace = "\n".join(lines)
    for secret in (KI, OPC, b"12345678"):
        assert secret.hex().upper()[:8] not in trace.replace(" ", "")
    # a second verification with a fresh SQN still authenticates
    verify_card(t, vector(seq=2))


def test_generic_driver_needs_preloaded_keys() -> None:
    card = VirtualUicc("generic-test-uicc")
    t = LoopbackTransport(card)
    with pytest.raises(UnknownCardError, match=r"ATR 3B9F.*--driver generic"):
        program_card(t, profile(), key_writer(), vector())
    with pytest.raises(VerificationError, match="keys are not the HSM"):
        program_card(t, profile(), key_writer(), vector(), driver="generic")
    card.node("3F00/7FF0/AF20").data[:] = b"\x14" + KI + OPC  # keys loaded by the vendor
    result = program_card(t, profile(), key_writer(), vector(seq=5), driver="generic")
    assert result.driver == "generic"


def test_wrong_adm_stops_after_one_try() -> None:
    card = VirtualUicc("sysmoISIM-SJA2", adm1="87654321")
    t = LoopbackTransport(card)
    with pytest.raises(WrongCode, match="wrong ADM1 code, 2 tries left") as exc:
        program_card(t, profile(), key_writer(), vector())
    assert exc.value.tries_left == 2
    assert card.codes[0x0A].tries == 2
    assert "12345678" not in str(exc.value)
    assert t.stats.by_ins.get(0x20) == 2  # the query and a single VERIFY
    assert 0xD6 not in t.stats.by_ins  # nothing written
    card.codes[0x0A].tries = 1
    with pytest.raises(Exception, match="1 try left: not trying"):
        program_card(LoopbackTransport(card), profile(), key_writer(), vector())
    assert card.codes[0x0A].tries == 1


def test_wrong_iccid_and_sync_failure() -> None:
    card = VirtualUicc("sysmoISIM-SJA2", iccid="8988211000000000029")
    with pytest.raises(VerificationError, match="card ICCID 8988211000000000029 is not"):
        program_card(LoopbackTransport(card), profile(), key_writer(), vector())
    card = VirtualUicc("sysmoISIM-SJA2")
    t = LoopbackTransport(card)
    program_card(t, profile(), key_writer(), vector(seq=9))
    with pytest.raises(SyncFailureError) as exc:
        verify_card(t, vector(seq=3), gsm=False)
    assert len(exc.value.auts) == 14


def test_isim_and_dry_run_plan_masks_secrets() -> None:
    p = profile(impi="001010000000011@ims.mnc001.mcc001.3gppnetwork.org",
                impu=("sip:001010000000011@ims.mnc001.mcc001.3gppnetwork.org",),
                domain="ims.mnc001.mcc001.3gppnetwork.org")
    card = VirtualUicc("sysmoISIM-SJA2")
    program_card(LoopbackTransport(card), p, key_writer(), vector())
    lines = describe_plan(plan_card(p, key_writer(), None, "sysmoISIM-SJA2"))
    text = "\n".join(lines)
    assert "<33 secret bytes>" in text and "<8 secret bytes>" in text
    assert KI.hex().upper()[:8] not in text.replace(" ", "")
    assert "UPDATE BINARY EF.IMPI" in text


def test_key_writer_asked_once_per_card() -> None:
    calls: list[str] = []
    inner = key_writer()

    class Counting:
        def adm1(self, iccid: str) -> object:
            calls.append("adm1")
            return inner.adm1(iccid)

        def card_keys(self, iccid: str) -> object:
            calls.append("keys")
            return inner.card_keys(iccid)

    p = profile(impi="u@ims.test", domain="ims.test", impu=("sip:u@ims.test",))
    program_card(LoopbackTransport(VirtualUicc("sysmoISIM-SJA2")), p, Counting(),  # type: ignore[arg-type]
                 vector())
    assert calls == ["adm1", "keys"]
