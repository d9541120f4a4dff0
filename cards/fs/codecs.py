"""Codecs shared by several EFs: dialling numbers (3GPP TS 31.102 §4.4.2.3 / TS 24.008
§10.5.4.7 BCD number), service tables (TS 31.102 §4.2.8 bitmaps, TS 51.011 §10.3.7 pairs),
and TLV-wrapped strings (TS 31.103 §4.2.2).
"""

from __future__ import annotations

from cards.fs.base import EncodeError
from cards.tlv import parse_tlv, tlv
from simcore.identifiers import decode_swapped_bcd, encode_swapped_bcd

TON_NPI_INTERNATIONAL = 0x91
TON_NPI_UNKNOWN = 0x81


def encode_number(number: str, bcd_len: int = 10) -> bytes:
    """"+4412345" -> length byte, TON/NPI, BCD digits padded to `bcd_len` (1 + 1 + bcd_len)."""
    international = number.startswith("+")
    digits = number[1:] if international else number
    if not digits.isdigit():
        raise EncodeError(f"a dialling number is digits with an optional leading +: {number!r}")
    if len(digits) > 2 * bcd_len:
        raise EncodeError(f"{len(digits)} digits exceed {2 * bcd_len}")
    ton = TON_NPI_INTERNATIONAL if international else TON_NPI_UNKNOWN
    body = encode_swapped_bcd(digits)
    return bytes((1 + len(body), ton)) + encode_swapped_bcd(digits, bcd_len)


def decode_number(data: bytes) -> str | None:
    """Inverse of `encode_number`; None for an empty field (length FF or 0)."""
    n = data[0]
    if n in (0xFF, 0):
        return None
    digits = decode_swapped_bcd(data[2 : 1 + n])
    return ("+" if data[1] == TON_NPI_INTERNATIONAL else "") + digits


def encode_bitmap(services: list[int], size: int | None) -> bytes:
    top = max(services, default=0)
    n = size if size is not None else (top + 7) // 8
    out = bytearray(n)
    for s in services:
        if not 1 <= s <= 8 * n:
            raise EncodeError(f"service {s} outside 1..{8 * n}")
        out[(s - 1) // 8] |= 1 << ((s - 1) % 8)
    return bytes(out)


def decode_bitmap(data: bytes) -> list[int]:
    return [i * 8 + b + 1 for i, byte in enumerate(data) for b in range(8) if byte >> b & 1]


def encode_tlv_text(tag: int, text: str | None, size: int | None) -> bytes:
    from cards.fs.base import pad

    body = b"" if text is None else tlv(tag, text.encode("utf-8"))
    return pad(body, size, "text")


def decode_tlv_text(tag: int, data: bytes) -> str | None:
    if not data or data[0] == 0xFF:
        return None
    for t, v in parse_tlv(data):
        if t == tag:
            return v.decode("utf-8")
    return None
