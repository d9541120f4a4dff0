"""End to end through the real stack: pyscard -> pcscd -> vpcd -> virtual card. Program, read
back and authenticate with each driver; wrong ADM; a card pulled mid-write and resumed; an
unknown ATR; two readers in parallel."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cards.errors import CardRemovedError, UnknownCardError
from cards.fs.ts_31_102 import EF_IMSI
from cards.pcsc import PcscTransport
from cards.personalise import program_card, read_iccid, verify_card
from cards.read import read_card
from cards.status_words import WrongCode
from cards.virtual.card import VirtualUicc
from tests.cards.conftest import Insert
from tests.cards.helpers import key_writer, profile, vector


@pytest.mark.parametrize("card_type", ["sysmoISIM-SJA2", "sysmoISIM-SJA5", "sysmoUSIM-SJS1"])
def test_program_read_verify(insert: Insert, card_type: str) -> None:
    card = VirtualUicc(card_type)
    _, reader = insert(card)
    p = profile(oplmn=({"mcc": "262", "mnc": "01", "act": ["E-UTRAN"]},), smsc="+491760000001")
    with PcscTransport(reader, timeout=2) as t:
        result = program_card(t, p, key_writer(), vector())
        assert result.driver == card_type and result.apdus <= 60
        info = read_card(t)
        assert read_iccid(t) == p.iccid
        verify_card(t, vector(seq=2))
    assert info["imsi"] == p.imsi and info["iccid"] == p.iccid
    assert info["spn"]["name"] == "simsmith"
    assert info["msisdn"]["number"] == "+491760000443"
    assert info["oplmn_act"] == [{"mcc": "262", "mnc": "01", "act": ["E-UTRAN"]}]
    assert info["card_type"] == card_type


def test_wrong_adm_through_pcsc(insert: Insert) -> None:
    card = VirtualUicc("sysmoUSIM-SJS1", adm1="11111111")
    _, reader = insert(card)
    with PcscTransport(reader, timeout=2) as t, pytest.raises(WrongCode, match="2 tries left"):
        program_card(t, profile(), key_writer(), vector())
    assert card.codes[0x0A].tries == 2


def test_card_pulled_mid_write_then_resumed(insert: Insert, tmp_path: Path) -> None:
    state = tmp_path / "card.json"
    card = VirtualUicc("sysmoISIM-SJA2", state_path=state)
    vcard, reader = insert(card, slot=1, pull_after=30)
    with PcscTransport(reader, timeout=2) as t, pytest.raises(CardRemovedError) as exc:
        program_card(t, profile(), key_writer(), vector())
    assert "partly written" in str(exc.value) and "step" in str(exc.value)
    assert vcard.pulled.is_set()
    assert state.stat().st_mode & 0o077 == 0
    # the same card (from its state file) goes back in; a new run completes it
    again = VirtualUicc(state_path=state)
    assert EF_IMSI.decode(bytes(again.node("3F00/7F20/6F07").data)) == profile().imsi
    _, reader = insert(again, slot=2)
    with PcscTransport(reader, timeout=2) as t:
        program_card(t, profile(), key_writer(), vector(seq=3))
    assert EF_IMSI.decode(bytes(VirtualUicc(state_path=state).node("3F00/7FF0/6F07").data)) \
        == profile().imsi


def test_unknown_atr(insert: Insert) -> None:
    _, reader = insert(VirtualUicc("generic-test-uicc"))
    with PcscTransport(reader, timeout=2) as t, pytest.raises(UnknownCardError) as exc:
        program_card(t, profile(), key_writer(), vector())
    assert "3B9F96801F878031E073FE2100000000000000000042" in str(exc.value)
    assert "--driver generic" in str(exc.value)


def test_two_readers_in_parallel(insert: Insert) -> None:
    cards = [VirtualUicc("sysmoISIM-SJA2", iccid="8988211000000000011"),
             VirtualUicc("sysmoUSIM-SJS1", iccid="8988211000000000029")]
    readers = [insert(c, slot=i * 2)[1] for i, c in enumerate(cards)]  # two different readers
    errors: list[BaseException] = []

    def work(reader: str, iccid: str, imsi: str) -> None:
        try:
            with PcscTransport(reader, timeout=2) as t:
                for seq in range(1, 4):
                    program_card(t, profile(iccid=iccid, imsi=imsi), key_writer(),
                                 vector(seq=seq))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(readers[0], "8988211000000000011",
                                                   "001010000000011")),
               threading.Thread(target=work, args=(readers[1], "8988211000000000029",
                                                   "001010000000029"))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors, errors
    assert EF_IMSI.decode(bytes(cards[1].node("3F00/7FF0/6F07").data)) == "001010000000029"
