"""ES10 over a card transport, LPAd side (GSMA SGP.22 v2.x §5.7.1 "Transport of ES10
functions"; ETSI TS 102 221 §11.1.17 MANAGE CHANNEL, §11.1.19 TERMINAL CAPABILITY;
GlobalPlatform Card Specification v2.3 §11.11 STORE DATA).

`Es10Session` opens a logical channel, selects the ISD-R on it and sends each ES10 command as
STORE DATA blocks (P1 11 more / 91 last, P2 the block number, CLA 80–83 or C0–CF by channel);
the response comes back through the sender's 61xx / GET RESPONSE handling. It sends through any
`ApduSender` (simcore.euicc.apdu_sender adapts a cards Transport: the virtual eUICC in process,
or any eUICC in a PC/SC reader); esim does not depend on cards.
"""

from __future__ import annotations

from typing import Protocol

from esim.errors import EsimError

ISD_R_AID = bytes.fromhex("A0000005591010FFFFFFFF8900000100")
DEFAULT_BLOCK = 120  # bytes of ES10 data per STORE DATA; any 6..255 works (SGP.22 §5.7.1)
# TERMINAL CAPABILITY: eUICC-related terminal capabilities (TS 102 221 §11.1.19.2.4, tag 83):
# local profile management with the LPA in the terminal
TERMINAL_CAPABILITY = bytes.fromhex("A903830107")


class ApduSender(Protocol):
    """Sends one command APDU, returns (response data, SW) after 61xx / 6Cxx handling."""

    def __call__(self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"",
                 le: int | None = None) -> tuple[bytes, int]: ...


class Es10Error(EsimError):
    """The card refused an ES10 step: `step` names it, `sw` is the status word."""

    def __init__(self, step: str, sw: int) -> None:
        super().__init__(f"{step}: status word {sw:04X}")
        self.step = step
        self.sw = sw


def _cla(channel: int, proprietary: bool) -> int:
    base = 0x80 if proprietary else 0x00
    if channel < 4:
        return base | channel
    return base | 0x40 | (channel - 4)


class Es10Session:
    """One logical channel to the ISD-R. Use as a context manager, or `open()` / `close()`."""

    def __init__(self, send: ApduSender, *, block_size: int = DEFAULT_BLOCK,
                 terminal_capability: bool = True) -> None:
        if not 6 <= block_size <= 255:
            raise ValueError(f"block_size {block_size}: STORE DATA blocks are 6..255 bytes")
        self.send = send
        self.block_size = block_size
        self.terminal_capability = terminal_capability
        self.channel: int | None = None

    def __enter__(self) -> Es10Session:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, step: str, cla: int, ins: int, p1: int, p2: int, data: bytes = b"",
              le: int | None = None) -> bytes:
        answer, sw = self.send(cla, ins, p1, p2, data, le)
        if sw != 0x9000:
            raise Es10Error(step, sw)
        return answer

    def open(self) -> int:
        if self.terminal_capability:
            self._send("TERMINAL CAPABILITY", 0x80, 0xAA, 0x00, 0x00, TERMINAL_CAPABILITY)
        data = self._send("MANAGE CHANNEL open", 0x00, 0x70, 0x00, 0x00, le=1)
        if len(data) != 1 or not 1 <= data[0] <= 19:
            raise Es10Error("MANAGE CHANNEL open", 0x6F00)
        self.channel = data[0]
        self._send("SELECT ISD-R", _cla(self.channel, False), 0xA4, 0x04, 0x00, ISD_R_AID, le=0)
        return self.channel

    def close(self) -> None:
        if self.channel is not None:
            channel, self.channel = self.channel, None
            self._send("MANAGE CHANNEL close", 0x00, 0x70, 0x80, channel)

    def call(self, command: bytes) -> bytes:
        """One ES10 function: its command data in, its response data out (maybe empty)."""
        if self.channel is None:
            raise Es10Error("ES10 call on a closed session", 0x6985)
        if not command:
            raise ValueError("an ES10 command is never empty")
        cla = _cla(self.channel, True)
        blocks = [command[i:i + self.block_size]
                  for i in range(0, len(command), self.block_size)]
        if len(blocks) > 256:
            raise ValueError(f"{len(command)} bytes need more than 256 STORE DATA blocks")
        out = b""
        for number, block in enumerate(blocks):
            last = number == len(blocks) - 1
            out = self._send(f"STORE DATA block {number}", cla, 0xE2, 0x91 if last else 0x11,
                             number, block, le=0 if last else None)
        return out
