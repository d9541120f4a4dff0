"""The virtual card's file tree (ETSI TS 102 221 §8: MF, DFs, ADFs, transparent, linear-fixed
and cyclic EFs) and the FCP it answers SELECT with (§11.1.1.3).

Access conditions are simplified from ARR references to sets of key names: a command is allowed
when any of them is satisfied ("ALW" always, "PIN1" when verified or disabled, "ADM1" when
verified, "NEV" never).

A file may be *linked* into a second DF (`Node.link`), as real cards link DF.GSM files to their
ADF.USIM counterparts: one file, reachable by both paths, so a write through one reads back
through the other. The file keeps its home parent (its `path`, its SFI); in the other DF it has
a FID only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from cards.tlv import tlv

ALW, PIN1, ADM1, NEV = ("ALW",), ("PIN1",), ("ADM1",), ("NEV",)
RECORD_KINDS = ("linear_fixed", "cyclic")
_DESCRIPTOR = {"transparent": 0x41, "linear_fixed": 0x42, "cyclic": 0x46}


@dataclass(eq=False)
class Node:
    fid: int
    name: str
    kind: str  # "DF" | "transparent" | "linear_fixed" | "cyclic"
    parent: Node | None = None
    aid: bytes | None = None
    sfi: int | None = None
    data: bytearray = field(default_factory=bytearray)
    records: list[bytearray] = field(default_factory=list)
    record_length: int = 0
    read: tuple[str, ...] = PIN1
    update: tuple[str, ...] = ADM1
    children: dict[int, Node] = field(default_factory=dict)

    def add(self, child: Node) -> Node:
        child.parent = self
        self.children[child.fid] = child
        return child

    def link(self, child: Node) -> Node:
        """Make an existing file reachable from this DF too (same object, same content)."""
        self.children[child.fid] = child
        return child

    def is_home_of(self, child: Node) -> bool:
        return child.parent is self

    @property
    def path(self) -> str:
        parts: list[str] = []
        node: Node | None = self
        while node is not None:
            parts.append(f"{node.fid:04X}")
            node = node.parent
        return "/".join(reversed(parts))

    @property
    def size(self) -> int:
        return len(self.data) if self.kind == "transparent" else (
            self.record_length * len(self.records))

    def child_by_sfi(self, sfi: int) -> Node | None:
        """SFIs belong to a file's home DF (TS 102 221 §8.3): a linked file has none here."""
        for child in self.children.values():
            if child.sfi == sfi and child.parent is self:
                return child
        return None

    def walk(self) -> list[Node]:
        """Every node once, at its home position (linked files are not repeated)."""
        return list(self._walk())

    def _walk(self) -> Iterator[Node]:
        yield self
        for child in self.children.values():
            if child.parent is self:
                yield from child._walk()

    def fill(self) -> None:
        """Erase to the FF pattern of a blank file."""
        if self.kind == "transparent":
            self.data[:] = b"\xff" * len(self.data)
        for record in self.records:
            record[:] = b"\xff" * len(record)

    def is_blank(self) -> bool:
        if self.kind == "transparent":
            return self.data.count(0xFF) == len(self.data)
        return all(r.count(0xFF) == len(r) for r in self.records)

    def fcp(self, *, in_df: Node | None = None) -> bytes:
        """The FCP template; `in_df` is the DF it was selected through (an SFI only at home)."""
        fid = self.fid
        if in_df is not None and in_df is not self.parent:  # a file linked under another FID
            fid = next((k for k, v in in_df.children.items() if v is self), fid)
        fid_tlv = tlv(0x83, fid.to_bytes(2, "big"))
        if self.kind == "DF":
            body = tlv(0x82, b"\x78\x21") + fid_tlv
            if self.aid:
                body += tlv(0x84, self.aid)
            body += tlv(0x8A, b"\x05")
            body += tlv(0xC6, tlv(0x90, b"\x60") + tlv(0x83, b"\x01") + tlv(0x83, b"\x0a"))
        elif self.kind == "transparent":
            body = (tlv(0x82, b"\x41\x21") + fid_tlv
                    + tlv(0x8A, b"\x05") + tlv(0x80, len(self.data).to_bytes(2, "big")))
        else:
            body = (tlv(0x82, bytes((_DESCRIPTOR[self.kind], 0x21))
                        + self.record_length.to_bytes(2, "big") + bytes((len(self.records),)))
                    + fid_tlv + tlv(0x8A, b"\x05")
                    + tlv(0x80, self.size.to_bytes(2, "big")))
        if self.sfi is not None and (in_df is None or in_df is self.parent):
            body += tlv(0x88, bytes((self.sfi << 3,)))
        return tlv(0x62, body)


def df(fid: int, name: str, aid: bytes | None = None) -> Node:
    return Node(fid, name, "DF", aid=aid)


def ef(fid: int, name: str, size: int, *, sfi: int | None = None, read: tuple[str, ...] = PIN1,
       update: tuple[str, ...] = ADM1, fill: bytes = b"") -> Node:
    data = bytearray(fill[:size] + b"\xff" * (size - len(fill[:size])))
    return Node(fid, name, "transparent", sfi=sfi, data=data, read=read, update=update)


def ef_records(fid: int, name: str, record_length: int, count: int, *, sfi: int | None = None,
               read: tuple[str, ...] = PIN1, update: tuple[str, ...] = ADM1,
               cyclic: bool = False) -> Node:
    return Node(fid, name, "cyclic" if cyclic else "linear_fixed", sfi=sfi,
                record_length=record_length,
                records=[bytearray(b"\xff" * record_length) for _ in range(count)],
                read=read, update=update)
