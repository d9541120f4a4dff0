"""DER decoder of SAIP profile elements (ITU-T X.690 §8 and §10 over the TCA eUICC Profile
Package: Interoperable Format PE definitions), built once from the asn1tools-compiled schema.

Every type of the schema becomes a closure that decodes its contents from the package's bytes in
place (no copies of sub-buffers, no per-call dispatch on the type's class); the values are those
asn1tools gives — SEQUENCEs as dicts of the members present, SEQUENCE OF as lists, CHOICEs as
(name, value), OCTET STRINGs as bytes, OIDs as dotted strings, NULLs as None.

Malformed input fails fast, with the offset: every length is read from at most 4 octets and
checked against what remains of its enclosing TLV before anything is read, so each step consumes
at least one byte of a bounded buffer (time and memory proportional to the package's size); the
schema has no recursive types (checked when built), so nesting depth is the schema's. Members
must come in the schema's order (DER), once; unknown members of an extensible SEQUENCE and unknown
alternatives of an extensible CHOICE are skipped (as asn1tools does: a CHOICE gives (None, None)).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asn1tools.codecs import ber, der

from esim.errors import SaipDecodeError
from esim.saip.type_compiler import TypeCompiler

# (data, start of contents, end of contents) -> value
Content = Callable[[bytes, int, int], Any]
# how a CHOICE alternative's value is presented (see _Compiler.alternatives)
Wrap = str | Callable[[Any], Any] | None


class _Fault(Exception):
    """A decode fault at `offset`; `path` collects member names on the way out."""

    def __init__(self, message: str, offset: int) -> None:
        self.message = message
        self.offset = offset
        self.path: list[str] = []


def _header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Tag key, start and end of the contents of the TLV at `pos`, which must end by `end`."""
    tag = data[pos]
    p = pos + 1
    if tag & 0x1F == 0x1F:  # high tag number form: more octets while bit 8 is set (§8.1.2.4)
        while True:
            if p >= end:
                raise _Fault("truncated tag", pos)
            b = data[p]
            tag = (tag << 8) | b
            p += 1
            if not b & 0x80:
                break
            if p - pos > 4:
                raise _Fault("tag number too large", pos)
    if p >= end:
        raise _Fault("truncated length", pos)
    length = data[p]
    p += 1
    if length & 0x80:
        n = length & 0x7F
        if n == 0:
            raise _Fault("indefinite length; DER needs a definite one", p - 1)
        if n > 4 or p + n > end:
            raise _Fault(f"length in {n} octets does not fit", p - 1)
        length = int.from_bytes(data[p:p + n], "big")
        p += n
    if p + length > end:
        raise _Fault(f"length {length} runs {p + length - end} bytes past its enclosing TLV", pos)
    return tag, p, p + length


def _key(tag: bytes | bytearray) -> int:
    return int.from_bytes(tag, "big")


def _octets(data: bytes, start: int, end: int) -> bytes:
    return data[start:end]


def _integer(data: bytes, start: int, end: int) -> int:
    if start == end:
        raise _Fault("INTEGER with no contents octets", start)
    return int.from_bytes(data[start:end], "big", signed=True)


def _null(data: bytes, start: int, end: int) -> None:
    if start != end:
        raise _Fault("NULL with contents octets", start)


def _oid(data: bytes, start: int, end: int) -> str:
    if start == end or data[end - 1] & 0x80:
        raise _Fault("OBJECT IDENTIFIER truncated", start)
    arcs: list[int] = []
    value = 0
    for b in data[start:end]:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(map(str, head + arcs[1:]))


def _utf8(data: bytes, start: int, end: int) -> str:
    try:
        return data[start:end].decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Fault("not UTF-8", start + e.start) from None


