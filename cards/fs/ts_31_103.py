"""ADF.ISIM files of 3GPP TS 31.103 (V17) §4.2: EF.IMPI, EF.DOMAIN, EF.IMPU (NAI/URI in TLV 80)."""

from __future__ import annotations

from typing import Any, ClassVar

from cards.fs.base import EF
from cards.fs.codecs import decode_tlv_text, encode_tlv_text

ISIM = "ADF.ISIM"


class EF_IMPI(EF):
    """§4.2.2 EF.IMPI: the private user identity (NAI), TLV tag 80, UTF-8."""

    fid = 0x6F02
    sfi: ClassVar[int | None] = 0x02
    name = "EF.IMPI"
    df = ISIM
    size = 64
    examples: ClassVar[tuple[tuple[str, Any], ...]] = (
        ("800D" + b"user@ims.test".hex() + "FFFF", "user@ims.test"),
        ("FF" * 8, None),
    )

    @classmethod
    def decode(cls, data: bytes) -> str | None:
        return decode_tlv_text(0x80, data)

    @classmethod
    def encode(cls, value: str | None, size: int | None = None) -> bytes:
        return encode_tlv_text(0x80, value, size)


class EF_DOMAIN(EF_IMPI):
    """§4.2.3 EF.DOMAIN: the home network domain name, TLV tag 80, UTF-8."""

    fid = 0x6F03
    sfi: ClassVar[int | None] = 0x05
    name = "EF.DOMAIN"
    df = ISIM
    size = 50  # the sysmoISIM-SJA5's file size
    examples = (("8008" + b"ims.test".hex() + "FFFF", "ims.test"),)


class EF_IMPU(EF_IMPI):
    """§4.2.4 EF.IMPU: one public user identity (SIP URI) per record, TLV tag 80."""

    fid = 0x6F04
    sfi: ClassVar[int | None] = 0x04
    name = "EF.IMPU"
    df = ISIM
    structure = "linear_fixed"
    size = 128  # the sysmoISIM-SJA5's record length
    record_count = 8
    examples = (("8012" + b"sip:alice@ims.test".hex() + "FFFF", "sip:alice@ims.test"),)
