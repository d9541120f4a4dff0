"""Activation codes, GSMA SGP.22 (RSP Technical Specification) §4.1.

    1$<SM-DP+ address>$<matching ID>[$<SM-DP+ OID>[$<confirmation-code-required flag>]]

Fields are separated by '$', which no field may contain. The SM-DP+ address is an FQDN (with
`lab=True` also `host:port`, see `_check_address`), the matching ID (AC_Token) uses the
characters 0-9, A-Z and '-', the OID is a dotted-decimal object identifier and the flag is '1'
when a confirmation code is required; a flag without an OID leaves the OID empty ("…$$1"). The
'LPA:' prefix belongs only to QR codes and URIs (§4.1.2), never to the activation code itself:
`ActivationCode.parse` refuses it, `ActivationCode.from_uri` requires it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from esim.errors import ActivationCodeError

AC_FORMAT = "1"
DELIMITER = "$"
LPA_PREFIX = "LPA:"
MATCHING_ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-"
# Implementation limit (ES2+ carries the matching ID as a string; keep codes QR-friendly).
MAX_MATCHING_ID_LENGTH = 255

_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_MATCHING_ID = re.compile(r"[0-9A-Z-]+\Z")
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+\Z")
# Crockford's base-32 alphabet: no I, L, O, U, so codes read aloud or retyped stay unambiguous.
_GEN_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

_FIELDS = ("AC_Format", "SM-DP+ Address", "Matching ID", "SM-DP+ OID",
           "Confirmation Code Required Flag")


def _check_address(address: str, position: int | None, lab: bool) -> None:
    """An FQDN (SGP.22 §4.1), or with `lab` also a lab address `host:port` — an FQDN,
    `localhost` or an IPv4 address with an explicit port: not SGP.22's form (an SM-DP+ is
    reached on 443 by its FQDN), accepted so an LPA on the same machine can reach a lab SM-DP+
    (LPAs such as lpac take it)."""
    host, sep, port = address.rpartition(":")
    if not sep or not lab:
        _check_fqdn(address, position)
        return
    field = "SM-DP+ Address"
    where = None if position is None else position + len(host) + 1
    if not (port.isascii() and port.isdigit() and port[0] != "0" and int(port) <= 65535):
        raise ActivationCodeError(field, f"port {port!r} is not a number from 1 to 65535", where)
    if host == "localhost" or _IPV4.match(host):
        return
    _check_fqdn(host, position)


_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                   r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\Z")


def _check_fqdn(address: str, position: int | None) -> None:
    field = "SM-DP+ Address"
    if not address:
        raise ActivationCodeError(field, "is empty", position)
    if len(address) > 253:
        raise ActivationCodeError(field, f"is {len(address)} characters; an FQDN has at most 253",
                                  position)
    labels = address.split(".")
    if len(labels) < 2:
        raise ActivationCodeError(field, "is not a fully qualified domain name (no '.')", position)
    offset = 0
    for label in labels:
        where = None if position is None else position + offset
        if not label:
            raise ActivationCodeError(field, "has an empty label", where)
        if not _LABEL.match(label):
            bad = next((c for c in label if not (c.isascii() and (c.isalnum() or c == "-"))), None)
            why = (f"has the character {bad!r} in label {label!r}" if bad is not None
                   else f"label {label!r} must be 1-63 characters, not start or end with '-'")
            raise ActivationCodeError(field, why, where)
        offset += len(label) + 1
    if labels[-1].isdigit():
        raise ActivationCodeError(field, "is an IP address or ends in a numeric label, not an FQDN",
                                  position)


def _check_matching_id(matching_id: str, position: int | None) -> None:
    field = "Matching ID"
    if not matching_id:
        raise ActivationCodeError(field, "is empty", position)
    if len(matching_id) > MAX_MATCHING_ID_LENGTH:
        raise ActivationCodeError(
            field, f"is {len(matching_id)} characters; at most {MAX_MATCHING_ID_LENGTH}", position)
    if not _MATCHING_ID.match(matching_id):
        i = next(i for i, c in enumerate(matching_id) if c not in MATCHING_ID_ALPHABET)
        where = None if position is None else position + i
        why = f"has the character {matching_id[i]!r}; only 0-9, A-Z and '-' are allowed"
        raise ActivationCodeError(field, why, where)


def _check_oid(oid: str, position: int | None) -> None:
    if not _OID.match(oid):
        why = f"{oid!r} is not a dotted-decimal object identifier"
        raise ActivationCodeError("SM-DP+ OID", why, position)


@dataclass(frozen=True, slots=True)
class ActivationCode:
    """One activation code; construct it directly (fields are validated) or with `parse`."""

    smdp_address: str
    matching_id: str
    smdp_oid: str | None = None
    confirmation_code_required: bool = False
    # Accept a lab SM-DP+ address (`host:port`, see _check_address); not part of the code.
    lab: bool = field(default=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, value in (("SM-DP+ Address", self.smdp_address),
                            ("Matching ID", self.matching_id), ("SM-DP+ OID", self.smdp_oid or "")):
            if DELIMITER in value:
                raise ActivationCodeError(name, "must not contain '$'")
        _check_address(self.smdp_address, None, self.lab)
        _check_matching_id(self.matching_id, None)
        if self.smdp_oid is not None:
            _check_oid(self.smdp_oid, None)

    def __str__(self) -> str:
        return self.to_string()

    def to_string(self) -> str:
        """The activation code itself, without the 'LPA:' prefix."""
        parts = [AC_FORMAT, self.smdp_address, self.matching_id]
        if self.smdp_oid is not None or self.confirmation_code_required:
            parts.append(self.smdp_oid or "")
        if self.confirmation_code_required:
            parts.append("1")
        return DELIMITER.join(parts)

    def to_uri(self) -> str:
        """The form carried in QR codes and links: 'LPA:' + the activation code (§4.1.2)."""
        return LPA_PREFIX + self.to_string()

    @classmethod
    def parse(cls, text: str, *, lab: bool = False) -> ActivationCode:
        """Parse an activation code; raises ActivationCodeError naming field and position.
        `lab`: accept a lab SM-DP+ address (`host:port`)."""
        if text.upper().startswith(LPA_PREFIX):
            raise ActivationCodeError(
                "Activation Code", "starts with 'LPA:', which belongs only to QR codes and URIs; "
                "use ActivationCode.from_uri", 0)
        return cls._parse(text, 0, lab)

    @classmethod
    def from_uri(cls, text: str, *, lab: bool = False) -> ActivationCode:
        """Parse the 'LPA:1$…' form found in QR codes and URIs."""
        if not text.startswith(LPA_PREFIX):
            raise ActivationCodeError("Activation Code", "does not start with 'LPA:'", 0)
        return cls._parse(text[len(LPA_PREFIX):], len(LPA_PREFIX), lab)

    @classmethod
    def _parse(cls, text: str, base: int, lab: bool = False) -> ActivationCode:
        if not text:
            raise ActivationCodeError("Activation Code", "is empty", base)
        if any(c.isspace() for c in text):
            i = next(i for i, c in enumerate(text) if c.isspace())
            raise ActivationCodeError("Activation Code", "contains white space", base + i)
        parts = text.split(DELIMITER)
        starts = []
        pos = base
        for part in parts:
            starts.append(pos)
            pos += len(part) + 1
        if len(parts) > len(_FIELDS):
            raise ActivationCodeError(
                "Activation Code", f"has {len(parts)} fields; at most {len(_FIELDS)}",
                starts[len(_FIELDS)] - 1)
        if parts[0] != AC_FORMAT:
            raise ActivationCodeError("AC_Format", f"is {parts[0]!r}; only '1' is defined",
                                      starts[0])
        if len(parts) < 3:
            missing = _FIELDS[len(parts)]
            raise ActivationCodeError(missing, "is missing", pos - 1)
        _check_address(parts[1], starts[1], lab)
        _check_matching_id(parts[2], starts[2])
        oid: str | None = None
        required = False
        if len(parts) >= 4:
            if parts[3]:
                _check_oid(parts[3], starts[3])
                oid = parts[3]
            elif len(parts) == 4:
                raise ActivationCodeError(
                    "SM-DP+ OID", "is empty without a Confirmation Code Required Flag after it "
                    "(trailing '$')", starts[3])
        if len(parts) == 5:
            if parts[4] != "1":
                raise ActivationCodeError("Confirmation Code Required Flag",
                                          f"is {parts[4]!r}; only '1' is allowed", starts[4])
            required = True
        return cls(parts[1], parts[2], oid, required, lab)


def generate_matching_id(exists: Callable[[str], bool] | None = None, groups: int = 5,
                         group_length: int = 5) -> str:
    """A random matching ID like 'K7Q2M-…' (5 bits per character; 125 bits by default).

    Uses only characters of the QR alphanumeric mode and no look-alikes (Crockford base 32).
    Pass `exists` (e.g. a store lookup) to draw again on the (astronomically unlikely) collision.
    """
    if groups * group_length * 5 < 100:
        raise ValueError("a matching ID needs at least 100 bits of entropy (20 characters)")
    for _ in range(16):
        candidate = "-".join(
            "".join(secrets.choice(_GEN_ALPHABET) for _ in range(group_length))
            for _ in range(groups))
        if exists is None or not exists(candidate):
            return candidate
    raise RuntimeError("could not draw an unused matching ID in 16 attempts; check `exists`")
