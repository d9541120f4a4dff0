"""IMS identities of an ISIM: derived from the IMSI and coded for the card files.

Derivation, 3GPP TS 23.003 (Rel-17):
- §13.2 home network domain: `ims.mnc<MNC>.mcc<MCC>.3gppnetwork.org`, the MNC zero-padded to 3
  digits (IMSI 234150999999999, MNC 15 -> `ims.mnc015.mcc234.3gppnetwork.org`);
- §13.3 private user identity (IMPI): `<IMSI>@` + that domain;
- §13.4B temporary public user identity (IMPU): `sip:<IMSI>@` + that domain.

Where the MNC ends is not in the IMSI: the caller says how long it is (2 or 3 digits; the
template takes it from EF.AD or its own setting).

Coding, 3GPP TS 31.103 §4.2.2 EF.IMPI, §4.2.3 EF.DOMAIN, §4.2.4 EF.IMPU (one record per URI): a
TLV data object with tag '80' holding the NAI or URI in UTF-8, BER length, the rest of the file
(record) 'FF'.
"""

from __future__ import annotations

import functools
import re

from esim.params import ParameterError

NAI_TAG = 0x80
_NO_SPACE = re.compile(r"[^\s\x00-\x1f\x7f]+\Z")
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                     r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z")
_URI_SCHEMES = ("sip:", "sips:", "tel:")


def _plmn(imsi: str, mnc_length: int) -> tuple[str, str]:
    if mnc_length not in (2, 3):
        raise ParameterError("mnc_length", f"must be 2 or 3, not {mnc_length}")
    if not (imsi.isascii() and imsi.isdigit() and 3 + mnc_length < len(imsi) <= 15):
        raise ParameterError("imsi", f"must be MCC, a {mnc_length}-digit MNC and an MSIN, at "
                                     "most 15 decimal digits")
    return imsi[:3], imsi[3:3 + mnc_length]


def home_network_domain(imsi: str, mnc_length: int) -> str:
    """TS 23.003 §13.2: `ims.mnc<MNC, 3 digits>.mcc<MCC>.3gppnetwork.org`."""
    mcc, mnc = _plmn(imsi, mnc_length)
    return f"ims.mnc{mnc.zfill(3)}.mcc{mcc}.3gppnetwork.org"


def derive_impi(imsi: str, mnc_length: int) -> str:
    """TS 23.003 §13.3: the private user identity derived from the IMSI."""
    return f"{imsi}@{home_network_domain(imsi, mnc_length)}"


def derive_impu(imsi: str, mnc_length: int) -> str:
    """TS 23.003 §13.4B: the temporary public user identity derived from the IMSI."""
    return f"sip:{derive_impi(imsi, mnc_length)}"


@functools.lru_cache(maxsize=64)
def _at_domain(plmn: str, mnc_length: int) -> bytes:
    return b"@" + home_network_domain(plmn + "0", mnc_length).encode()


def encode_derived_identity(name: str, scheme: bytes, imsi: str, mnc_length: int, room: int,
                            size: int) -> bytes:
    """The '80' TLV of `scheme` + IMSI + '@' + home network domain (IMPI: no scheme; IMPU:
    b"sip:"), which must fit `room` bytes (file or record), 'FF'-padded to `size`. The fast
    path of personalisation: equal to encode_nai_tlv of derive_impi / derive_impu."""
    if not (imsi.isascii() and imsi.isdigit() and 3 + mnc_length < len(imsi) <= 15):
        derive_impi(imsi, mnc_length)  # raises the error naming what is wrong
    value = scheme + imsi.encode() + _at_domain(imsi[:3 + mnc_length], mnc_length)
    n = len(value)  # at most 4 + 15 + 34 bytes: a one-byte length
    if n + 2 > room:
        raise ParameterError(name, f"needs {n + 2} bytes ('80' TLV of {n} bytes of UTF-8); "
                                   f"the file holds {room}")
    return b"\x80" + bytes((n,)) + value + b"\xff" * (size - n - 2)


def check_impi(value: str) -> str:
    """An NAI `user@realm` (TS 23.003 §13.3, RFC 7542): no white space or control characters."""
    user, at, realm = value.rpartition("@")
    if not (at and user and _NO_SPACE.match(value) and _DOMAIN.match(realm)):
        raise ParameterError("impi", "must be an NAI 'user@realm' (realm a domain name, no "
                                     "white space)")
    return value


def check_impu(value: str) -> str:
    """A SIP URI (`sip:`, `sips:`) or tel URI (`tel:`), TS 23.003 §13.4, without white space."""
    if not (value.startswith(_URI_SCHEMES) and _NO_SPACE.match(value)
            and value.partition(":")[2]):
        raise ParameterError("impu", f"{value!r} must be a 'sip:', 'sips:' or 'tel:' URI "
                                     "without white space")
    return value


def check_domain(value: str) -> str:
    """A home network domain name (TS 23.003 §13.2): dot-separated labels, at most 253 chars."""
    if len(value) > 253 or not _DOMAIN.match(value):
        raise ParameterError("ims_domain", "must be a domain name: two or more dot-separated "
                                           "labels of letters, digits and '-'")
    return value


def encode_nai_tlv(name: str, text: str, size: int) -> bytes:
    """'80' L <UTF-8 text>, 'FF'-padded to `size` bytes (a file or a record)."""
    value = text.encode("utf-8")
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else b""
    if not length:
        raise ParameterError(name, f"is {n} bytes of UTF-8; a '80' TLV holds at most 255")
    tlv = bytes([NAI_TAG]) + length + value
    if len(tlv) > size:
        raise ParameterError(name, f"needs {len(tlv)} bytes ('80' TLV of {n} bytes of UTF-8); "
                                   f"the file holds {size}")
    return tlv + b"\xff" * (size - len(tlv))


def decode_nai_tlv(data: bytes) -> str | None:
    """The text of a '80' TLV at the start of `data`; None for an empty ('FF') file or record."""
    if not data or data[0] == 0xFF:
        return None
    if data[0] != NAI_TAG:
        raise ParameterError("nai", f"expected tag '80', found '{data[0]:02X}'")
    head = data[1:3]
    n, start = ((head[0], 2) if head and head[0] < 0x80 else
                (head[1], 3) if len(head) == 2 and head[0] == 0x81 else (-1, 0))
    if n < 0 or start + n > len(data):
        raise ParameterError("nai", "the '80' TLV length runs past the data")
    return data[start:start + n].decode("utf-8")


def encode_impu_records(impus: tuple[str, ...], record_length: int, size: int) -> bytes:
    """EF.IMPU: one URI per record, unused records 'FF'."""
    records = size // record_length
    if not impus:
        raise ParameterError("impu", "needs at least one public user identity")
    if len(impus) > records:
        raise ParameterError("impu", f"has {len(impus)} identities; EF.IMPU holds {records} "
                                     f"records of {record_length} bytes")
    body = b"".join(encode_nai_tlv("impu", check_impu(u), record_length) for u in impus)
    return body + b"\xff" * (size - len(body))


def decode_impu_records(data: bytes, record_length: int) -> list[str]:
    """The URIs of EF.IMPU's used records, in order."""
    out = []
    for i in range(0, len(data) - record_length + 1, record_length):
        text = decode_nai_tlv(data[i:i + record_length])
        if text is not None:
            out.append(text)
    return out
