"""Slicing DER (ITU-T X.690 §8.1) without decoding it: the exact bytes of a value's parts.

SGP.22 §5.6 / §5.7 signatures cover the bytes of a data object *as received* (euiccSigned1 inside
AuthenticateServerResponse, euiccSigned2 inside PrepareDownloadResponse, …), so the verifier takes
those bytes from the message instead of re-encoding a decoded value.
"""

from __future__ import annotations

from dataclasses import dataclass

from esim.sgp22.errors import Asn1Error


def encode_length(n: int) -> bytes:
    """BER/DER definite length (X.690 §8.1.3)."""
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode_tlv(tag: bytes, value: bytes) -> bytes:
    """tag ‖ length ‖ value."""
    return tag + encode_length(len(value)) + value


@dataclass(frozen=True)
class Tlv:
    """One TLV of `data`: tag bytes, and the offsets of its value and its end."""

    tag: bytes
    start: int
    value_start: int
    end: int

    def raw(self, data: bytes) -> bytes:
        """The whole TLV (tag, length, value)."""
        return data[self.start:self.end]

    def value(self, data: bytes) -> bytes:
        return data[self.value_start:self.end]


def read_tlv(data: bytes, offset: int = 0, limit: int | None = None, where: str = "DER") -> Tlv:
    """The TLV at `offset`; it must end by `limit` (default: the end of `data`)."""
    end_limit = len(data) if limit is None else limit
    i = offset
    if i >= end_limit:
        raise Asn1Error(where, f"no tag at offset {offset}")
    i += 1
    if data[offset] & 0x1F == 0x1F:
        while i < end_limit and data[i] & 0x80:
            i += 1
        i += 1
    if i >= end_limit:
        raise Asn1Error(where, f"truncated tag or length at offset {offset}")
    tag = data[offset:i]
    first = data[i]
    i += 1
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or i + n > end_limit:
            raise Asn1Error(where, f"bad length at offset {i - 1}")
        length = int.from_bytes(data[i:i + n], "big")
        i += n
    if i + length > end_limit:
        raise Asn1Error(where, f"value of tag {tag.hex().upper()} at offset {offset} runs "
                        f"past the end ({length} bytes announced)")
    return Tlv(tag, offset, i, i + length)


def children(data: bytes, parent: Tlv, where: str = "DER") -> list[Tlv]:
    """The TLVs inside a constructed `parent`, in order."""
    out: list[Tlv] = []
    offset = parent.value_start
    while offset < parent.end:
        child = read_tlv(data, offset, parent.end, where)
        out.append(child)
        offset = child.end
    return out


def path(data: bytes, *indexes: int, where: str = "DER") -> Tlv:
    """The TLV reached from the outermost one by child indexes, e.g. path(d, 0, 1)."""
    node = read_tlv(data, 0, where=where)
    for index in indexes:
        kids = children(data, node, where)
        if index >= len(kids):
            raise Asn1Error(where, f"no element {index} inside tag {node.tag.hex().upper()}")
        node = kids[index]
    return node
