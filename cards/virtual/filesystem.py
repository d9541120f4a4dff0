"""The virtual card's file tree (ETSI TS 102 221 §8: MF, DFs, ADFs, transparent and linear-fixed
EFs) and the FCP it answers SELECT with (§11.1.1.3).

Access conditions are simplified from ARR references to sets of key names: a command is allowed
when any of them is satisfied ("ALW" always, "PIN1" when verified or disabled, "ADM1" when
verified, "NEV" never).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cards.tlv import tlv

ALW, PIN1, ADM1, NEV = ("ALW",), ("PIN1",), ("ADM1",), ("NEV",)


@dataclass(eq=False)
class Node:
    fid: int
    name: str
    kind: str  # "DF" | "transparent" | "linear_fixed"
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

    @property
    def path(self) -> str:
        parts: list[str] = []
        node: Node | None = self
        while node is not None:
            parts.append(f"{node.fid:04X}")
            node = node.parent
        return "/".join(reversed(parts))

    def child_by_sfi(self, sfi: int) -> Node | None:
        for child in self.children.values():
            if child.sfi == sfi:
                return child
        return None

    def walk(self) -> list[Node]:
        out: list[Node] = [self]
        for child in self.children.values():
            out.extend(child.walk())
        return out

    def fcp(self) -> bytes:
        if self.kind == "DF":
            body = tlv(0x82, b"\x78\x21") + tlv(0x83, self.fid.to_bytes(2, "big"))
            if self.aid:
                body += tlv(0x84, self.aid)
            body += tlv(0x8A, b"\x05")
            body += tlv(0xC6, tlv(0x90, b"\x60") + tlv(0x83, b"\x01") + tlv(0x83, b"\x0a"))
        elif self.kind == "transparent":
            body = (tlv(0x82, b"\x41\x21") + tlv(0x83, self.fid.to_bytes(2, "big"))
                    + tlv(0x8A, b"\x05") + tlv(0x80, len(self.data).to_bytes(2, "big")))
        else:
            body = (tlv(0x82, b"\x42\x21" + self.record_length.to_bytes(2, "big")
                        + bytes((len(self.records),)))
                    + tlv(0x83, self.fid.to_bytes(2, "big")) + tlv(0x8A, b"\x05")
                    + tlv(0x80, (self.record_length * len(self.records)).to_bytes(2, "big")))
        if self.sfi is not None:
            body += tlv(0x88, bytes((self.sfi << 3,)))
        return tlv(0x62, body)


def df(fid: int, name: str, aid: bytes | None = None) -> Node:
    return Node(fid, name, "DF", aid=aid)


def ef(fid: int, name: str, size: int, *, sfi: int | None = None, read: tuple[str, ...] = PIN1,
       update: tuple[str, ...] = ADM1, fill: bytes = b"") -> Node:
    data = bytearray(fill[:size] + b"\xff" * (size - len(fill[:size])))
    return Node(fid, name, "transparent", sfi=sfi, data=data, read=read, update=update)


def ef_records(fid: int, name: str, record_length: int, count: int, *, sfi: int | None = None,
               read: tuple[str, ...] = PIN1, update: tuple[str, ...] = ADM1) -> Node:
    return Node(fid, name, "linear_fixed", sfi=sfi, record_length=record_length,
                records=[bytearray(b"\xff" * record_length) for _ in range(count)],
                read=read, update=update)
