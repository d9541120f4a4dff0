"""Subscriber parameters of a profile and their byte codings in the card files.

PIN/PUK/ADM values: ETSI TS 102 221 §9.5.1 (digits as ASCII, PIN padded with 'FF' to 8 bytes).
EF.ACC: 3GPP TS 31.102 §4.2.15. EF.SPN: TS 31.102 §4.2.12 (display condition, 16 bytes of name in
the GSM 7-bit default alphabet, unpacked, 'FF'-padded). PLMN with access technology (EF.HPLMNwAcT,
EF.OPLMNwAcT): TS 31.102 §4.2.5 and §4.2.54, PLMN coded as in TS 24.008 §10.5.1.13. EF.SMSP:
TS 31.102 §4.2.27 (record as in TS 51.011 §10.5.6; addresses as in TS 24.011 §8.2.5.2). EF.EHPLMN:
TS 31.102 §4.2.84 (3 bytes per PLMN, 'FFFFFF' unused). EF.MSISDN: TS 31.102 §4.2.26, records laid
out as EF.ADN (TS 51.011 §10.5.1): alpha identifier, length, TON/NPI, 10 bytes of dialling number
BCD, capability/configuration identifier, extension record identifier. ISIM identities: esim.ims.

Secrets (PINs, PUKs, ADM1) never appear in the repr of SubscriberParams. Ki, OPc and OTA keys are
not parameters at all: the HSM writes them into the package (see esim.compiled.KeySlot).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, fields

from esim.errors import EsimError
from esim.saip.coding import swap_nibbles, unswap_nibbles


class ParameterError(EsimError, ValueError):
    """A subscriber parameter is malformed; names the parameter, never shows a secret value."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(f"{name}: {message}")


SECRET_PARAMETERS = frozenset({"pin1", "puk1", "pin2", "puk2", "adm1"})
# Characters whose GSM 7-bit default alphabet code (TS 23.038 §6.2.1) equals their ASCII code.
_GSM_SAME_AS_ASCII = re.compile(r"[A-Za-z0-9 !\"#%&'()*+,\-./:;<=>?]*\Z")


@dataclass(frozen=True, slots=True)
class SubscriberParams:
    """What one subscriber's profile differs in. Unset optional values take the template's."""

    iccid: str
    imsi: str
    pin1: str = field(default="0000", repr=False)
    puk1: str = field(default="", repr=False)
    pin2: str = field(default="", repr=False)
    puk2: str = field(default="", repr=False)
    adm1: str = field(default="", repr=False)
    acc: int | None = None  # EF.ACC bit mask; None: class (last IMSI digit), TS 22.011 §4.2
    spn: str | None = None
    hplmn: tuple[str, ...] | None = None
    oplmn: tuple[str, ...] | None = None
    smsc: str | None = None
    ehplmn: tuple[str, ...] | None = None  # EF.EHPLMN; None: the template's (default: none)
    msisdn: str | None = None  # EF.MSISDN record 1; None: the record stays empty
    # ISIM (TS 31.103). None: derived from the IMSI (TS 23.003 §13); for ims_domain the
    # template's ims_domain comes first when it has one.
    impi: str | None = None
    impu: tuple[str, ...] | None = None
    ims_domain: str | None = None
    # MNC digits of the IMSI, if the caller knows them (the inventory's IMSI range): checked
    # against the template's (EF.AD), which the ISIM identities are derived with.
    mnc_length: int | None = None
    # 5G SUCI (TS 31.102 §4.4.11): EF.SUCI_Calc_Info content (simcore.suci.suci_calc_info: the
    # operator's public keys, key ids, scheme priority), also DF.SAIP's copy; None: the
    # template's (the null-scheme only). The routing indicator: None, the template's ("0").
    suci_calc_info: bytes | None = None
    routing_indicator: str | None = None

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                          if f.name not in SECRET_PARAMETERS)
        return f"SubscriberParams({shown})"


def encode_pin(name: str, value: str) -> bytes:
    """PIN: 4-8 digits as ASCII, padded with 'FF' to 8 bytes."""
    if not (value.isascii() and value.isdigit() and 4 <= len(value) <= 8):
        raise ParameterError(name, "must be 4 to 8 decimal digits")
    return value.encode().ljust(8, b"\xff")


def encode_puk(name: str, value: str) -> bytes:
    """PUK: exactly 8 digits as ASCII."""
    if not (value.isascii() and value.isdigit() and len(value) == 8):
        raise ParameterError(name, "must be 8 decimal digits")
    return value.encode()


def encode_adm(name: str, value: str) -> bytes:
    """ADM key: 8 ASCII digits, or 16 hex digits giving the 8 bytes."""
    if value.isascii() and value.isdigit() and len(value) == 8:
        return value.encode()
    if len(value) == 16 and re.fullmatch(r"[0-9A-Fa-f]{16}", value):
        return bytes.fromhex(value)
    raise ParameterError(name, "must be 8 decimal digits or 16 hex digits")


def encode_acc(acc: int | None, imsi: str) -> bytes:
    if acc is None:
        if not imsi[-1:].isdigit():
            raise ParameterError("acc", "no class given and the IMSI does not end in a digit")
        acc = 1 << int(imsi[-1])
    if not 0 <= acc <= 0xFFFF:
        raise ParameterError("acc", "must be a 16-bit access control class mask")
    return acc.to_bytes(2, "big")


@functools.lru_cache(maxsize=256)
def encode_spn(spn: str, display_condition: int = 0x01, size: int = 17) -> bytes:
    if len(spn) > size - 1 or not _GSM_SAME_AS_ASCII.match(spn):
        raise ParameterError("spn", f"must be at most {size - 1} characters of A-Z, a-z, 0-9, "
                                    "space and basic punctuation")
    return bytes([display_condition]) + spn.encode("ascii").ljust(size - 1, b"\xff")


