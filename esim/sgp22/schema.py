"""The SGP.22 ASN.1 module (GSMA SGP.22 v2.x Annex H, RSPDefinitions), compiled once with
asn1tools for DER and cached; typed decode/encode.

Fidelity over canonical form, as for SAIP (esim.saip.schema): signatures cover the bytes a peer
sent, so a decode/encode round trip must give those bytes back. Members with a DEFAULT are
compiled as OPTIONAL (an SM-DP+ that writes `profileClass operational` explicitly keeps it), and
capability BIT STRINGs carry no named bits (so trailing zero bits survive).

asn1tools decodes an OBJECT IDENTIFIER whose first arc is 2 and second arc is ≥ 40 (such as
2.999.10, an SM-DP+ OID in the test PKI) wrongly, e.g. as 26.39.10 (X.690 §8.19.4: the first
subidentifier is 40·X + Y only for X < 2). The compiled schema's OID types decode with the rule
below instead; encoding was already right.
"""

from __future__ import annotations

import functools
import types
from importlib import resources
from typing import Any

import asn1tools
from asn1tools.codecs import ber

from esim.sgp22.errors import Asn1Error

MODULE_FILE = "RSPDefinitions.asn"
MAX_DER_LENGTH = 4 * 1024 * 1024  # a BPP is tens of kB; refuse anything absurd before parsing


def _decode_oid_content(self: Any, data: bytearray, offset: int, length: int) -> tuple[str, int]:
    end = offset + length
    arcs: list[int] = []
    value = 0
    for i in range(offset, end):
        value = (value << 7) | (data[i] & 0x7F)
        if not data[i] & 0x80:
            arcs.append(value)
            value = 0
    if not arcs or data[end - 1] & 0x80:
        raise ber.DecodeError("truncated OBJECT IDENTIFIER")
    first = arcs[0]
    head = [first // 40, first % 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:]), end


@functools.cache
def spec() -> Any:
    """The compiled RSPDefinitions (asn1tools `Specification`, DER codec)."""
    text = resources.files("esim.sgp22").joinpath(MODULE_FILE).read_text(encoding="utf-8")
    compiled = asn1tools.compile_string(text, "der")
    seen: set[int] = set()

    def walk(node: Any) -> None:
        if node is None or id(node) in seen:
            return
        seen.add(id(node))
        if getattr(node, "default", None) is not None:
            node.default = None
            node.optional = True
        if isinstance(node, ber.ObjectIdentifier):
            node.decode_content = types.MethodType(_decode_oid_content, node)
        for attr in ("root_members", "members", "additions"):
            for member in getattr(node, attr, None) or ():
                for m in member if isinstance(member, list) else (member,):
                    walk(m)
        for attr in ("element_type", "inner", "_type"):
            walk(getattr(node, attr, None))

    for compiled_type in compiled.types.values():
        walk(compiled_type.type)
    return compiled


def decode(type_name: str, data: bytes) -> Any:
    """Decode one DER value of `type_name`; the whole input must be that one value."""
    if len(data) > MAX_DER_LENGTH:
        raise Asn1Error(type_name, f"{len(data)} bytes is more than {MAX_DER_LENGTH} allowed")
    compiled = spec()
    if type_name not in compiled.types:
        raise Asn1Error(type_name, "no such type in RSPDefinitions")
    try:
        value, length = compiled.decode_with_length(type_name, data)
    except (asn1tools.Error, ValueError, IndexError, TypeError) as exc:
        raise Asn1Error(type_name, f"cannot decode: {exc}") from None
    if length != len(data):
        raise Asn1Error(type_name, f"{len(data) - length} trailing bytes after the value "
                        f"(at offset {length})")
    return value


def encode(type_name: str, value: Any) -> bytes:
    """Encode `value` as DER of `type_name`."""
    try:
        return bytes(spec().encode(type_name, value))
    except KeyError:
        raise Asn1Error(type_name, "no such type in RSPDefinitions") from None
    except (asn1tools.Error, ValueError, TypeError) as exc:
        raise Asn1Error(type_name, f"cannot encode: {exc}") from None
