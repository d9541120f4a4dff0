"""T=0 response handling in the transport (TS 102 221 §7.3.1.1.5): 61xx, 9Fxx, 6Cxx, trace."""

from __future__ import annotations

from cards.apdu import Apdu
from cards.transport import ExchangeTransport


class Scripted(ExchangeTransport):
    def __init__(self, script: list[tuple[str, str]]) -> None:
        super().__init__(b"\x3b\x00")
        self.script = script
        self.lines: list[str] = []
        self.trace = self.lines.append

    def _exchange(self, raw: bytes) -> bytes:
        expect, reply = self.script.pop(0)
        assert raw.hex().upper() == expect
        return bytes.fromhex(reply)


def test_get_response_on_61xx() -> None:
    t = Scripted([("00A4000402" + "6F07" + "00", "611C"), ("00C000001C", "AA" * 28 + "9000")])
    data, sw = t.send(Apdu(0, 0xA4, 0, 4, b"\x6f\x07", 0))
    assert sw == 0x9000 and data == b"\xaa" * 28
    assert t.stats.apdus == 1 and t.stats.exchanges == 2


def test_get_response_on_9fxx_keeps_class() -> None:
    t = Scripted([("A088000010" + "00" * 16, "9F0C"), ("A0C000000C", "11" * 12 + "9000")])
    data, sw = t.send(Apdu(0xA0, 0x88, 0, 0, b"\x00" * 16))
    assert sw == 0x9000 and len(data) == 12


def test_resend_on_6cxx() -> None:
    t = Scripted([("00B0000000", "6C09"), ("00B0000009", "01" * 9 + "9000")])
    data, sw = t.send(Apdu(0, 0xB0, 0, 0, le=256))
    assert data == b"\x01" * 9 and sw == 0x9000 and t.stats.exchanges == 2


def test_trace_masks_secret_response() -> None:
    t = Scripted([("00880081" + "22" + "10" + "00" * 16 + "10" + "11" * 16 + "00", "6135"),
                  ("00C0000035", "DB" + "5A" * 52 + "9000")])
    t.send(Apdu(0, 0x88, 0, 0x81, b"\x10" + b"\x00" * 16 + b"\x10" + b"\x11" * 16, 0,
                secret_response=True))
    assert t.lines[-1] == "< <53 secret bytes> 90 00"
    assert "5A 5A" not in " ".join(t.lines)