def encode_plmn(plmn: str) -> bytes:
    """'MCCMNC' (5 or 6 digits) -> 3 bytes, TS 24.008 §10.5.1.13."""
    if not (plmn.isascii() and plmn.isdigit() and len(plmn) in (5, 6)):
        raise ParameterError("plmn", f"{plmn!r} must be MCC and MNC, 5 or 6 digits")
    mcc, mnc = plmn[:3], plmn[3:]
    mnc3 = mnc[2] if len(mnc) == 3 else "F"
    return bytes.fromhex(mcc[1] + mcc[0] + mnc3 + mcc[2] + mnc[1] + mnc[0])


def decode_plmn(data: bytes) -> str:
    """3 bytes (TS 24.008 §10.5.1.13) -> 'MCCMNC'; inverse of encode_plmn."""
    if len(data) != 3:
        raise ParameterError("plmn", f"must be 3 bytes, not {len(data)}")
    h = data.hex().upper()
    digits = h[1] + h[0] + h[3] + h[5] + h[4] + ("" if h[2] == "F" else h[2])
    if not digits.isdigit():
        raise ParameterError("plmn", f"'{h}' is not a BCD PLMN")
    return digits


@functools.lru_cache(maxsize=256)
def encode_plmn_list(name: str, plmns: tuple[str, ...], act: bytes, size: int) -> bytes:
    """PLMN entries, each followed by `act` (EF.HPLMNwAcT, EF.OPLMNwAcT: 2 bytes of access
    technology, unused entries 'FFFFFF0000'; EF.EHPLMN: no `act`, unused entries 'FFFFFF')."""
    width = 3 + len(act)
    entries = size // width
    if len(plmns) > entries:
        raise ParameterError(name, f"has {len(plmns)} PLMNs; the file holds {entries}")
    try:
        body = b"".join(encode_plmn(p) + act for p in plmns)
    except ParameterError as e:
        raise ParameterError(name, str(e)) from None
    unused = b"\xff\xff\xff" + bytes(len(act))
    return body + unused * (entries - len(plmns)) + b"\xff" * (size % width)


def decode_plmn_list(data: bytes, act_length: int = 0) -> list[str]:
    """The PLMNs of a PLMN list file, unused ('FFFFFF') entries left out."""
    width = 3 + act_length
    return [decode_plmn(data[i:i + 3]) for i in range(0, len(data) - width + 1, width)
            if data[i:i + 3] != b"\xff\xff\xff"]


def encode_address(number: str, name: str = "smsc", max_digits: int = 20) -> bytes:
    """A number ('+' for international) -> length of what follows, TON/NPI, swapped BCD
    (TS 24.011 §8.2.5.2, TS 24.008 §10.5.4.7: ISDN/telephony numbering plan)."""
    international = number.startswith("+")
    digits = number[1:] if international else number
    if not (digits.isascii() and digits.isdigit() and 1 <= len(digits) <= max_digits):
        raise ParameterError(name, f"must be 1 to {max_digits} digits, optionally after '+'")
    bcd = swap_nibbles(digits + "F" * (len(digits) % 2))
    return bytes([len(bcd) + 1, 0x91 if international else 0x81]) + bcd


def decode_address(data: bytes) -> str:
    """Inverse of encode_address: length, TON/NPI, swapped BCD -> number ('+' if international)."""
    if len(data) < 2 or not 2 <= data[0] <= len(data) - 1:
        raise ParameterError("address", "the length byte does not match the data")
    digits = unswap_nibbles(data[2:1 + data[0]])
    if digits[-1:] == "F":
        digits = digits[:-1]
    if not digits.isdigit():
        raise ParameterError("address", "the number is not BCD digits")
    return ("+" if data[1] & 0x70 == 0x10 else "") + digits


@functools.lru_cache(maxsize=256)
def encode_smsp(smsc: str, record_length: int) -> bytes:
    """One EF.SMSP record holding only the service centre address (indicators 'FD')."""
    alpha = record_length - 28
    if alpha < 0:
        raise ParameterError("smsc", f"EF.SMSP record of {record_length} bytes is under 28")
    address = encode_address(smsc)
    if len(address) > 12:
        raise ParameterError("smsc", "does not fit the 12-byte TS-Service Centre Address")
    return (b"\xff" * alpha + b"\xfd" + b"\xff" * 12 + address.ljust(12, b"\xff")
            + b"\xff\xff\xff")


# EF.ADN-like record (TS 51.011 §10.5.1): the alpha identifier, then these 14 bytes.
_DIALLING_TAIL = 14


@functools.lru_cache(maxsize=256)
def encode_msisdn(msisdn: str | None, record_length: int) -> bytes:
    """One EF.MSISDN record: empty alpha identifier, the number (at most 20 digits in the
    10-byte dialling number field), no CCP2 or extension ('FF'); None: an empty record."""
    alpha = record_length - _DIALLING_TAIL
    if alpha < 0:
        raise ParameterError("msisdn", f"EF.MSISDN record of {record_length} bytes is under "
                                       f"{_DIALLING_TAIL}")
    if msisdn is None:
        return b"\xff" * record_length
    number = encode_address(msisdn, "msisdn", max_digits=20)
    return b"\xff" * alpha + number.ljust(12, b"\xff") + b"\xff\xff"


def decode_msisdn(record: bytes) -> str | None:
    """The number in an EF.MSISDN record; None when the record is empty."""
    if len(record) < _DIALLING_TAIL:
        raise ParameterError("msisdn", f"a record of {len(record)} bytes is under "
                                       f"{_DIALLING_TAIL}")
    tail = record[-_DIALLING_TAIL:]
    return None if tail[0] == 0xFF else decode_address(tail[:12])
