"""Swapped-nibble BCD as used on UICC files (ETSI TS 102 221 §13.2 EF.ICCID, 3GPP TS 31.102
§4.2.2 EF.IMSI, TS 24.008 §10.5.1.3 PLMN identities): the first digit sits in the low nibble,
'F' pads an odd digit count.

A tiny local helper so `cards` does not wait on `simcore.identifiers`; the two may be unified.
"""

from __future__ import annotations


class BcdError(ValueError):
    """A string is not a digit string, or bytes are not swapped-nibble BCD."""


def encode_swapped(digits: str, length: int | None = None) -> bytes:
    """Digits -> swapped-nibble BCD, padded with F nibbles to `length` bytes (if given)."""
    if not all(c in "0123456789" for c in digits):
        raise BcdError(f"not a digit string: {digits!r}")
    nibbles = digits + "F" * (len(digits) % 2)
    if length is not None:
        if len(nibbles) > 2 * length:
            raise BcdError(f"{len(digits)} digits do not fit in {length} bytes")
        nibbles += "F" * (2 * length - len(nibbles))
    return bytes.fromhex("".join(nibbles[i + 1] + nibbles[i] for i in range(0, len(nibbles), 2)))


def decode_swapped(data: bytes) -> str:
    """Swapped-nibble BCD -> digits; stops at the first F nibble (padding)."""
    out: list[str] = []
    for byte in data:
        for nibble in (byte & 0x0F, byte >> 4):
            if nibble == 0xF:
                return "".join(out)
            if nibble > 9:
                raise BcdError(f"nibble {nibble:X} is not a decimal digit in {data.hex().upper()}")
            out.append(str(nibble))
    return "".join(out)
