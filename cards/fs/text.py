"""Alpha fields on UICC files (ETSI TS 102 221 Annex A): the SMS default alphabet of
3GPP TS 23.038 §6.2.1, unpacked with bit 8 zero, or UCS2 with the 0x80 prefix when a
character is not in the default alphabet.
"""

from __future__ import annotations

GSM_DEFAULT = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(GSM_DEFAULT) == 128
_INDEX = {c: i for i, c in enumerate(GSM_DEFAULT) if c != "\x1b"}


def encode_alpha(text: str) -> bytes:
    """Text -> default-alphabet bytes, or 0x80 + UCS2 (big endian) if any character needs it."""
    if all(c in _INDEX for c in text):
        return bytes(_INDEX[c] for c in text)
    try:
        return b"\x80" + text.encode("utf-16-be")
    except UnicodeEncodeError:  # pragma: no cover - lone surrogates
        raise ValueError("text cannot be encoded as UCS2") from None


def decode_alpha(data: bytes) -> str:
    """Default alphabet or 0x80 UCS2 -> text; trailing FF padding is dropped."""
    if data[:1] == b"\x80":
        body = data[1:]
        units = [body[i : i + 2] for i in range(0, len(body) - 1, 2)]
        out = b"".join(u for u in _until_ffff(units))
        return out.decode("utf-16-be")
    return "".join(GSM_DEFAULT[b] for b in data.rstrip(b"\xff") if b < 0x80)


def _until_ffff(units: list[bytes]) -> list[bytes]:
    out = []
    for u in units:
        if u == b"\xff\xff":
            break
        out.append(u)
    return out
