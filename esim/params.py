"""Subscriber parameters of a profile and their byte codings in the card files.

PIN/PUK/ADM values: ETSI TS 102 221 §9.5.1 (digits as ASCII, PIN padded with 'FF' to 8 bytes).
EF.ACC: 3GPP TS 31.102 §4.2.15. EF.SPN: TS 31.102 §4.2.12 (display condition, 16 bytes of name in
the GSM 7-bit default alphabet, unpacked, 'FF'-padded). PLMN with access technology (EF.HPLMNwAcT,
EF.OPLMNwAcT): TS 31.102 §4.2.5 and §4.2.54, PLMN coded as in TS 24.008 §10.5.1.13. EF.SMSP:
TS 31.102 §4.2.27 (record as in TS 51.011 §10.5.6; addresses as in TS 24.011 §8.2.5.2).

Secrets (PINs, PUKs, ADM1) never appear in the repr of SubscriberParams. Ki, OPc and OTA keys are
not parameters at all: the HSM writes them into the package (see esim.compiled.KeySlot).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, fields

from esim.errors import EsimError


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


@functools.lru_cache(maxsize=256)
def encode_plmn_list(name: str, plmns: tuple[str, ...], act: bytes, size: int) -> bytes:
    """PLMN-with-access-technology entries (5 bytes each), unused ones 'FFFFFF0000'."""
    entries = size // 5
    if len(plmns) > entries:
        raise ParameterError(name, f"has {len(plmns)} PLMNs; the file holds {entries}")
    try:
        body = b"".join(encode_plmn(p) + act for p in plmns)
    except ParameterError as e:
        raise ParameterError(name, str(e)) from None
    return body + b"\xff\xff\xff\x00\x00" * (entries - len(plmns)) + b"\xff" * (size % 5)


def encode_address(number: str) -> bytes:
    """An E.164 number ('+' for international) -> length, TON/NPI, swapped BCD (TS 24.011)."""
    international = number.startswith("+")
    digits = number[1:] if international else number
    if not (digits.isascii() and digits.isdigit() and 1 <= len(digits) <= 20):
        raise ParameterError("smsc", "must be 1 to 20 digits, optionally after '+'")
    padded = digits + "F" * (len(digits) % 2)
    bcd = bytes.fromhex("".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2)))
    return bytes([len(bcd) + 1, 0x91 if international else 0x81]) + bcd


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
