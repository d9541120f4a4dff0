"""The SUCI (Subscription Concealed Identifier) of an IMSI-based SUPI: framing and concealment.

- Components: 3GPP TS 23.003 V17.9.0 §2.2B — SUPI type, home network identifier (MCC and MNC of
  the IMSI), routing indicator (1 to 4 digits, "0" when none is provisioned), protection scheme
  identifier (TS 33.501 Annex C.1: 0 null-scheme, 1 Profile A, 2 Profile B), home network public
  key identifier (0-255; 0 with the null-scheme) and the scheme output.
- String form: TS 29.503 V17.x §6.1.6.2 (type SupiOrSuci), as UDMs take it:
  `suci-0-<MCC>-<MNC>-<routing indicator>-<scheme>-<key id>-<scheme output>`, the scheme output
  in hex for the ECIES profiles and the MSIN's digits for the null-scheme.
- Binary form: TS 24.501 V17.x §9.11.3.4, the value of the 5GS mobile identity IE of type SUCI
  (octet 4 onwards: SUPI format and type of identity, MCC/MNC in BCD, routing indicator in BCD
  F-padded to 2 octets, scheme, key id, scheme output; the null-scheme's output is the MSIN in
  swapped-nibble BCD, which is also the ECIES schemes' input, TS 33.501 §C.3.2).

Only the framing is written here; the ECIES profiles are hsm_sim.ecies. This module does no I/O
and holds no key: like simcore.identifiers, lower layers (cards, esim) may use it (a card that
computes the SUCI, a profile that carries SUCI_Calc_Info). Malformed input raises InvalidSuci
(UnsupportedScheme for a scheme outside 0-2), naming the field and the position.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from hsm_sim.ecies import (
    MAC_LENGTH,
    ProtectionScheme,
    conceal,
    ephemeral_key_length,
    public_key_of,
)
from simcore.identifiers import (
    Imsi,
    InvalidIdentifier,
    decode_swapped_bcd,
    encode_swapped_bcd,
)

__all__ = [
    "HomeNetworkPublicKey",
    "InvalidSuci",
    "ProtectionScheme",
    "Suci",
    "UnsupportedScheme",
    "conceal_as_phone",
    "conceal_imsi",
    "msin_from_scheme_input",
    "parse_suci_calc_info",
    "routing_indicator_bcd",
    "scheme_input_of",
    "suci_calc_info",
]

SUPI_TYPE_IMSI = 0  # TS 23.003 §2.2B: SUPI type 0 = IMSI (1 = network specific identifier)
_TYPE_SUCI = 0x01  # TS 24.501 table 9.11.3.4.1: type of identity 001 = SUCI
_MAX_OUTPUT = 3000  # bounds the work a hostile string can cause (a real one is < 100 octets)
_MAX_TEXT = 2 * _MAX_OUTPUT + 64
_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9A-Fa-f]+")


class InvalidSuci(InvalidIdentifier):
    """A SUCI that is not well formed; `field` is "suci" or the component at fault."""


class UnsupportedScheme(InvalidSuci):
    """A protection scheme identifier simsmith does not de-conceal (only 0, 1 and 2 are)."""


# --- pieces ------------------------------------------------------------------------------------

def scheme_input_of(msin: str) -> bytes:
    """The scheme input of an IMSI-based SUPI: the MSIN in swapped-nibble BCD, F-padded
    (TS 33.501 §C.3.2; C.4.2.1: MSIN 001002086 -> 00 01 20 80 F6)."""
    if not msin or not _DIGITS.fullmatch(msin):
        raise InvalidSuci("msin", "not a string of digits", value=msin, expected="1-10 digits")
    return encode_swapped_bcd(msin)


def msin_from_scheme_input(data: bytes, *, offset: int = 0) -> str:
    """The MSIN digits of a de-concealed scheme input: InvalidSuci unless it is swapped-nibble
    BCD with at most one F filler, in the last nibble (positions counted from `offset`)."""
    if not data:
        raise InvalidSuci("scheme_input", "empty", expected="the MSIN in BCD")
    for i, b in enumerate(data):
        lo, hi = b & 0xF, b >> 4
        last = i == len(data) - 1
        if lo > 9 or (hi > 9 and not (last and hi == 0xF)):
            raise InvalidSuci("scheme_input", f"octet {i} ({b:02X}) is not BCD digits",
                              position=f"octet {offset + i}",
                              expected="the MSIN in swapped-nibble BCD, F-padded")
    return decode_swapped_bcd(data)


def routing_indicator_bcd(routing_indicator: str) -> bytes:
    """The routing indicator as 2 octets of swapped-nibble BCD F-padded (TS 24.501
    §9.11.3.4; EF.Routing_Indicator's first two octets, TS 31.102 §4.4.11.11)."""
    _check_routing_indicator(routing_indicator)
    return encode_swapped_bcd(routing_indicator, 2)


def _check_routing_indicator(ri: str, position: int | str | None = None) -> None:
    if not (1 <= len(ri) <= 4 and _DIGITS.fullmatch(ri)):
        raise InvalidSuci("routing_indicator", "not 1 to 4 digits", value=ri, position=position,
                          expected="1 to 4 decimal digits ('0' when none is provisioned)")


def _scheme(value: int, position: int | str) -> ProtectionScheme:
    try:
        return ProtectionScheme(value)
    except ValueError:
        kind = ("reserved" if 3 <= value <= 11 else "an HPLMN proprietary scheme"
                if 12 <= value <= 15 else "out of range")
        raise UnsupportedScheme("protection_scheme", f"scheme {value} is {kind}",
                                position=position,
                                expected="0 (null-scheme), 1 (Profile A) or 2 (Profile B)") \
            from None


def _check_output(scheme: ProtectionScheme, output: bytes, position: int | str) -> None:
    if not output:
        raise InvalidSuci("scheme_output", "empty", position=position)
    if len(output) > _MAX_OUTPUT:
        raise InvalidSuci("scheme_output", f"{len(output)} octets", position=position,
                          expected=f"at most {_MAX_OUTPUT} octets")
    if scheme is not ProtectionScheme.NULL:
        least = ephemeral_key_length(scheme) + 1 + MAC_LENGTH
        if len(output) < least:
            raise InvalidSuci(
                "scheme_output", f"{len(output)} octets is too short for {scheme.label}",
                position=position,
                expected=f"ephemeral key ({ephemeral_key_length(scheme)}), ciphertext (>= 1) "
                         f"and MAC tag ({MAC_LENGTH}): at least {least} octets")


# --- the SUCI ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Suci:
    """A SUCI of an IMSI-based SUPI. `scheme_output` is bytes (the MSIN's BCD for the
    null-scheme); the string and binary forms are views of the same value."""

    mcc: str
    mnc: str
    routing_indicator: str
    scheme: ProtectionScheme
    key_id: int
    scheme_output: bytes

    def __post_init__(self) -> None:
        if not (len(self.mcc) == 3 and _DIGITS.fullmatch(self.mcc)):
            raise InvalidSuci("mcc", "not 3 digits", value=self.mcc)
        if not (len(self.mnc) in (2, 3) and _DIGITS.fullmatch(self.mnc)):
            raise InvalidSuci("mnc", "not 2 or 3 digits", value=self.mnc)
        _check_routing_indicator(self.routing_indicator)
        object.__setattr__(self, "scheme", _scheme(int(self.scheme), "protection_scheme"))
        if not 0 <= self.key_id <= 255:
            raise InvalidSuci("key_id", f"{self.key_id} is out of range", expected="0 to 255")
        if self.scheme is ProtectionScheme.NULL and self.key_id != 0:
            raise InvalidSuci("key_id", f"{self.key_id} with the null-scheme",
                              expected="0 (TS 23.003 §2.2B)")
        _check_output(self.scheme, self.scheme_output, "scheme_output")
        if self.scheme is ProtectionScheme.NULL:
            msin_from_scheme_input(self.scheme_output)

    @property
    def plmn(self) -> str:
        """The home network identifier as MCC+MNC digits."""
        return self.mcc + self.mnc

    # string form ----------------------------------------------------------------------------

    def __str__(self) -> str:
        out = (msin_from_scheme_input(self.scheme_output) if self.scheme is ProtectionScheme.NULL
               else self.scheme_output.hex())
        return (f"suci-{SUPI_TYPE_IMSI}-{self.mcc}-{self.mnc}-{self.routing_indicator}-"
                f"{int(self.scheme)}-{self.key_id}-{out}")

    @classmethod
    def parse(cls, text: str) -> Suci:
        """The string form (`suci-0-274-012-678-1-27-b2e9…`). InvalidSuci names the component
        and its character position; UnsupportedScheme a scheme outside 0-2."""
        if len(text) > _MAX_TEXT:
            raise InvalidSuci("suci", f"{len(text)} characters", expected=f"at most {_MAX_TEXT}")
        parts = text.split("-")
        names = ("prefix", "supi_type", "mcc", "mnc", "routing_indicator", "protection_scheme",
                 "key_id", "scheme_output")
        if len(parts) != len(names):
            raise InvalidSuci("suci", f"{len(parts)} dash-separated fields", value=text[:80],
                              expected="suci-0-<MCC>-<MNC>-<routing indicator>-<scheme>-"
                                       "<key id>-<scheme output> (8 fields)")
        starts = [0]
        for p in parts[:-1]:
            starts.append(starts[-1] + len(p) + 1)
        where = dict(zip(names, (f"character {s}" for s in starts), strict=True))
        field = dict(zip(names, parts, strict=True))
        if field["prefix"] != "suci":
            raise InvalidSuci("suci", "does not start with 'suci'", position="character 0")
        if field["supi_type"] != "0":
            what = ("a network specific identifier (NAI) SUPI"
                    if field["supi_type"] == "1" else f"SUPI type {field['supi_type']!r}")
            raise InvalidSuci("supi_type", f"{what} is not supported",
                              position=where["supi_type"], expected="0 (IMSI)")
        for name, rx in (("mcc", r"[0-9]{3}"), ("mnc", r"[0-9]{2,3}"),
                         ("routing_indicator", r"[0-9]{1,4}"), ("protection_scheme", r"[0-9]{1,2}"),
                         ("key_id", r"[0-9]{1,3}")):
            if not re.fullmatch(rx, field[name]):
                raise InvalidSuci(name, "malformed", value=field[name], position=where[name],
                                  expected=f"digits matching {rx}")
        scheme = _scheme(int(field["protection_scheme"]), where["protection_scheme"])
        key_id = int(field["key_id"])
        if key_id > 255:
            raise InvalidSuci("key_id", f"{key_id} is out of range", position=where["key_id"],
                              expected="0 to 255")
        raw = field["scheme_output"]
        if scheme is ProtectionScheme.NULL:
            if not (_DIGITS.fullmatch(raw) and len(raw) <= 10):
                raise InvalidSuci("scheme_output", "the null-scheme output is not an MSIN",
                                  position=where["scheme_output"], expected="1 to 10 digits")
            output = scheme_input_of(raw)
        else:
            if not (_HEX.fullmatch(raw) and len(raw) % 2 == 0):
                raise InvalidSuci("scheme_output", "not an even number of hex digits",
                                  position=where["scheme_output"],
                                  expected="the ECIES scheme output in hex")
            output = bytes.fromhex(raw)
        _check_output(scheme, output, where["scheme_output"])
        return cls(field["mcc"], field["mnc"], field["routing_indicator"], scheme, key_id, output)

    # binary form -----------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The value of the 5GS mobile identity IE (TS 24.501 §9.11.3.4, octet 4 onwards)."""
        mnc3 = self.mnc[2] if len(self.mnc) == 3 else "F"
        d = self.mcc + self.mnc
        plmn = bytes([(int(d[1]) << 4) | int(d[0]), (int(mnc3, 16) << 4) | int(d[2]),
                      (int(self.mnc[1]) << 4) | int(self.mnc[0])])
        return (bytes([(SUPI_TYPE_IMSI << 4) | _TYPE_SUCI]) + plmn
                + routing_indicator_bcd(self.routing_indicator)
                + bytes([int(self.scheme), self.key_id]) + self.scheme_output)

    @classmethod
    def from_bytes(cls, data: bytes) -> Suci:
        """The binary form (see to_bytes); InvalidSuci names the octet at fault."""
        if len(data) < 9:
            raise InvalidSuci("suci", f"{len(data)} octets", position="octet 0",
                              expected="at least 9 octets (type, PLMN, routing indicator, "
                                       "scheme, key id, scheme output)")
        if len(data) > 8 + _MAX_OUTPUT:
            raise InvalidSuci("suci", f"{len(data)} octets", expected=f"at most {8 + _MAX_OUTPUT}")
        if data[0] & 0x07 != _TYPE_SUCI:
            raise InvalidSuci("type_of_identity", f"{data[0] & 7:03b}", position="octet 0",
                              expected="001 (SUCI)")
        supi_format = (data[0] >> 4) & 0x07
        if supi_format != SUPI_TYPE_IMSI:
            raise InvalidSuci("supi_format", f"{supi_format:03b} is not supported",
                              position="octet 0", expected="000 (IMSI)")
        nib = [data[1] & 0xF, data[1] >> 4, data[2] & 0xF, data[2] >> 4, data[3] & 0xF,
               data[3] >> 4]
        # nibbles: MCC1 MCC2 MCC3 MNC3 MNC1 MNC2
        order = (0, 1, 2, 4, 5)
        for i in order:
            if nib[i] > 9:
                raise InvalidSuci("plmn", f"nibble {nib[i]:X} is not a digit",
                                  position=f"octet {1 + i // 2}", expected="BCD digits")
        if nib[3] != 0xF and nib[3] > 9:
            raise InvalidSuci("mnc", f"digit 3 nibble {nib[3]:X}", position="octet 2",
                              expected="a digit or F")
        mcc = "".join(str(nib[i]) for i in (0, 1, 2))
        mnc = f"{nib[4]}{nib[5]}" + ("" if nib[3] == 0xF else str(nib[3]))
        ri_nibbles = [data[4] & 0xF, data[4] >> 4, data[5] & 0xF, data[5] >> 4]
        ri = ""
        for k, n in enumerate(ri_nibbles):
            if n == 0xF:
                if any(m != 0xF for m in ri_nibbles[k:]):
                    raise InvalidSuci("routing_indicator", "digit after an F filler",
                                      position=f"octet {4 + k // 2}")
                break
            if n > 9:
                raise InvalidSuci("routing_indicator", f"nibble {n:X} is not a digit",
                                  position=f"octet {4 + k // 2}", expected="BCD, F-padded")
            ri += str(n)
        if not ri:
            raise InvalidSuci("routing_indicator", "no digit", position="octet 4",
                              expected="1 to 4 digits ('0' when none is provisioned)")
        if data[6] >> 4:
            raise InvalidSuci("protection_scheme", "spare bits 5-8 are not 0",
                              position="octet 6")
        scheme = _scheme(data[6] & 0xF, "octet 6")
        key_id = data[7]
        output = bytes(data[8:])
        _check_output(scheme, output, "octet 8")
        if scheme is ProtectionScheme.NULL:
            msin_from_scheme_input(output, offset=8)
        return cls(mcc, mnc, ri, scheme, key_id, output)

    def imsi(self, msin: str) -> Imsi:
        """The IMSI of this SUCI's home network with a de-concealed MSIN."""
        return Imsi.parse(self.mcc + self.mnc + msin, len(self.mnc))


def conceal_imsi(
    imsi: Imsi, scheme: ProtectionScheme, key_id: int, hn_public: bytes | None,
    *, routing_indicator: str = "0", ephemeral_private: bytes | None = None,
) -> Suci:
    """The SUCI a UE (or a USIM computing it) sends for `imsi` (TS 33.501 §6.12.2, C.3.2):
    a fresh ephemeral key each call unless `ephemeral_private` fixes it (test vectors)."""
    scheme = _scheme(int(scheme), "protection_scheme")
    plain = scheme_input_of(imsi.msin)
    if scheme is ProtectionScheme.NULL:
        return Suci(imsi.mcc, imsi.mnc, routing_indicator, scheme, 0, plain)
    if hn_public is None:
        raise InvalidSuci("hn_public", f"{scheme.label} needs the home-network public key")
    output = conceal(scheme, hn_public, plain, ephemeral_private=ephemeral_private)
    return Suci(imsi.mcc, imsi.mnc, routing_indicator, scheme, key_id, output)


# --- EF.SUCI_Calc_Info (TS 31.102 §4.4.11.8) ----------------------------------------------------

@dataclass(frozen=True, slots=True)
class HomeNetworkPublicKey:
    """One public key a card or profile carries: its identifier, profile and key bytes."""

    key_id: int
    scheme: ProtectionScheme
    public: bytes


def _tlv(tag: int, value: bytes) -> bytes:
    if len(value) < 0x80:
        return bytes([tag, len(value)]) + value
    if len(value) <= 0xFF:
        return bytes([tag, 0x81, len(value)]) + value
    raise InvalidSuci("suci_calc_info", f"{len(value)} octets in one object",
                      expected="at most 255")


def suci_calc_info(keys: Sequence[HomeNetworkPublicKey], *, null_scheme: bool = True) -> bytes:
    """EF.SUCI_Calc_Info content (TS 31.102 §4.4.11.8) for the ME's SUCI calculation:

        A0 <Protection Scheme Identifier List: (scheme id, key index) per entry, by priority>
        A1 <Home Network Public Key List: 80 <key id> 81 <public key> per key>

    Keys are listed in the order given (first = highest priority); the key index of an entry is
    its key's 1-based position in the A1 list, 0 for the null-scheme, which comes last when
    `null_scheme` (a UE that cannot use any profile then sends the IMSI unprotected). Profile B
    keys are carried compressed. No key: the list has the null-scheme only, as the TS.48 SUCI
    test profile's fill pattern A0 02 00 00."""
    if not keys and not null_scheme:
        raise InvalidSuci("suci_calc_info", "no key and no null-scheme",
                          expected="at least one protection scheme")
    seen: set[int] = set()
    schemes, key_list = bytearray(), bytearray()
    for index, key in enumerate(keys, 1):
        if key.key_id in seen or not 0 <= key.key_id <= 255:
            raise InvalidSuci("key_id", f"{key.key_id} is repeated or out of range",
                              position=f"key {index - 1}", expected="distinct ids 0 to 255")
        seen.add(key.key_id)
        scheme = _scheme(int(key.scheme), f"key {index - 1}")
        if scheme is ProtectionScheme.NULL:
            raise InvalidSuci("scheme", "the null-scheme has no key", position=f"key {index - 1}")
        schemes += bytes([int(scheme), index])
        key_list += _tlv(0x80, bytes([key.key_id])) + _tlv(0x81, public_key_of(scheme,
                                                                                key.public))
    if null_scheme:
        schemes += b"\x00\x00"
    out = _tlv(0xA0, bytes(schemes))
    if key_list:
        out += _tlv(0xA1, bytes(key_list))
    return out


def _read_tlv(data: bytes, pos: int, what: str) -> tuple[int, bytes, int]:
    if pos + 2 > len(data):
        raise InvalidSuci("suci_calc_info", f"{what} cut short", position=f"octet {pos}")
    tag, n, start = data[pos], data[pos + 1], pos + 2
    if n == 0x81:
        if pos + 3 > len(data):
            raise InvalidSuci("suci_calc_info", f"{what} cut short", position=f"octet {pos}")
        n, start = data[pos + 2], pos + 3
    elif n > 0x80:
        raise InvalidSuci("suci_calc_info", f"{what}: length form {n:02X}",
                          position=f"octet {pos + 1}", expected="one octet or 81 xx")
    if start + n > len(data):
        raise InvalidSuci("suci_calc_info", f"{what}: {n} octets announced, "
                          f"{len(data) - start} present", position=f"octet {pos + 1}")
    return tag, data[start : start + n], start + n


def parse_suci_calc_info(data: bytes) -> list[tuple[int, HomeNetworkPublicKey | None]]:
    """EF.SUCI_Calc_Info read back: its priority list, each entry as (protection scheme
    identifier, its key from the key list, or None for the null-scheme and for schemes other
    than Profile A/B). Trailing FF fill is ignored (the TS.48 profile's file is 118 octets);
    anything malformed is InvalidSuci naming the octet."""
    pos = 0
    schemes: list[tuple[int, int]] = []
    raw: list[tuple[int, bytes]] = []
    while pos < len(data) and data[pos] != 0xFF:
        tag, value, after = _read_tlv(data, pos, f"object at octet {pos}")
        if tag == 0xA0:
            if len(value) % 2:
                raise InvalidSuci("suci_calc_info", "odd-length scheme list",
                                  position=f"octet {pos}")
            schemes = [(value[i], value[i + 1]) for i in range(0, len(value), 2)]
        elif tag == 0xA1:
            i = 0
            while i < len(value):
                t1, kid, i = _read_tlv(value, i, "key identifier")
                t2, pub, i = _read_tlv(value, i, "public key")
                if t1 != 0x80 or t2 != 0x81 or len(kid) != 1:
                    raise InvalidSuci("suci_calc_info", "a key list entry is not 80 01 <id> "
                                      "81 <key>", position=f"octet {pos}")
                raw.append((kid[0], pub))
        pos = after
    out: list[tuple[int, HomeNetworkPublicKey | None]] = []
    for n, (scheme_id, key_index) in enumerate(schemes):
        if scheme_id not in (1, 2):
            out.append((scheme_id, None))
            continue
        if not 1 <= key_index <= len(raw):
            raise InvalidSuci("suci_calc_info", f"priority entry {n} names key {key_index}",
                              expected=f"1 to {len(raw)}")
        key_id, public = raw[key_index - 1]
        out.append((scheme_id, HomeNetworkPublicKey(key_id, ProtectionScheme(scheme_id),
                                                    public)))
    return out


def conceal_as_phone(imsi: Imsi, calc_info: bytes, *, routing_indicator: str = "0",
                     supported: Sequence[ProtectionScheme] = (ProtectionScheme.PROFILE_A,
                                                               ProtectionScheme.PROFILE_B),
                     ) -> Suci:
    """The SUCI a phone computes from a USIM's EF.SUCI_Calc_Info and EF.Routing_Indicator
    (TS 33.501 §6.12.2, TS 31.102 §4.4.11.8): the first entry of the priority list that is the
    null-scheme or a profile the phone supports; InvalidSuci when none is."""
    for scheme_id, key in parse_suci_calc_info(calc_info):
        if scheme_id == 0:
            return conceal_imsi(imsi, ProtectionScheme.NULL, 0, None,
                                routing_indicator=routing_indicator)
        if key is not None and key.scheme in supported:
            return conceal_imsi(imsi, key.scheme, key.key_id, key.public,
                                routing_indicator=routing_indicator)
    raise InvalidSuci("suci_calc_info", "no protection scheme the phone supports",
                      expected=", ".join(s.label for s in supported))
