"""Every registered EF class runs its own examples both ways (TS 102 221 / 31.102 / 51.011 /
31.103). A class without examples fails."""

from __future__ import annotations

import pytest

import cards.fs  # noqa: F401  (registers every class)
from cards.fs.base import REGISTRY, EncodeError, lookup
from cards.fs.text import decode_alpha, encode_alpha
from cards.fs.ts_31_102 import EF_ACC, EF_IMSI, EF_SPN


def test_registry_is_complete() -> None:
    names = {(c.df, c.name) for c in REGISTRY}
    for df, name in [("MF", "EF.ICCID"), ("MF", "EF.DIR"), ("MF", "EF.PL"),
                     ("ADF.USIM", "EF.UST"), ("ADF.USIM", "EF.EST"), ("DF.GSM", "EF.SST"),
                     ("ADF.ISIM", "EF.IMPI"), ("ADF.ISIM", "EF.IMPU"), ("ADF.ISIM", "EF.DOMAIN")]:
        assert (df, name) in names
    assert len(names) == len(REGISTRY), "duplicate (df, name)"


@pytest.mark.parametrize("cls", REGISTRY, ids=lambda c: c.label())
def test_examples_both_ways(cls: type) -> None:
    assert cls.examples, f"{cls.label()} has no examples"
    assert cls.__doc__ and "§" in cls.__doc__, f"{cls.label()} must name its clause"
    for raw_hex, value in cls.examples:
        raw = bytes.fromhex(raw_hex)
        assert cls.decode(raw) == value, raw_hex
        assert cls.encode(value, len(raw)).hex().upper() == raw_hex.upper(), value


def test_lookup() -> None:
    assert lookup("ADF.USIM", "EF.IMSI") is EF_IMSI
    with pytest.raises(KeyError):
        lookup("ADF.USIM", "EF.NOPE")


def test_encode_errors() -> None:
    with pytest.raises(EncodeError, match="IMSI"):
        EF_IMSI.encode("12")
    with pytest.raises(EncodeError, match="exceeds 16"):
        EF_SPN.encode({"name": "x" * 17})
    with pytest.raises(EncodeError, match="outside"):
        EF_ACC.encode([16])


def test_alpha_fallback_to_ucs2() -> None:
    assert encode_alpha("Ab@") == b"\x41\x62\x00"
    assert encode_alpha("日本")[:1] == b"\x80"
    assert decode_alpha(encode_alpha("日本") + b"\xff\xff") == "日本"
