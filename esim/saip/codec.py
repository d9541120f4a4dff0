"""DER codec of SAIP profile packages: a package is the concatenation of ProfileElement values
(TCA eUICC Profile Package: Interoperable Format, §8 "Profile Element definitions").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from esim.errors import SaipDecodeError
from esim.saip.element import UNKNOWN, ProfileElement
from esim.saip.schema import decoder, encoder


def split_tlvs(data: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each top-level DER TLV in `data`."""
    pos = 0
    end = len(data)
    while pos < end:
        start = pos
        if data[pos] & 0x1F == 0x1F:  # high tag number form
            pos += 1
            while pos < end and data[pos] & 0x80:
                pos += 1
        pos += 1
        if pos >= end:
            raise SaipDecodeError(f"truncated tag of the profile element at offset {start}",
                                  offset=start)
        first = data[pos]
        pos += 1
        if first < 0x80:
            length = first
        elif first == 0x80:
            raise SaipDecodeError(f"indefinite length at offset {start}; DER needs a definite one",
                                  offset=start)
        else:
            n = first & 0x7F
            if n > 4 or pos + n > end:  # a 12 kB package never needs more than 2 length octets
                raise SaipDecodeError(f"the length of the profile element at offset {start} takes "
                                      f"{n} octets (at most 4, inside the package)", offset=start)
            length = int.from_bytes(data[pos:pos + n], "big")
            pos += n
        pos += length
        if pos > end:
            raise SaipDecodeError(
                f"the profile element at offset {start} runs {pos - end} bytes past the end",
                offset=start)
        yield start, pos


def decode_element(der: bytes) -> ProfileElement:
    """Decode one ProfileElement TLV (nothing may follow it)."""
    der = bytes(der)
    kind, value, end = decoder().decode(der, 0, len(der))
    if end != len(der):
        raise SaipDecodeError(f"{len(der) - end} bytes after the profile element", offset=end)
    return _element(kind, value, der, 0, end)


def _element(kind: str | None, value: Any, data: bytes, start: int, end: int) -> ProfileElement:
    if kind is None:  # an alternative added after this module's version (CHOICE is extensible)
        return ProfileElement(UNKNOWN, {"der": data[start:end]})
    return ProfileElement(kind, value)


def decode(data: bytes) -> list[ProfileElement]:
    """Decode a profile package into its profile elements, in order.

    Time and memory are bounded by the package's size: every length is checked against what
    remains before anything is read, and any malformed element raises SaipDecodeError naming
    its number, its offset and the offset of the fault.
    """
    data = bytes(data)
    read = decoder().decode
    elements = []
    for i, (start, end) in enumerate(split_tlvs(data)):
        try:
            kind, value, _ = read(data, start, end)
        except SaipDecodeError as e:
            raise SaipDecodeError(f"profile element #{i + 1} at offset {start}: {e}",
                                  offset=e.offset, field=e.field, element=i + 1) from None
        elements.append(_element(kind, value, data, start, end))
    return elements


def encode_element(element: ProfileElement | tuple[str, dict[str, Any]]) -> bytes:
    """Encode one ProfileElement (members exactly as given; see esim.saip.schema)."""
    value = element.as_choice() if isinstance(element, ProfileElement) else element
    if value[0] == UNKNOWN:
        return bytes(value[1]["der"])
    try:
        return encoder().encode(value)
    except (KeyError, TypeError, AttributeError, ValueError, OverflowError) as e:
        name = value[0]
        raise SaipDecodeError(f"cannot encode the {name} element: {type(e).__name__}") from None


def encode(elements: Iterable[ProfileElement]) -> bytes:
    """Encode profile elements into a package (their DER concatenated)."""
    return b"".join(encode_element(e) for e in elements)
