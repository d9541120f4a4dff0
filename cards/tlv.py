"""Minimal BER-TLV (ISO/IEC 7816-4 §5.2, ETSI TS 102 221 §11.1.1.3 FCP templates).

Enough for FCP, EF.DIR application templates and the ISIM files: one- or two-byte tags,
definite lengths up to 65535.
"""

from __future__ import annotations


class TlvError(ValueError):
    """Bytes are not a well-formed BER-TLV sequence."""


def parse_tlv(data: bytes) -> list[tuple[int, bytes]]:
    """Parse a sequence of TLVs -> [(tag, value)], skipping 00/FF padding between objects."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        if data[i] in (0x00, 0xFF):
            i += 1
            continue
        tag = data[i]
        i += 1
        if tag & 0x1F == 0x1F:
            if i >= len(data):
                raise TlvError("truncated tag")
            tag = (tag << 8) | data[i]
            i += 1
        if i >= len(data):
            raise TlvError(f"tag {tag:X} has no length")
        length = data[i]
        i += 1
        if length == 0x81 or length == 0x82:
            n = length - 0x80
            length = int.from_bytes(data[i : i + n], "big")
            i += n
        elif length > 0x80:
            raise TlvError(f"unsupported length form {length:02X}")
        if i + length > len(data):
            raise TlvError(f"tag {tag:X} claims {length} bytes, {len(data) - i} left")
        out.append((tag, bytes(data[i : i + length])))
        i += length
    return out


def tlv(tag: int, value: bytes) -> bytes:
    """Encode one TLV."""
    tag_bytes = tag.to_bytes(2 if tag > 0xFF else 1, "big")
    n = len(value)
    if n < 0x80:
        length = bytes((n,))
    elif n <= 0xFF:
        length = bytes((0x81, n))
    else:
        length = bytes((0x82,)) + n.to_bytes(2, "big")
    return tag_bytes + length + value


def find(items: list[tuple[int, bytes]], tag: int) -> bytes | None:
    for t, v in items:
        if t == tag:
            return v
    return None
