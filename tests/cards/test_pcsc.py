"""The PC/SC path end to end: pyscard -> pcscd -> vpcd -> the virtual card."""

from __future__ import annotations

import statistics
import time

import pytest

from cards.commands import ADM1, Uicc
from cards.errors import NoCardError, NoReaderError
from cards.pcsc import PcscTransport, list_readers
from cards.virtual.card import VirtualUicc
from tests.cards.conftest import Insert, PcscEnv


def test_list_readers(pcsc: PcscEnv) -> None:
    assert list_readers()[: len(pcsc.readers)] == pcsc.readers


def test_atr_iccid_and_latency(insert: Insert) -> None:
    card = VirtualUicc("sysmoUSIM-SJS1", iccid="8988211000000000029")
    _, reader = insert(card)
    with PcscTransport(reader, timeout=2) as t:
        assert t.atr == card.atr
        u = Uicc(t)
        assert u.read_binary(10, sfi=0x02) == bytes.fromhex("988812010000000020F9")
        assert u.tries_left(ADM1) == 3
        times = []
        for _ in range(100):
            start = time.perf_counter()
            u.read_binary(10, sfi=0x02)
            times.append(time.perf_counter() - start)
    per_apdu = statistics.median(times)
    assert per_apdu < 0.01, f"{per_apdu * 1000:.2f} ms per APDU: TCP_QUICKACK lost?"


def test_no_card_and_no_reader(pcsc: PcscEnv) -> None:
    with pytest.raises(NoCardError, match="no card"):
        PcscTransport(pcsc.readers[3], timeout=0.1)
    with pytest.raises(NoReaderError, match="no reader 99"):
        PcscTransport(99)
