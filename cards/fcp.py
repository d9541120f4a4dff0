"""File Control Parameters returned by SELECT (ETSI TS 102 221 §11.1.1.3, tag 62).

Unknown tags (e.g. a vendor's 9B "linked file") are kept in `other` and otherwise ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cards.tlv import TlvError, find, parse_tlv

_STRUCTURE = {0x01: "transparent", 0x02: "linear_fixed", 0x06: "cyclic"}


class FcpError(ValueError):
    """A SELECT response is not a usable FCP template."""


@dataclass(frozen=True)
class Fcp:
    kind: str  # "DF" | "transparent" | "linear_fixed" | "cyclic"
    fid: int | None = None
    size: int | None = None  # transparent: file size; records: record_length * record_count
    record_length: int | None = None
    record_count: int | None = None
    sfi: int | None = None
    aid: bytes | None = None
    lcsi: int | None = None
    pin_refs: tuple[int, ...] = ()  # key references in the PIN status template (DFs)
    other: dict[int, bytes] = field(default_factory=dict)


def parse_fcp(data: bytes) -> Fcp:
    try:
        outer = parse_tlv(data)
        if not outer or outer[0][0] != 0x62:
            raise FcpError(f"not an FCP template: {data[:2].hex().upper()}")
        items = parse_tlv(outer[0][1])
    except TlvError as exc:
        raise FcpError(f"malformed FCP: {exc}") from None
    desc = find(items, 0x82)
    if not desc:
        raise FcpError("FCP lacks the file descriptor (tag 82)")
    fdb = desc[0]
    kind = "DF" if fdb & 56 == 56 else _STRUCTURE.get(fdb & 7, f"structure {fdb & 7}")
    rec_len = int.from_bytes(desc[2:4], "big") if len(desc) >= 5 else None
    rec_cnt = desc[4] if len(desc) >= 5 else None
    fid = find(items, 0x83)
    size = find(items, 0x80)
    sfi = find(items, 0x88)
    lcsi = find(items, 0x8A)
    pin_refs: list[int] = []
    ps = find(items, 0xC6)
    if ps:
        pin_refs = [v[0] for t, v in parse_tlv(ps) if t == 0x83 and v]
    known = {0x82, 0x83, 0x80, 0x88, 0x8A, 0x84, 0xC6}
    return Fcp(
        kind=kind,
        fid=int.from_bytes(fid, "big") if fid else None,
        size=int.from_bytes(size, "big") if size else (
            rec_len * rec_cnt if rec_len and rec_cnt else None),
        record_length=rec_len,
        record_count=rec_cnt,
        sfi=(sfi[0] >> 3) if sfi else None,
        aid=find(items, 0x84),
        lcsi=lcsi[0] if lcsi else None,
        pin_refs=tuple(pin_refs),
        other={t: v for t, v in items if t not in known},
    )
