"""Command APDUs (ISO/IEC 7816-4 §5.1, short length fields only; ETSI TS 102 221 §10.1).

An `Apdu` knows its case from its fields: no data and no Le (case 1), Le only (case 2), data
only (case 3), data and Le (case 4). `secret` marks command data that a trace must mask (VERIFY
codes, key writes); `secret_response` marks response data to mask (CK/IK).
"""

from __future__ import annotations

from dataclasses import dataclass


class ApduError(ValueError):
    """An APDU cannot be built or parsed."""


@dataclass(frozen=True)
class Apdu:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None  # None: no Le field; 0..256 (0 and 256 both mean 256 on the wire)
    secret: bool = False
    secret_response: bool = False

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ApduError(f"{name.upper()} {value} does not fit in one byte")
        if len(self.data) > 255:
            raise ApduError(f"{len(self.data)} data bytes do not fit a short APDU")
        if self.le is not None and not 0 <= self.le <= 256:
            raise ApduError(f"Le {self.le} is outside 0..256")

    @property
    def case(self) -> int:
        if not self.data:
            return 1 if self.le is None else 2
        return 3 if self.le is None else 4

    def to_bytes(self) -> bytes:
        out = bytes((self.cla, self.ins, self.p1, self.p2))
        if self.data:
            out += bytes((len(self.data),)) + self.data
        if self.le is not None:
            out += bytes((self.le & 0xFF,))
        return out

    def with_le(self, le: int) -> Apdu:
        return Apdu(self.cla, self.ins, self.p1, self.p2, self.data, le, self.secret,
                    self.secret_response)

    def masked_hex(self, max_data: int | None = None) -> str:
        """Hex for a trace; secret data shows as its length only; `max_data` shortens data."""
        head = bytes((self.cla, self.ins, self.p1, self.p2)).hex(" ").upper()
        parts = [head]
        if self.data:
            parts.append(f"{len(self.data):02X}")
            if self.secret:
                parts.append(f"<{len(self.data)} secret bytes>")
            elif max_data is not None and len(self.data) > max_data:
                parts.append(self.data[:max_data].hex(" ").upper() + " …")
            else:
                parts.append(self.data.hex(" ").upper())
        if self.le is not None:
            parts.append(f"{self.le & 0xFF:02X}")
        return " ".join(parts)


def parse_apdu(raw: bytes) -> Apdu:
    """Wire bytes -> Apdu (short form). Used by the virtual card."""
    if len(raw) < 4:
        raise ApduError(f"an APDU has at least 4 bytes, got {len(raw)}")
    cla, ins, p1, p2 = raw[:4]
    body = raw[4:]
    if not body:
        return Apdu(cla, ins, p1, p2)
    if len(body) == 1:
        return Apdu(cla, ins, p1, p2, le=body[0] or 256)
    lc = body[0]
    if lc == 0 or len(body) not in (1 + lc, 2 + lc):
        raise ApduError(f"Lc {lc} does not match {len(body) - 1} body bytes")
    data = bytes(body[1 : 1 + lc])
    le = (body[1 + lc] or 256) if len(body) == 2 + lc else None
    return Apdu(cla, ins, p1, p2, data, le)


def sw_hex(sw: int) -> str:
    return f"{sw >> 8:02X} {sw & 0xFF:02X}"
