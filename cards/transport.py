"""APDU transport: the `Transport` protocol and the T=0 response handling every card needs.

ETSI TS 102 221 §7.3.1.1.5 / ISO/IEC 7816-3 §10.3: on 61xx (and 9Fxx in the GSM class A0,
TS 51.011 §9.4.1) the host fetches the response with GET RESPONSE; on 6Cxx it resends the
command with Le = xx. pcscd passes these procedure bytes through, so the host does it here.
The PC/SC implementation lives in `cards.pcsc` so this module never needs pyscard.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from cards.apdu import Apdu, sw_hex

TraceSink = Callable[[str], None]


@dataclass
class Stats:
    """Counters: `apdus` is commands asked for, `exchanges` adds GET RESPONSE and resends."""

    apdus: int = 0
    exchanges: int = 0
    by_ins: dict[int, int] = field(default_factory=dict)

    def reset(self) -> None:
        self.apdus = 0
        self.exchanges = 0
        self.by_ins.clear()


class Transport(Protocol):
    """Anything that carries APDUs to a card."""

    atr: bytes
    stats: Stats

    def send(self, apdu: Apdu) -> tuple[bytes, int]:
        """Send one command; return (response data, SW) after 61xx/6Cxx/9Fxx handling."""
        ...


class ExchangeTransport:
    """A Transport over a raw `exchange(bytes) -> bytes` (response data + SW1 SW2)."""

    def __init__(self, atr: bytes, trace: TraceSink | None = None) -> None:
        self.atr = atr
        self.stats = Stats()
        self.trace = trace

    def _exchange(self, raw: bytes) -> bytes:
        raise NotImplementedError

    def _wire(self, apdu: Apdu, mask_response: bool) -> tuple[bytes, int]:
        if self.trace:
            self.trace(f"> {apdu.masked_hex()}")
        resp = self._exchange(apdu.to_bytes())
        self.stats.exchanges += 1
        data, sw = resp[:-2], (resp[-2] << 8) | resp[-1]
        if self.trace:
            shown = (f"<{len(data)} secret bytes> " if mask_response and data
                     else (data.hex(" ").upper() + " " if data else ""))
            self.trace(f"< {shown}{sw_hex(sw)}")
        return data, sw

    def send(self, apdu: Apdu) -> tuple[bytes, int]:
        self.stats.apdus += 1
        self.stats.by_ins[apdu.ins] = self.stats.by_ins.get(apdu.ins, 0) + 1
        data, sw = self._wire(apdu, apdu.secret_response)
        if (sw >> 8) == 0x6C:
            data, sw = self._wire(apdu.with_le(sw & 0xFF or 256), apdu.secret_response)
        out = data
        while (sw >> 8) in (0x61, 0x9F):
            get = Apdu(apdu.cla, 0xC0, 0x00, 0x00, le=(sw & 0xFF) or 256,
                       secret_response=apdu.secret_response)
            data, sw = self._wire(get, apdu.secret_response)
            out += data
        return out, sw
