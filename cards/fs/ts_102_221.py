"""MF-level files of ETSI TS 102 221 (V17) §13: EF.DIR, EF.ICCID, EF.PL."""

from __future__ import annotations

from typing import Any, ClassVar

from cards.fs.base import EF, EncodeError, pad
from cards.tlv import find, parse_tlv, tlv
from simcore.identifiers import decode_swapped_bcd, encode_swapped_bcd


class EF_DIR(EF):
    """§13.1 EF.DIR: one application template (61: 4F AID, 50 label) per record."""

    fid = 0x2F00
    sfi: ClassVar[int | None] = 0x1E
    name = "EF.DIR"
    df = "MF"
    structure = "linear_fixed"
    size = 38
    record_count = 4
    examples = (
        ("61184F10A0000000871002FFFFFFFF8907090000500455534D31" + "FF" * 12,
         {"aid": "A0000000871002FFFFFFFF8907090000", "label": "USM1"}),
        ("61144F10A0000000871004FFFFFFFF89070900005000",
         {"aid": "A0000000871004FFFFFFFF8907090000", "label": ""}),
        ("FF" * 38, None),
    )

    @classmethod
    def decode(cls, data: bytes) -> dict[str, Any] | None:
        if not data or data[0] != 0x61:
            return None
        inner = parse_tlv(parse_tlv(data)[0][1])
        aid, label = find(inner, 0x4F), find(inner, 0x50)
        return {"aid": (aid or b"").hex().upper(),
                "label": None if label is None else label.decode("utf-8", "replace")}

    @classmethod
    def encode(cls, value: dict[str, Any] | None, size: int | None = None) -> bytes:
        if value is None:
            return pad(b"", size, cls.name)
        body = tlv(0x4F, bytes.fromhex(value["aid"]))
        if value.get("label") is not None:
            body += tlv(0x50, value["label"].encode("utf-8"))
        return pad(tlv(0x61, body), size, cls.name)


class EF_ICCID(EF):
    """§13.2 EF.ICCID: the ICCID in swapped-nibble BCD, 10 bytes, F-padded."""

    fid = 0x2FE2
    sfi: ClassVar[int | None] = 0x02
    name = "EF.ICCID"
    df = "MF"
    size = 10
    examples = (
        ("98940000000000000010", "89490000000000000001"),
        ("989400000000000000F1", "8949000000000000001"),
    )

    @classmethod
    def decode(cls, data: bytes) -> str:
        return decode_swapped_bcd(data)

    @classmethod
    def encode(cls, value: str, size: int | None = None) -> bytes:
        if not 18 <= len(value) <= 20:
            raise EncodeError(f"an ICCID has 18 to 20 digits, got {len(value)}")
        return encode_swapped_bcd(value, size or cls.size)


class EF_PL(EF):
    """§13.4 EF.PL: preferred languages, two ISO 639 letters per entry, FF-padded."""

    fid = 0x2F05
    sfi: ClassVar[int | None] = 0x05
    name = "EF.PL"
    df = "MF"
    size = 10
    examples = (("656E6465FFFFFFFFFFFF", ["en", "de"]), ("FFFF", []),)

    @classmethod
    def decode(cls, data: bytes) -> list[str]:
        out = []
        for i in range(0, len(data) - 1, 2):
            if data[i : i + 2] != b"\xff\xff":
                out.append(data[i : i + 2].decode("ascii", "replace"))
        return out

    @classmethod
    def encode(cls, value: list[str], size: int | None = None) -> bytes:
        if any(len(code) != 2 or not code.isascii() for code in value):
            raise EncodeError("language codes are two ASCII letters")
        return pad("".join(value).encode("ascii"), size, cls.name)
