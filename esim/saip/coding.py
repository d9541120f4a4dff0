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


_NIBBLES_SWAPPED = bytes(((b & 0x0F) << 4) | (b >> 4) for b in range(256))


def swap_nibbles(hexdigits: str) -> bytes:
    """Swapped-nibble BCD, esim's one codec for it (EF.ICCID, EF.IMSI, dialling numbers):
    an even number of hex digits ('F' padding included), the first of each pair in the low
    nibble. The caller checks the digits."""
    return bytes.fromhex(hexdigits).translate(_NIBBLES_SWAPPED)


def unswap_nibbles(data: bytes) -> str:
    """Inverse of swap_nibbles: upper-case hex digits, padding included."""
    return data.translate(_NIBBLES_SWAPPED).hex().upper()


def iccid_to_header(iccid: str) -> bytes:
    """ICCID digits -> the 10 bytes of ProfileHeader.iccid (plain BCD, 'F'-padded)."""
    return bytes.fromhex(_digits(iccid, "ICCID", 18, 20).ljust(20, "F"))


def iccid_from_header(data: bytes) -> str:
    return _strip_pad(data.hex().upper(), "ProfileHeader.iccid")


def iccid_to_ef(iccid: str) -> bytes:
    """ICCID digits -> EF.ICCID content (nibble-swapped BCD, 'F'-padded, 10 bytes)."""
    return swap_nibbles(_digits(iccid, "ICCID", 18, 20).ljust(20, "F"))


def iccid_from_ef(data: bytes) -> str:
    return _strip_pad(unswap_nibbles(data), "EF.ICCID")


def _strip_pad(hexdigits: str, what: str) -> str:
    digits = hexdigits.rstrip("F")
    if not digits.isdigit():
        raise IdentifierCodingError(f"{what} is not BCD digits padded with 'F'")
    return digits


def imsi_to_ef(imsi: str) -> bytes:
    """IMSI digits -> EF.IMSI content (9 bytes)."""
    digits = _digits(imsi, "IMSI", 6, 15)
    nibbles = ("9" if len(digits) % 2 else "1") + digits  # b4: odd number of digits; type 001
    used = (len(nibbles) + 1) // 2  # bytes holding the type nibble and the digits
    return bytes([used]) + swap_nibbles(nibbles.ljust(16, "F"))


def imsi_from_ef(data: bytes) -> str:
    if len(data) != 9 or not 1 <= data[0] <= 8:
        raise IdentifierCodingError("EF.IMSI must be 9 bytes with a length byte of 1 to 8")
    nibbles = unswap_nibbles(data[1:1 + data[0]])
    odd = nibbles[0] == "9"
    if nibbles[0] not in "19":
        raise IdentifierCodingError("EF.IMSI: the first nibble is not the IMSI type (1 or 9)")
    digits = nibbles[1:] if odd else nibbles[1:].rstrip("F")
    if not digits.isdigit():
        raise IdentifierCodingError("EF.IMSI holds a non-digit")
    return digits