class _Compiler(TypeCompiler[Content]):
    """Turns asn1tools type objects into content decoders; one per type object."""

    def content(self, node: Any) -> Content:
        return self.compiled(node)

    def alternatives(self, node: Any) -> dict[int, tuple[Wrap, Content | None]]:
        """Tag key -> (wrap, content decoder) for a member: one entry, or one per alternative of
        an untagged CHOICE (nested ones flattened). `wrap` is None (the value itself), a name
        (the value becomes (name, value)) or a function; the decoder None means OCTET STRING,
        the commonest type, which the loops slice in place."""
        if isinstance(node, ber.Choice):
            table: dict[int, tuple[Wrap, Content | None]] = {}
            for member in node.members:
                for key, (wrap, dec) in self.alternatives(member).items():
                    table[key] = (_wrapped(member.name, wrap), dec)
            return table
        return {_key(node.tag): (None, None if isinstance(node, der.OctetString)
                                 else self.content(node))}

    def _make(self, node: Any) -> Content:
        if isinstance(node, ber.Sequence):
            return self._sequence(node)
        if isinstance(node, der.SequenceOf | der.SetOf):
            return self._sequence_of(node)
        if isinstance(node, ber.ExplicitTag):
            return self._explicit(node)
        if isinstance(node, ber.Choice):
            raise TypeError(f"untagged CHOICE {node.name} decoded as a member, not a content")
        for kind, dec in ((der.OctetString, _octets), (der.Integer, _integer), (ber.Null, _null),
                          (ber.ObjectIdentifier, _oid), (der.UTF8String, _utf8)):
            if isinstance(node, kind):
                return dec
        raise TypeError(f"{type(node).__name__} ({node.name}) is not in the SAIP schema's types")

    def _sequence(self, node: Any) -> Content:
        members = list(node.root_members) + [m for group in node.additions or ()
                                             for m in (group if isinstance(group, list)
                                                       else (group,))]
        Entry = tuple[int, str, Wrap, Content | None, int]
        table: dict[int, Entry] = {}
        # A tag may serve two members that a mandatory one separates (X.680 §25.6); such a
        # tag's later members wait in `again`, tried when the first is already past.
        again: dict[int, list[Entry]] = {}
        for index, member in enumerate(members):
            for key, (wrap, dec) in self.alternatives(member).items():
                entry = (index, member.name, wrap, dec, 0 if member.optional else 1)
                if key in table:
                    again.setdefault(key, []).append(entry)
                else:
                    table[key] = entry
        required = [m.name for m in members if not m.optional]
        extensible = node.additions is not None
        header = _header

        def sequence(data: bytes, start: int, end: int) -> dict[str, Any]:
            value: dict[str, Any] = {}
            last = -1
            found = 0
            pos = start
            while pos < end:
                # the usual TLV inline (one-octet tag and length); any other through _header
                tag = data[pos]
                cend = data[pos + 1]
                if tag & 0x1F == 0x1F or cend & 0x80 or pos + 2 + cend > end:
                    tag, cstart, cend = header(data, pos, end)
                else:
                    cstart = pos + 2
                    cend += cstart
                entry = table.get(tag)
                if entry is None:
                    if not extensible:
                        raise _Fault(f"unexpected tag 0x{tag:x}", pos)
                    pos = cend  # an extension this schema does not know
                    continue
                index, name, wrap, dec, needed = entry
                if index <= last:
                    entry = next((e for e in again.get(tag, ()) if e[0] > last), None)
                    if entry is None:
                        raise _Fault(f"member {name} out of order or repeated", pos)
                    index, name, wrap, dec, needed = entry
                last = index
                found += needed
                if dec is None:
                    item = data[cstart:cend]
                else:
                    try:
                        item = dec(data, cstart, cend)
                    except _Fault as f:
                        f.path.append(name)
                        raise
                if wrap is None:
                    value[name] = item
                elif wrap.__class__ is str:
                    value[name] = (wrap, item)
                else:
                    value[name] = wrap(item)  # type: ignore[operator]
                pos = cend
            if found != len(required):
                missing = next(n for n in required if n not in value)
                raise _Fault(f"mandatory member {missing} missing", start)
            return value

        return sequence

    def _sequence_of(self, node: Any) -> Content:
        table = self.alternatives(node.element_type)
        header = _header
        extensible_choice = (isinstance(node.element_type, ber.Choice)
                             and node.element_type.has_extension_marker)

        def sequence_of(data: bytes, start: int, end: int) -> list[Any]:
            items: list[Any] = []
            pos = start
            while pos < end:
                tag = data[pos]
                cend = data[pos + 1]
                if tag & 0x1F == 0x1F or cend & 0x80 or pos + 2 + cend > end:
                    tag, cstart, cend = header(data, pos, end)
                else:
                    cstart = pos + 2
                    cend += cstart
                entry = table.get(tag)
                if entry is None:
                    if not extensible_choice:
                        raise _Fault(f"unexpected tag 0x{tag:x}", pos)
                    items.append((None, None))
                    pos = cend
                    continue
                wrap, dec = entry
                if dec is None:
                    item = data[cstart:cend]
                else:
                    try:
                        item = dec(data, cstart, cend)
                    except _Fault as f:
                        f.path.append(f"[{len(items)}]")
                        raise
                if wrap is None:
                    items.append(item)
                elif wrap.__class__ is str:
                    items.append((wrap, item))
                else:
                    items.append(wrap(item))  # type: ignore[operator]
                pos = cend
            return items

        return sequence_of

    def _explicit(self, node: Any) -> Content:
        inner = node.inner
        table = self.alternatives(inner)
        extensible_choice = isinstance(inner, ber.Choice) and inner.has_extension_marker
        header = _header

        def explicit(data: bytes, start: int, end: int) -> Any:
            tag, cstart, cend = header(data, start, end)
            if cend != end:
                raise _Fault("explicit tag holding more than one value", cend)
            entry = table.get(tag)
            if entry is None:
                if extensible_choice:
                    return (None, None)
                raise _Fault(f"unexpected tag 0x{tag:x}", start)
            wrap, dec = entry
            item = data[cstart:cend] if dec is None else dec(data, cstart, cend)
            return _apply(wrap, item)

        return explicit


