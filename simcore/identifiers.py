"""Subscriber and card identifiers: ICCID, IMSI, MSISDN, EID, and ranges of them.

- ICCID: ITU-T E.118 (2006) §4 — up to 19 digits plus a Luhn check digit (ISO/IEC 7812-1 Annex B),
  major industry identifier `89` (telecommunications). Cards store it in EF.ICCID
  (ETSI TS 102 221 §13.2) as 10 bytes of swapped-nibble BCD, padded with F.
- IMSI: ITU-T E.212 §6 — MCC (3 digits) + MNC (2 or 3 digits) + MSIN, at most 15 digits.
  EF.IMSI layout: 3GPP TS 31.102 §4.2.2.
- MSISDN: ITU-T E.164 §6 — country code + national number, at most 15 digits.
- EID: GSMA SGP.29 §2 — 32 digits, the last two check digits per ISO/IEC 7064 MOD 97-10.

Each identifier is a small immutable value; `parse` normalises and validates, raising
`InvalidIdentifier` with the field, the position of the fault and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

from simcore.errors import InvalidInput


class InvalidIdentifier(InvalidInput):
    """An identifier failed validation."""


# --- check digits -----------------------------------------------------------------------------

# Luhn doubling table for one digit: d -> 2d with digits summed.
_LUHN_DOUBLE = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_check_digit(body: str) -> int:
    """Luhn check digit (ISO/IEC 7812-1 Annex B) for a string of decimal digits."""
    total = 0
    # Rightmost body digit is doubled: it sits next to the check digit.
    double = True
    for ch in reversed(body):
        d = ord(ch) - 48
        total += _LUHN_DOUBLE[d] if double else d
        double = not double
    return (10 - total % 10) % 10


def mod97_check_digits(body30: str) -> str:
    """ISO/IEC 7064 MOD 97-10 check digits for the first 30 digits of an EID (SGP.29 §2)."""
    return f"{98 - (int(body30) * 100) % 97:02d}"


def _first_non_digit(value: str) -> int | None:
    for i, ch in enumerate(value):
        if not ("0" <= ch <= "9"):
            return i
    return None


def _require_digits(kind: str, value: str) -> None:
    bad = _first_non_digit(value)
    if bad is not None:
        raise InvalidIdentifier(
            kind,
            f"non-digit {value[bad]!r} at position {bad + 1}",
            value=value,
            position=bad + 1,
            expected="decimal digits only",
        )


# --- swapped-nibble BCD (TS 102 221 §13.2, TS 31.102 §4.2.2) --------------------------------------


def encode_swapped_bcd(digits: str, length: int | None = None) -> bytes:
    """Digits as swapped-nibble BCD (first digit in the low nibble), F-padded to `length` bytes
    (or to a whole byte when no length is given)."""
    _require_digits("bcd", digits)
    padded = digits + "F" * (len(digits) % 2)
    if length is not None:
        if len(padded) > length * 2:
            raise InvalidIdentifier("bcd", f"{len(digits)} digits do not fit in {length} bytes",
                                    expected=f"at most {length * 2} digits")
        padded += "F" * (length * 2 - len(padded))
    return bytes.fromhex("".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2)))


def decode_swapped_bcd(data: bytes) -> str:
    """Swapped-nibble BCD back to digits, stopping at the first F filler."""
    out: list[str] = []
    for b in data:
        for nibble in (b & 0x0F, b >> 4):
            if nibble == 0xF:
                return "".join(out)
            if nibble > 9:
                raise InvalidIdentifier(
                    "bcd", f"nibble {nibble:X} is not a digit", value=data.hex(),
                    expected="0-9 or F",
                )
            out.append(chr(48 + nibble))
    return "".join(out)


# --- ICCID ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Iccid:
    """An ICCID of 19 or 20 digits, the last one the Luhn check digit (E.118)."""

    digits: str

    KIND: ClassVar[str] = "iccid"

    @classmethod
    def parse(cls, value: str) -> Iccid:
        """Validate an ICCID; a trailing `F` filler (as read from some vendor files) is stripped."""
        v = value.strip()
        if v[-1:] in ("F", "f"):
            v = v[:-1]
        _require_digits("iccid", v)
        if len(v) not in (19, 20):
            raise InvalidIdentifier(
                "iccid", f"{len(v)} digits", value=v, expected="19 or 20 digits incl. check digit"
            )
        if not v.startswith("89"):
            raise InvalidIdentifier(
                "iccid", f"industry prefix {v[:2]}", value=v, position=1,
                expected="89 (telecommunications, E.118)",
            )
        expected = luhn_check_digit(v[:-1])
        if int(v[-1]) != expected:
            raise InvalidIdentifier(
                "iccid",
                f"check digit {v[-1]} where {expected} was expected",
                value=v,
                position=len(v),
                expected=f"Luhn check digit {expected}",
            )
        return cls(v)

    @classmethod
    def from_body(cls, body: str) -> Iccid:
        """Complete an 18- or 19-digit ICCID body with its Luhn check digit."""
        _require_digits("iccid", body)
        if len(body) not in (18, 19):
            raise InvalidIdentifier(
                "iccid", f"body of {len(body)} digits", value=body, expected="18 or 19 digits"
            )
        return cls.parse(body + str(luhn_check_digit(body)))

    @property
    def body(self) -> str:
        return self.digits[:-1]

    @property
    def check_digit(self) -> int:
        return int(self.digits[-1])

    @property
    def country_code(self) -> str:
        """The E.164 country code after `89` (1 to 3 digits, by E.164's structure)."""
        return e164_country_code(self.digits[2:])

    def to_bcd(self) -> bytes:
        """EF.ICCID content: 10 bytes, swapped nibbles, F filler for a 19-digit ICCID."""
        return encode_swapped_bcd(self.digits, 10)

    @classmethod
    def from_bcd(cls, data: bytes) -> Iccid:
        if len(data) != 10:
            raise InvalidIdentifier("ef_iccid", f"{len(data)} bytes", expected="10 bytes")
        return cls.parse(decode_swapped_bcd(data))

    def __str__(self) -> str:
        return self.digits


# --- IMSI -------------------------------------------------------------------------------------

# MCCs whose networks use 3-digit MNCs (ITU-T E.212 Annex / Operational Bulletin list: North
# America, parts of the Caribbean and Latin America, India's 405 range). Used only when the
# operator's range does not state the MNC length; see Imsi.parse.
MCC_WITH_3_DIGIT_MNC = frozenset(
    {
        "302", "310", "311", "312", "313", "314", "315", "316", "334", "338", "342", "344",
        "346", "348", "352", "354", "356", "358", "360", "365", "366", "376", "405", "708",
        "722", "732",
    }
)


@dataclass(frozen=True, slots=True)
class Imsi:
    """An IMSI (E.212): MCC, MNC of 2 or 3 digits, MSIN; 6 to 15 digits in all."""

    digits: str
    mnc_length: int = 2

    KIND: ClassVar[str] = "imsi"

    @classmethod
    def parse(cls, value: str, mnc_length: int | None = None) -> Imsi:
        """Validate an IMSI.

        The MNC length cannot be read from the IMSI itself: it is a property of the network.
        Pass it when the operator's range states it. Otherwise the rule is: 3 digits for the MCCs
        in MCC_WITH_3_DIGIT_MNC, 2 digits elsewhere.
        """
        v = value.strip()
        _require_digits("imsi", v)
        if not 6 <= len(v) <= 15:
            raise InvalidIdentifier(
                "imsi", f"{len(v)} digits", value=v, expected="6 to 15 digits (MCC+MNC+MSIN)"
            )
        if mnc_length is None:
            mnc_length = 3 if v[:3] in MCC_WITH_3_DIGIT_MNC else 2
        if mnc_length not in (2, 3):
            raise InvalidIdentifier("mnc_length", f"{mnc_length}", expected="2 or 3")
        if v[0] == "0" and v[:3] not in ("001", "002", "999"):
            # MCC 0xx is reserved except the test networks 001/002 (E.212 §6.2.1, TS 23.003).
            raise InvalidIdentifier("imsi", f"MCC {v[:3]} is reserved", value=v, position=1,
                                    expected="an assigned MCC or the test MCC 001")
        return cls(v, mnc_length)

    @property
    def mcc(self) -> str:
        return self.digits[:3]

    @property
    def mnc(self) -> str:
        return self.digits[3 : 3 + self.mnc_length]

    @property
    def plmn(self) -> str:
        """MCC+MNC, the home network identity."""
        return self.digits[: 3 + self.mnc_length]

    @property
    def msin(self) -> str:
        return self.digits[3 + self.mnc_length :]

    def to_ef_imsi(self) -> bytes:
        """EF.IMSI content (TS 31.102 §4.2.2): length byte, then digit 1 with the parity/type
        nibble, then swapped-nibble BCD; 9 bytes, F-padded."""
        n = len(self.digits)
        # Type of identity 001 (IMSI) in bits 1-3, bit 4 set for an odd number of digits.
        first = (int(self.digits[0]) << 4) | (0x9 if n % 2 else 0x1)
        rest = encode_swapped_bcd(self.digits[1:], 7)
        used = (n + 2) // 2  # bytes after the length byte that carry digits
        return bytes([used, first]) + rest

    @classmethod
    def from_ef_imsi(cls, data: bytes, mnc_length: int | None = None) -> Imsi:
        if len(data) < 2 or data[0] < 1 or data[0] > 8 or len(data) < 1 + data[0]:
            raise InvalidIdentifier("ef_imsi", "length byte out of range", value=data.hex(),
                                    position=1, expected="1..8 and that many bytes after it")
        if data[1] & 0x7 != 0x1:
            raise InvalidIdentifier("ef_imsi", f"type of identity {data[1] & 7}",
                                    value=data.hex(), position=2, expected="001 (IMSI)")
        odd = bool(data[1] & 0x8)
        digits = str(data[1] >> 4) + decode_swapped_bcd(data[2 : 1 + data[0]])
        if (len(digits) % 2 == 1) != odd:
            raise InvalidIdentifier("ef_imsi", "parity bit disagrees with the digit count",
                                    value=data.hex(), position=2)
        return cls.parse(digits, mnc_length)

    def __str__(self) -> str:
        return self.digits


# --- MSISDN -----------------------------------------------------------------------------------

# E.164 country codes of 1 and 2 digits; every other code has 3 digits (ITU-T E.164 Annex to
# Operational Bulletin, list of assigned country codes).
_CC_ONE = frozenset("17")
_CC_TWO = frozenset(
    {
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46",
        "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
        "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
    }
)


def e164_country_code(number: str) -> str:
    """The country code at the start of an international number (E.164 structure)."""
    if number[:1] in _CC_ONE:
        return number[:1]
    if number[:2] in _CC_TWO:
        return number[:2]
    return number[:3]


_MSISDN_STRIP = re.compile(r"[\s\-().]")


@dataclass(frozen=True, slots=True)
class Msisdn:
    """An international E.164 number: country code + national number, at most 15 digits."""

    digits: str

    KIND: ClassVar[str] = "msisdn"

    @classmethod
    def parse(cls, value: str) -> Msisdn:
        """Normalise `+`, `00` international prefix, spaces, dashes, dots, brackets; validate."""
        v = _MSISDN_STRIP.sub("", value.strip())
        if v.startswith("+"):
            v = v[1:]
        elif v.startswith("00"):
            v = v[2:]
        _require_digits("msisdn", v)
        if not 3 <= len(v) <= 15:
            raise InvalidIdentifier(
                "msisdn", f"{len(v)} digits", value=v, expected="3 to 15 digits with country code"
            )
        if v[0] == "0":
            raise InvalidIdentifier(
                "msisdn", "starts with 0: a national number, not international", value=v,
                position=1, expected="country code first (E.164)",
            )
        return cls(v)

    @property
    def country_code(self) -> str:
        return e164_country_code(self.digits)

    @property
    def national_number(self) -> str:
        return self.digits[len(self.country_code) :]

    @property
    def e164(self) -> str:
        return "+" + self.digits

    def __str__(self) -> str:
        return self.digits


# --- EID --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Eid:
    """An eUICC identifier (SGP.29): 32 digits, `89` first, MOD 97-10 check digits last."""

    digits: str

    KIND: ClassVar[str] = "eid"

    @classmethod
    def parse(cls, value: str) -> Eid:
        v = value.strip()
        _require_digits("eid", v)
        if len(v) != 32:
            raise InvalidIdentifier("eid", f"{len(v)} digits", value=v, expected="32 digits")
        if not v.startswith("89"):
            raise InvalidIdentifier("eid", f"prefix {v[:2]}", value=v, position=1, expected="89")
        expected = mod97_check_digits(v[:30])
        if v[30:] != expected:
            raise InvalidIdentifier(
                "eid",
                f"check digits {v[30:]} where {expected} were expected",
                value=v,
                position=31,
                expected=f"ISO 7064 MOD 97-10 check digits {expected}",
            )
        return cls(v)

    @classmethod
    def from_body(cls, body30: str) -> Eid:
        _require_digits("eid", body30)
        if len(body30) != 30:
            raise InvalidIdentifier("eid", f"body of {len(body30)} digits", expected="30 digits")
        return cls.parse(body30 + mod97_check_digits(body30))

    def __str__(self) -> str:
        return self.digits


# --- guessing and ranges ----------------------------------------------------------------------

IdentifierKind = Literal["iccid", "imsi", "msisdn", "eid"]
Identifier = Iccid | Imsi | Msisdn | Eid


def parse_identifier(value: str, kind: IdentifierKind) -> Identifier:
    if kind == "iccid":
        return Iccid.parse(value)
    if kind == "imsi":
        return Imsi.parse(value)
    if kind == "msisdn":
        return Msisdn.parse(value)
    if kind == "eid":
        return Eid.parse(value)
    raise InvalidIdentifier("kind", f"unknown kind {kind!r}", expected="iccid, imsi, msisdn, eid")


def guess_kind(value: str) -> IdentifierKind:
    """The most plausible kind for a value, by shape: `+` MSISDN; 32 digits EID; `89` and 19-20
    digits ICCID; 15 bare digits IMSI; `00` prefix MSISDN; 14 digits not `89` IMSI; else MSISDN."""
    v = value.strip()
    if v.startswith("+"):
        return "msisdn"
    digits = _MSISDN_STRIP.sub("", v)
    bare = digits == v
    digits = digits.rstrip("Ff")
    if len(digits) == 32:
        return "eid"
    if digits.startswith("89") and len(digits) in (19, 20):
        return "iccid"
    if bare and len(digits) == 15:
        return "imsi"
    if digits.startswith("00"):
        return "msisdn"
    if bare and len(digits) == 14 and not digits.startswith("89"):
        return "imsi"
    return "msisdn"


T = TypeVar("T", Iccid, Imsi, Msisdn)


@dataclass(frozen=True, slots=True)
class IdentifierRange(Generic[T]):
    """A contiguous range of identifiers of one kind and one length, ends included.

    For ICCIDs the range runs over the body (the digits before the check digit); each member
    gets its own Luhn digit. IMSIs and MSISDNs run over all their digits.
    """

    kind: IdentifierKind
    first: str  # the varying digits of the first member (ICCID: body)
    last: str
    mnc_length: int | None = None

    @classmethod
    def of(
        cls, kind: IdentifierKind, first: str, last: str, mnc_length: int | None = None
    ) -> IdentifierRange[T]:
        if kind == "iccid":
            a, b = Iccid.parse(first).body, Iccid.parse(last).body
        elif kind == "imsi":
            ia, ib = Imsi.parse(first, mnc_length), Imsi.parse(last, mnc_length)
            if ia.plmn != ib.plmn:
                raise InvalidIdentifier("range", f"ends in different PLMNs {ia.plmn} and {ib.plmn}")
            a, b, mnc_length = ia.digits, ib.digits, ia.mnc_length
        elif kind == "msisdn":
            a, b = Msisdn.parse(first).digits, Msisdn.parse(last).digits
        else:
            raise InvalidIdentifier("kind", f"no ranges of {kind}", expected="iccid, imsi, msisdn")
        if len(a) != len(b):
            raise InvalidIdentifier(
                "range", f"ends of different lengths ({len(a)} and {len(b)} digits)",
                expected="first and last of the same length",
            )
        if int(a) > int(b):
            raise InvalidIdentifier("range", f"first {first} is after last {last}",
                                    expected="first <= last")
        return cls(kind, a, b, mnc_length)

    def __len__(self) -> int:
        return int(self.last) - int(self.first) + 1

    @property
    def size(self) -> int:
        return len(self)

    def value_at(self, offset: int) -> str:
        """The identifier (ICCID with its check digit) at `offset` from the start."""
        if not 0 <= offset < len(self):
            raise IndexError(offset)
        v = str(int(self.first) + offset).zfill(len(self.first))
        if self.kind == "iccid":
            return v + str(luhn_check_digit(v))
        return v

    def values(self, start: int = 0, count: int | None = None) -> Iterator[str]:
        """Members as strings, fast (no per-member validation: the ends were validated)."""
        n = len(self) - start if count is None else min(count, len(self) - start)
        width = len(self.first)
        base = int(self.first) + start
        if self.kind == "iccid":
            for i in range(n):
                v = str(base + i).zfill(width)
                yield v + str(luhn_check_digit(v))
        else:
            for i in range(n):
                yield str(base + i).zfill(width)

    def __iter__(self) -> Iterator[str]:
        return self.values()

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        v = value[:-1] if self.kind == "iccid" else value
        return len(v) == len(self.first) and int(self.first) <= int(v) <= int(self.last)

    def overlaps(self, other: IdentifierRange[T]) -> bool:
        if self.kind != other.kind or len(self.first) != len(other.first):
            return False
        return int(self.first) <= int(other.last) and int(other.first) <= int(self.last)
