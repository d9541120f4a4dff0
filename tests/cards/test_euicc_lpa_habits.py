"""The virtual eUICC through pcscd + vpcd as LPAs other than simsmith's drive it: the recorded
independent download sent APDU by APDU (pyscard, no simsmith transport logic) with the habits
real LPAs have (issue 17 item 1, transport): 120- or 255-byte STORE DATA blocks, Le on every
block or on none, the ISD-R on a channel ≥ 4 (CLA 4X/CX), a channel the terminal names, SELECT
without response data (P2 0C), GET RESPONSE in the size the card announces or in smaller pieces,
a chained command restarted from block 0; and an LPA that uses the basic channel, after which
the enabled profile's USIM still answers there."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from cards.pcsc import PcscTransport
from cards.read import read_card
from esim.euicc.es10 import ISD_R_AID
from esim.lpa.functions import Es10Functions
from esim.sgp22.notifications import InstallationResult, read_pending_notification
from simcore.euicc import EuiccLoopback, es10_session, virtual_euicc
from tests.cards.conftest import Insert
from tests.esim.sgp22_vectors import data, session
from tests.euicc.recorded import recorded_euicc
from tests.euicc.smdp_side import download, milenage_upp
from tests.euicc.test_apdu_download import _download


@dataclass(frozen=True)
class Habit:
    block: int
    terminal_capability: bool = True
    taken_channels: int = 0  # channels other applications hold before the LPA opens its own
    named_channel: int | None = None  # MANAGE CHANNEL open with P2 = the channel
    select_p2: int = 0x00  # 00: FCI, 0C: no response data
    le_on_every_block: bool = False
    le_on_last_block: bool = True
    get_response_le: int | None = None  # None: what 61xx announced
    restart_first_command: bool = False  # abandon a chained command after block 0, resend


HABITS = {
    # lpac-like: 120-byte blocks, Le (00) on every block, GET RESPONSE as announced
    "120-le-every-block": Habit(120, le_on_every_block=True),
    # Android-like: 255-byte blocks, no TERMINAL CAPABILITY (the modem sent it), the channel
    # after three others (4: CLA 40 / C0), no Le at all
    "255-channel-4": Habit(255, terminal_capability=False, taken_channels=3,
                           le_on_last_block=False),
    # a reader with a small buffer and a terminal that names its channel and wants no FCI
    "64-byte-get-response": Habit(200, named_channel=7, select_p2=0x0C, get_response_le=0x40),
    "restart-from-block-0": Habit(120, restart_first_command=True),
}


def _cla(channel: int, proprietary: bool) -> int:
    base = 0x80 if proprietary else 0x00
    return base | channel if channel < 4 else base | 0x40 | (channel - 4)


class RawLpa:
    """ES10 over bare APDUs with one habit (the way another LPA's code would send them)."""

    def __init__(self, transport: PcscTransport, habit: Habit) -> None:
        self.t = transport
        self.habit = habit
        self.channel = -1
        self.restarted = False

    def x(self, apdu: bytes) -> tuple[bytes, int]:
        answer = self.t._exchange(apdu)
        return answer[:-2], answer[-2] << 8 | answer[-1]

    def collect(self, answer: bytes, sw: int) -> bytes:
        while sw >> 8 == 0x61:
            le = self.habit.get_response_le or sw & 0xFF
            more, sw = self.x(bytes([_cla(self.channel, False), 0xC0, 0, 0, le & 0xFF]))
            answer += more
        assert sw == 0x9000, f"{sw:04X}"
        return answer

    def open(self) -> None:
        h = self.habit
        if h.terminal_capability:
            assert self.x(bytes.fromhex("80AA000005A903830107"))[1] == 0x9000
        held = [self.x(bytes.fromhex("0070000001"))[0][0] for _ in range(h.taken_channels)]
        assert held == list(range(1, h.taken_channels + 1))
        if h.named_channel is not None:
            assert self.x(bytes([0x00, 0x70, 0x00, h.named_channel])) == (b"", 0x9000)
            self.channel = h.named_channel
        else:
            answer, sw = self.x(bytes.fromhex("0070000001"))
            assert sw == 0x9000
            self.channel = answer[0]
        select = bytes([_cla(self.channel, False), 0xA4, 0x04, h.select_p2, len(ISD_R_AID)])
        fci = self.collect(*self.x(select + ISD_R_AID + (b"" if h.select_p2 == 0x0C
                                                         else b"\x00")))
        if h.select_p2 == 0x0C:
            assert fci == b""
        else:
            assert fci[:2] == bytes([0x6F, len(fci) - 2]) and ISD_R_AID in fci

    def call(self, command: bytes) -> bytes:
        h = self.habit
        blocks = [command[i:i + h.block] for i in range(0, len(command), h.block)]
        if h.restart_first_command and not self.restarted and len(blocks) > 1:
            self.restarted = True
            assert self._block(0, blocks[0], last=False)[1] == 0x9000
        for number, block in enumerate(blocks):
            last = number == len(blocks) - 1
            answer, sw = self._block(number, block, last)
            if not last:
                assert (answer, sw) == (b"", 0x9000)
        return self.collect(answer, sw)

    def _block(self, number: int, block: bytes, last: bool) -> tuple[bytes, int]:
        h = self.habit
        le = h.le_on_every_block or (last and h.le_on_last_block)
        apdu = bytes([_cla(self.channel, True), 0xE2, 0x91 if last else 0x11, number,
                      len(block)]) + block + (b"\x00" if le else b"")
        return self.x(apdu)

    def close(self) -> None:
        assert self.x(bytes([0x00, 0x70, 0x80, self.channel]))[1] == 0x9000


@pytest.mark.parametrize("habit", list(HABITS))
def test_recorded_download_with_another_lpas_habits(insert: Insert, habit: str) -> None:
    card = virtual_euicc(recorded_euicc())
    _vcard, reader = insert(card)
    with PcscTransport(reader) as transport:
        lpa = RawLpa(transport, HABITS[habit])
        lpa.open()
        functions = Es10Functions(lpa.call)
        assert functions.eid() == session()["eid"]
        pir = _download(functions)
        lpa.close()
    result = read_pending_notification(pir)
    assert isinstance(result, InstallationResult) and result.success
    assert bytes.fromhex(card.core.state.profiles[0].upp) == data("upp.der")
    assert lpa.channel not in card.open_channels


def test_lpa_on_the_basic_channel_then_the_usim(insert: Insert) -> None:
    """An LPA that selects the ISD-R on the basic channel (no MANAGE CHANNEL); a SELECT of the
    MF there afterwards reaches the enabled profile's USIM, as on a real eUICC."""
    iccid, imsi = "8949440000000000074", "001010000000074"
    card = virtual_euicc(recorded_euicc(random=os.urandom))
    with es10_session(EuiccLoopback(card)) as es10:
        functions = Es10Functions(es10.call)
        download(functions, milenage_upp(iccid, imsi), iccid, session()["eid"])
        functions.enable(iccid)
    _vcard, reader = insert(card)
    with PcscTransport(reader) as transport:
        lpa = RawLpa(transport, Habit(120))
        lpa.channel = 0
        fci = lpa.collect(*lpa.x(bytes.fromhex("00A4040010") + ISD_R_AID + b"\x00"))
        assert ISD_R_AID in fci
        [profile] = Es10Functions(lpa.call).profiles()
        assert (profile["iccid"], profile["state"]) == (iccid, "enabled")
        assert read_card(transport)["imsi"] == imsi