def _wrapped(name: str, inner: Wrap) -> Wrap:
    if inner is None:
        return name
    return lambda item: (name, _apply(inner, item))


def _apply(wrap: Wrap, item: Any) -> Any:
    if wrap is None:
        return item
    if isinstance(wrap, str):
        return (wrap, item)
    return wrap(item)


class ElementDecoder:
    """Decodes the ProfileElement CHOICE (TCA SAIP §8) at any offset of a package."""

    def __init__(self, profile_element: Any) -> None:
        compiler = _Compiler()
        self._table: dict[int, tuple[str, Content]] = {}
        for member in profile_element.members:
            for key, (wrap, dec) in compiler.alternatives(member).items():
                if wrap is not None or dec is None:
                    raise TypeError(f"ProfileElement alternative {member.name} is not a SEQUENCE")
                self._table[key] = (member.name, dec)

    def decode(self, data: bytes, pos: int, end: int) -> tuple[str | None, Any, int]:
        """(alternative name, or None when this schema does not know it; value; end) of the
        element TLV at `pos`. Raises SaipDecodeError naming the offset and the member path."""
        kind = None
        if end >= len(data):  # the loops peek at the octet after a tag: keep one to spare
            data = bytes(data) + b"\x00"
        try:
            tag, cstart, cend = _header(data, pos, end)
            entry = self._table.get(tag)
            if entry is None:
                return None, None, cend
            kind, dec = entry
            return kind, dec(data, cstart, cend), cend
        except _Fault as f:
            path = ".".join([kind, *reversed(f.path)] if kind else reversed(f.path))
            raise SaipDecodeError(f"{path + ': ' if path else ''}{f.message} at offset {f.offset}",
                                  offset=f.offset, field=path or None) from None
