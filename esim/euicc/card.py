"""The virtual eUICC's APDU layer (sans I/O): what an LPA's ES10 traffic looks like on the
wire, in front of the EuiccCore.

- TERMINAL CAPABILITY (CLA 80, INS AA; ETSI TS 102 221 §11.1.19): accepted.
- MANAGE CHANNEL (INS 70; TS 102 221 §11.1.17): open (P1 00; P2 00: the card picks the
  channel and answers its number, P2 01–13: the terminal names it) and close (P1 80, P2 the
  channel); channels 1–19, CLA 0X/8X for 0–3 and 4X/CX for 4–19.
- SELECT by AID (INS A4, P1 04) of the ISD-R A0000005591010FFFFFFFF8900000100 (SGP.22 §2.2.3)
  on any channel; the FCI is answered (6F with 84 = the AID), nothing when P2 says "no
  response data" (0C, ISO/IEC 7816-4 §11.2.2). Any other SELECT on the basic channel leaves the
  ISD-R for the enabled profile's UICC (an LPA that used the basic channel, then `card read`).
- STORE DATA (CLA 80–83/C0–CF, INS E2; GlobalPlatform Card Spec. v2.3 §11.11, SGP.22 §5.7.1):
  P1 11 more blocks / 91 last block, P2 the block number from 00; blocks of any size 1–255
  (lpac sends 120, Android's LPA 255), with or without Le; the concatenation is one ES10
  command. Block 00 always starts a new command (an LPA retrying after an error).
- Responses longer than zero bytes: T=0, 61xx then GET RESPONSE (INS C0) in pieces of ≤ 256,
  or of whatever smaller Le the terminal asks (the rest announced by a new 61xx).

Everything else on the basic channel goes to the enabled profile's UICC, made by the
`uicc_factory` given (simcore.euicc.profile_uicc: a personalised virtual UICC), rebuilt when a
profile is enabled or disabled; without an enabled profile (or factory), 6A82.

ES10 refusals without a coded answer come back as status words (6A88 unknown function, 6985 no
download session, 6A80 malformed, 6A84 command longer than the card accepts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from esim.euicc.es10 import ISD_R_AID, Es10Refused, EuiccCore

log = logging.getLogger(__name__)

# TS 102 221 §6.3 ATR: T=0 and T=15 (UICC class ABC, clock stop), historical bytes of a
# consumer eUICC. TCK is computed below.
_ATR_BODY = bytes.fromhex("9F96801FC78031E073FE211B633A204E8300 9000".replace(" ", ""))
MAX_COMMAND = 1 << 16  # one reassembled ES10 command (BPP segments are ~1 kB)
MAX_CHANNELS = 20  # 0 (basic) and 1–19 (TS 102 221 §11.1.17)


def _atr() -> bytes:
    tck = 0
    for b in _ATR_BODY:
        tck ^= b
    return b"\x3b" + _ATR_BODY + bytes([tck])


ATR = _atr()


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")


def _channel(cla: int) -> int:
    """Logical channel from CLA (TS 102 221 §10.1.1): 0x0X/0x8X first interindustry, 0x4X/0xCX
    further interindustry (channels 4–19)."""
    if cla & 0x40:
        return 4 + (cla & 0x0F)
    return cla & 0x03


class ProfileUicc(Protocol):
    """The enabled profile's UICC as this card needs it."""

    def reset(self) -> None: ...

    def process(self, raw: bytes) -> bytes: ...


# (the profile's UPP, a state file for the UICC or None) -> the UICC
UiccFactory = Callable[[bytes, Path | None], ProfileUicc]


