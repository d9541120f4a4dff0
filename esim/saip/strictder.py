"""Bounded SEQUENCE OF / SET OF decoding for the compiled SAIP schema (ITU-T X.690 §8.10, §8.12:
the contents are complete encodings of the component type, one after the other, and nothing else).

asn1tools' loop decodes components while it has not reached the end of the contents; when a
component's tag does not match, its decoder returns a marker without consuming a byte and the loop
appends that marker forever (one changed byte in a TS.48 package grew the process past 500 MB).
This replacement, bound to the compiled schema's own type objects like esim.saip.fastder (nothing
global changes), refuses a component that does not decode or does not end inside the contents.
Character strings (X.680 §41) that are not in their encoding raise the same decode error, at the
offending byte, instead of a bare UnicodeDecodeError.
"""

from __future__ import annotations

import types
from typing import Any

from asn1tools.codecs.ber import TAG_MISMATCH, DecodeError
from asn1tools.codecs.der import ArrayType, StringType


def _array_content(self: Any, data: Any, offset: int, length: int) -> tuple[list[Any], int]:
    decoded: list[Any] = []
    end = offset + length
    decode = self.element_type.decode
    while offset < end:
        value, after = decode(data, offset)
        if value is TAG_MISMATCH or after <= offset:
            raise DecodeError(f"unexpected tag 0x{data[offset]:02x} in a {self.type_name}",
                              offset=offset)
        if after > end:
            raise DecodeError(f"a component runs {after - end} bytes past its {self.type_name}",
                              offset=offset)
        decoded.append(value)
        offset = after
    return decoded, offset


def _string_content(self: Any, data: Any, offset: int, length: int) -> tuple[str, int]:
    end = offset + length
    try:
        return data[offset:end].decode(self.ENCODING), end
    except UnicodeDecodeError as e:  # asn1tools lets it through, without an offset
        raise DecodeError(f"not {self.ENCODING} in a {self.type_name}",
                          offset=offset + e.start) from None


def bound_arrays(root: Any) -> int:
    """Bind the bounded loop to every SEQUENCE OF / SET OF under `root`, and a decode error with
    its offset to every character string; returns how many type objects changed."""
    seen: set[int] = set()
    changed = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ArrayType):
            node.decode_content = types.MethodType(_array_content, node)
            changed += 1
        elif isinstance(node, StringType):
            node.decode_content = types.MethodType(_string_content, node)
            changed += 1
        for attr in ("root_members", "members", "additions"):
            for member in getattr(node, attr, None) or ():
                stack.extend(member if isinstance(member, list) else (member,))
        stack.extend(getattr(node, attr, None) for attr in ("element_type", "inner"))
    return changed
