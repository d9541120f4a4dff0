"""DER encoder of SAIP profile elements (ITU-T X.690 §8 and §10 over the TCA eUICC Profile
Package: Interoperable Format PE definitions), built once from the asn1tools-compiled schema.

Each type of the schema becomes a closure that returns its complete TLV as bytes: members in the
schema's order (those present in the value; absent mandatory ones are an error), definite lengths
in the fewest octets, INTEGERs in the fewest two's-complement octets. The bytes are those
asn1tools' own encoder gives for the same value — tests compare both on the TS.48 packages and on
personalised ones — at a fraction of its per-node cost (no method dispatch per type class, no
bytearray copies per level). Members the schema does not know are ignored, as asn1tools does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from asn1tools.codecs import ber, der

from esim.saip.type_compiler import TypeCompiler

# value -> its complete TLV
Encode = Callable[[Any], bytes]

_SHORT = [bytes((n,)) for n in range(0x80)]


def _length(n: int) -> bytes:
    """Definite length octets, short form below 128, else the fewest long-form octets (§10.1)."""
    if n < 0x80:
        return _SHORT[n]
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


@functools.lru_cache(maxsize=4096)
def _integer(n: int) -> bytes:
    return n.to_bytes((8 + (n + (n < 0)).bit_length()) // 8, "big", signed=True)


@functools.lru_cache(maxsize=1024)
def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2:
        raise ValueError("an OBJECT IDENTIFIER needs two arcs")
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


class _Compiler(TypeCompiler[Encode]):
    """Turns asn1tools type objects into TLV encoders; one per type object."""

    def encoder(self, node: Any) -> Encode:
        return self.compiled(node)

    def _make(self, node: Any) -> Encode:
        if isinstance(node, ber.Choice):
            return self._choice(node)
        tag = bytes(node.tag)
        if isinstance(node, ber.Sequence):
            return self._sequence(node, tag)
        if isinstance(node, der.SequenceOf | der.SetOf):
            if isinstance(node.element_type, ber.Choice):  # e.g. File: one call per item less
                alternatives = self.alternatives(node.element_type)
                return lambda value: _tlv(tag, b"".join([alternatives[name](item)
                                                         for name, item in value]))
            element = self.encoder(node.element_type)
            return lambda value: _tlv(tag, b"".join(map(element, value)))
        if isinstance(node, ber.ExplicitTag):
            inner = self.encoder(node.inner)
            return lambda value: _tlv(tag, inner(value))
        if isinstance(node, der.OctetString):
            def octets(value: bytes) -> bytes:
                n = len(value)
                return tag + (_SHORT[n] if n < 0x80 else _length(n)) + value
            return octets
        if isinstance(node, der.Integer):
            return lambda value: _tlv(tag, _integer(value))
        if isinstance(node, ber.Null):
            null = tag + b"\x00"
            return lambda value: null
        if isinstance(node, ber.ObjectIdentifier):
            return lambda value: _tlv(tag, _oid(value))
        if isinstance(node, der.UTF8String):
            return lambda value: _tlv(tag, value.encode("utf-8"))
        raise TypeError(f"{type(node).__name__} ({node.name}) is not in the SAIP schema's types")

    def alternatives(self, node: Any) -> dict[str, Encode]:
        return {member.name: self.encoder(member) for member in node.members}

    def _choice(self, node: Any) -> Encode:
        alternatives = self.alternatives(node)

        def choice(value: tuple[str, Any]) -> bytes:
            name, item = value
            return alternatives[name](item)

        return choice

    def _sequence(self, node: Any, tag: bytes) -> Encode:
        members = list(node.root_members) + [m for group in node.additions or ()
                                             for m in (group if isinstance(group, list)
                                                       else (group,))]
        # name -> (index, encoder, 1 if mandatory, OCTET STRING tag or CHOICE alternatives):
        # the commonest members are encoded inline, without a call of their own
        order: dict[str, tuple[int, Encode, int, Any]] = {}
        for i, m in enumerate(members):
            inline = (bytes(m.tag) if isinstance(m, der.OctetString)
                      else self.alternatives(m) if isinstance(m, ber.Choice) else None)
            order[m.name] = (i, self.encoder(m), 0 if m.optional else 1, inline)
        in_order = [(m.name, self.encoder(m)) for m in members]
        required = [m.name for m in members if not m.optional]

        def sequence(value: dict[str, Any]) -> bytes:
            # Decoded values hold their members in the schema's order: walk the value, and
            # fall back to the schema's order only when a caller built it otherwise.
            parts: list[bytes] | None = []
            last = -1
            found = 0
            for name, item in value.items():
                entry = order.get(name)
                if entry is None:
                    continue
                index, encode, needed, inline = entry
                if index < last:
                    parts = None
                    break
                last = index
                found += needed
                if inline is None:
                    parts.append(encode(item))  # type: ignore[union-attr]
                elif inline.__class__ is bytes:
                    n = len(item)
                    parts.append(inline + (_SHORT[n] if n < 0x80 else _length(n))  # type: ignore[union-attr]
                                 + item)
                else:
                    parts.append(inline[item[0]](item[1]))  # type: ignore[union-attr]
            if parts is None:
                parts = [encode(value[n]) for n, encode in in_order if n in value]
                found = sum(n in value for n in required)
            if found != len(required):
                missing = next(n for n in required if n not in value)
                raise KeyError(f"mandatory member {missing} missing")
            content = b"".join(parts)
            n = len(content)
            return tag + (_SHORT[n] if n < 0x80 else _length(n)) + content

        return sequence


def _tlv(tag: bytes, content: bytes) -> bytes:
    n = len(content)
    return tag + (_SHORT[n] if n < 0x80 else _length(n)) + content


class ElementEncoder:
    """Encodes ProfileElement CHOICE values (kind, value) (TCA SAIP §8) to DER."""

    def __init__(self, profile_element: Any) -> None:
        self.encode: Callable[[tuple[str, Any]], bytes] = _Compiler().encoder(profile_element)