class VirtualEuicc:
    """APDUs in, responses out; `core` holds the ES10 functions and the profile store."""

    def __init__(self, core: EuiccCore, uicc_factory: UiccFactory | None = None) -> None:
        self.core = core
        self.atr = ATR
        self.apdu_count = 0
        self.uicc_factory = uicc_factory
        self.uicc: ProfileUicc | None = None
        self._uicc_iccid: str | None = None
        self._last_uicc = False  # who answered last (whose GET RESPONSE it is)
        core.profile_listeners.append(self._profile_changed)
        self._profile_changed()
        self.reset()

    def _uicc_path(self, iccid: str) -> Path | None:
        state = self.core.state_path
        return None if state is None else state.with_name(f"{state.name}.{iccid}.uicc.json")

    def _profile_changed(self) -> None:
        """Present the enabled profile's UICC (built on first enable, kept beside the state
        file); forget the UICC state of deleted profiles."""
        enabled = self.core.state.enabled()
        state = self.core.state_path
        if state is not None:
            installed = {p.iccid for p in self.core.state.profiles}
            for stale in state.parent.glob(f"{state.name}.*.uicc.json"):
                if stale.name[len(state.name) + 1:-len(".uicc.json")] not in installed:
                    stale.unlink(missing_ok=True)
        if enabled is None or self.uicc_factory is None:
            self.uicc, self._uicc_iccid = None, None
        elif enabled.iccid != self._uicc_iccid:
            self.uicc = self.uicc_factory(bytes.fromhex(enabled.upp),
                                          self._uicc_path(enabled.iccid))
            self._uicc_iccid = enabled.iccid

    def __repr__(self) -> str:
        return f"VirtualEuicc(eid={self.core.eid})"

    def reset(self) -> None:
        """Power-on: only the basic channel open, nothing selected, no pending response."""
        self.open_channels = {0}
        self.isdr_channels: set[int] = set()
        self.pending: bytes | None = None
        self._blocks: dict[int, tuple[int, bytearray]] = {}
        self._last_uicc = False
        if self.uicc is not None:
            self.uicc.reset()

    def process(self, raw: bytes) -> bytes:
        self.apdu_count += 1
        if len(raw) < 4:
            return _sw(0x6700)
        cla, ins, p1, p2 = raw[:4]
        data = b""
        if len(raw) > 5:
            lc = raw[4]
            data = raw[5:5 + lc]
            if len(data) != lc:
                return _sw(0x6700)
        channel = _channel(cla)
        if ins == 0xC0:
            if self._last_uicc and self.uicc is not None:
                return self.uicc.process(raw)
            return self._get_response(raw)
        self.pending = None
        selects_isdr = ins == 0xA4 and p1 == 0x04 and data == ISD_R_AID
        if ins == 0xA4 and channel == 0 and not selects_isdr:
            self.isdr_channels.discard(0)  # SELECT MF/ADF… on the basic channel: the UICC's
        for_euicc = (ins in (0x70, 0xAA) or channel in self.isdr_channels or selects_isdr
                     or (ins == 0xE2 and cla & 0x80))
        self._last_uicc = not for_euicc and channel == 0 and self.uicc is not None
        if self._last_uicc and self.uicc is not None:
            return self.uicc.process(raw)
        if channel not in self.open_channels:
            return _sw(0x6881)  # logical channel not supported / not open
        try:
            if ins == 0xAA and cla & 0x80:
                return _sw(0x9000)
            if ins == 0x70:
                return self._manage_channel(channel, p1, p2)
            if ins == 0xA4:
                return self._select(channel, p1, p2, data)
            if ins == 0xE2 and cla & 0x80:
                return self._store_data(channel, p1, p2, data)
            if ins == 0xF2:  # STATUS: the card is alive
                return _sw(0x9000)
        except Es10Refused as refused:
            return _sw(refused.status)
        return _sw(0x6D00)

    def _respond(self, data: bytes) -> bytes:
        if not data:
            return _sw(0x9000)
        self.pending = data
        return bytes((0x61, min(len(data), 256) & 0xFF))

    def _get_response(self, raw: bytes) -> bytes:
        if self.pending is None:
            return _sw(0x6985)
        want = (raw[4] if len(raw) == 5 else 0) or 256
        data, rest = self.pending[:want], self.pending[want:]
        self.pending = rest or None
        if rest:
            return data + bytes((0x61, min(len(rest), 256) & 0xFF))
        return data + _sw(0x9000)

    def _manage_channel(self, channel: int, p1: int, p2: int) -> bytes:
        if p1 == 0x00 and p2 != 0:  # open the channel the terminal names: no response data
            if p2 >= MAX_CHANNELS or p2 in self.open_channels:
                return _sw(0x6A81)
            self.open_channels.add(p2)
            return _sw(0x9000)
        if p1 == 0x00:  # open: the card assigns the lowest free channel
            free = [c for c in range(1, MAX_CHANNELS) if c not in self.open_channels]
            if not free:
                return _sw(0x6A81)
            self.open_channels.add(free[0])
            return bytes([free[0]]) + _sw(0x9000)
        if p1 == 0x80:
            target = p2
            if target == 0 or target not in self.open_channels:
                return _sw(0x6A81)
            self.open_channels.discard(target)
            self.isdr_channels.discard(target)
            self._blocks.pop(target, None)
            return _sw(0x9000)
        return _sw(0x6B00)

    def _select(self, channel: int, p1: int, p2: int, data: bytes) -> bytes:
        if p1 == 0x04 and data == ISD_R_AID:
            self.isdr_channels.add(channel)
            self._blocks.pop(channel, None)
            if p2 & 0x0C == 0x0C:  # no response data asked
                return _sw(0x9000)
            # FCI (GP Card Spec §11.9.3.1): AID, proprietary data (life cycle: SECURED)
            fci = bytes([0x84, len(ISD_R_AID)]) + ISD_R_AID + bytes.fromhex("A5039F6501FF")
            return self._respond(bytes([0x6F, len(fci)]) + fci)
        self.isdr_channels.discard(channel)
        return _sw(0x6A82)

    def _store_data(self, channel: int, p1: int, p2: int, data: bytes) -> bytes:
        if channel not in self.isdr_channels:
            return _sw(0x6985)  # the ISD-R is not selected on this channel
        if p1 & 0x7F != 0x11:
            return _sw(0x6A86)  # only BER-TLV structure, no encryption (SGP.22 §5.7.1)
        expected, buffer = (0, bytearray()) if p2 == 0 else self._blocks.get(
            channel, (0, bytearray()))
        if p2 != expected:
            self._blocks.pop(channel, None)
            return _sw(0x6A86)
        buffer += data
        if len(buffer) > MAX_COMMAND:
            self._blocks.pop(channel, None)
            return _sw(0x6A84)
        if not p1 & 0x80:  # more blocks
            self._blocks[channel] = (expected + 1, buffer)
            return _sw(0x9000)
        self._blocks.pop(channel, None)
        return self._respond(self.core.handle(bytes(buffer)))

