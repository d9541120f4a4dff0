"""Byte codings of the identifiers a profile carries.

ICCID: ITU-T E.118 digits; the SAIP ProfileHeader holds them as plain BCD (TCA SAIP §8.2.1),
EF.ICCID as nibble-swapped BCD (ETSI TS 102 221 §13.2), both padded with 'F' to 10 bytes.
IMSI: EF.IMSI, 3GPP TS 31.102 §4.2.2 (length byte, then parity/type nibble and swapped digits).
"""

from __future__ import annotations

from esim.errors import EsimError


class IdentifierCodingError(EsimError, ValueError):
    """An ICCID or IMSI (or its bytes) is malformed."""


def _digits(value: str, what: str, lo: int, hi: int) -> str:
    if not (value.isascii() and value.isdigit() and lo <= len(value) <= hi):
        raise IdentifierCodingError(f"{what} must be {lo}-{hi} decimal digits, got {value!r}")
    return value


def _swap(hexdigits: str) -> bytes:
    return bytes.fromhex("".join(hexdigits[i + 1] + hexdigits[i]
                                 for i in range(0, len(hexdigits), 2)))


def _unswap(data: bytes) -> str:
    return "".join(f"{b & 0xF:X}{b >> 4:X}" for b in data)


def iccid_to_header(iccid: str) -> bytes:
    """ICCID digits -> the 10 bytes of ProfileHeader.iccid (plain BCD, 'F'-padded)."""
    return bytes.fromhex(_digits(iccid, "ICCID", 18, 20).ljust(20, "F"))


def iccid_from_header(data: bytes) -> str:
    return _strip_pad(data.hex().upper(), "ProfileHeader.iccid")


def iccid_to_ef(iccid: str) -> bytes:
    """ICCID digits -> EF.ICCID content (nibble-swapped BCD, 'F'-padded, 10 bytes)."""
    return _swap(_digits(iccid, "ICCID", 18, 20).ljust(20, "F"))


def iccid_from_ef(data: bytes) -> str:
    return _strip_pad(_unswap(data), "EF.ICCID")


def _strip_pad(hexdigits: str, what: str) -> str:
    digits = hexdigits.rstrip("F")
    if not digits.isdigit():
        raise IdentifierCodingError(f"{what} is not BCD digits padded with 'F'")
    return digits


def imsi_to_ef(imsi: str) -> bytes:
    """IMSI digits -> EF.IMSI content (9 bytes)."""
    digits = _digits(imsi, "IMSI", 6, 15)
    nibbles = ("9" if len(digits) % 2 else "1") + digits  # b4: odd number of digits; type 001
    nibbles = nibbles.ljust(16, "F")
    return bytes([len(nibbles.rstrip("F")) // 2 + len(nibbles.rstrip("F")) % 2]) + _swap(nibbles)


def imsi_from_ef(data: bytes) -> str:
    if len(data) != 9 or not 1 <= data[0] <= 8:
        raise IdentifierCodingError("EF.IMSI must be 9 bytes with a length byte of 1 to 8")
    nibbles = _unswap(data[1:1 + data[0]])
    odd = nibbles[0] == "9"
    if nibbles[0] not in "19":
        raise IdentifierCodingError("EF.IMSI: the first nibble is not the IMSI type (1 or 9)")
    digits = nibbles[1:] if odd else nibbles[1:].rstrip("F")
    if not digits.isdigit():
        raise IdentifierCodingError("EF.IMSI holds a non-digit")
    return digits
