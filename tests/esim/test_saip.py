"""SAIP codec on the GSMA TS.48 v7 test profiles (tests/vectors/ts48, Apache-2.0)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esim.errors import SaipDecodeError
from esim.saip import ProfilePackage, decode, encode
from esim.saip.codec import split_tlvs
from esim.saip.element import ProfileElement, masked
from esim.saip.package import NoSuchElement
from tests.esim.value_notation import compare, named_numbers, read_values
from tests.esim.vectors import VECTORS

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ["ts48v7_saip23_NoBERTLV", "ts48v7_saip23_BERTLV_SUCI"]
ORDER = ["header", "mf", "pukCodes", "pinCodes", "telecom", "pinCodes", "genericFileManagement",
         "usim", "opt-usim", "pinCodes", "akaParameter", "gsm-access", "df-5gs", "df-saip", "csim",
         "opt-csim", "pinCodes", "cdmaParameter", "isim", "opt-isim", "pinCodes", "akaParameter",
         "genericFileManagement", "genericFileManagement", "securityDomain", "rfm", "rfm", "rfm",
         "rfm", "end"]


def _der(name: str) -> bytes:
    return (VECTORS / "ts48" / f"{name}.der").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("name", PROFILES)
def test_ts48_decodes_to_value_notation(name: str) -> None:
    elements = decode(_der(name))
    published = read_values(VECTORS / "ts48" / f"{name}.asn1.txt")
    assert [e.kind for e in elements] == [kind for kind, _ in published] == ORDER
    names = named_numbers(ROOT / "esim" / "saip" / "PEDefinitions.asn")
    for i, (element, (kind, value)) in enumerate(zip(elements, published, strict=True)):
        compare(element.value, value, names, f"value{i + 1} {kind}")


@pytest.mark.parametrize("name", PROFILES)
def test_ts48_reencodes_byte_identical(name: str) -> None:
    data = _der(name)
    assert encode(decode(data)) == data


@pytest.mark.parametrize("name", PROFILES)
def test_typed_access(name: str) -> None:
    p = ProfilePackage.from_der(_der(name))
    assert len(p.elements) == 30
    assert p.iccid == p.ef_iccid == "89000123456789012341"
    assert p.imsi == "001010123456789" and p.imsis == ["001010123456789"]
    assert p.algorithms == ["usim-test-algorithm", "usim-test-algorithm"]
    assert {"usim", "isim", "csim", "usim-test-algorithm"} <= set(p.services)
    assert ("ber-tlv" in p.services) == ("BERTLV" in name.replace("NoBERTLV", ""))
    assert p.one("header").value["major-version"] == 2
    assert [e.identification for e in p.all("rfm")] == [27, 28, 29, 30]
    with pytest.raises(NoSuchElement, match=r"'pinCodes'.*found 5"):
        p.one("pinCodes")
    assert p.to_der() == _der(name)


def test_reprs_and_masking_hide_secrets() -> None:
    p = ProfilePackage.from_der(_der(PROFILES[0]))
    aka = p.all("akaParameter")[0]
    key = aka.value["algoConfiguration"][1]["key"]
    assert repr(aka) == "ProfileElement('akaParameter', identification=11)"
    assert key.hex() not in repr(p) + repr(p.elements)
    shown = masked(aka.value)
    assert shown["algoConfiguration"]["algoParameter"]["key"] == "***"
    pins = masked(p.all("pinCodes")[0].value)
    assert all(c["pinValue"] == "***" for c in pins["pinCodes"]["pinconfig"])
    revealed = masked(aka.value, show_secrets=True)
    assert revealed["algoConfiguration"]["algoParameter"]["key"] == key.hex().upper()


def test_errors() -> None:
    data = _der(PROFILES[0])
    with pytest.raises(SaipDecodeError, match=r"runs .* past the end"):
        decode(data[:-1])
    with pytest.raises(SaipDecodeError, match="element #2 at offset 2"):
        decode(b"\x30\x00\xa0\x03\x02\x01\x00")
    unknown = decode(b"\xbf\x7f\x01\x00")
    assert unknown[0].kind == "unknown" and encode(unknown) == b"\xbf\x7f\x01\x00"
    bad = ProfileElement("akaParameter", {"aka-header": {"identification": 1},
                                          "algoConfiguration": ("algoParameter", {"key": b"\x01"})})
    with pytest.raises(SaipDecodeError, match="akaParameter") as info:
        encode([bad])
    assert "01" not in str(info.value)


def _typed(value: object) -> object:
    """A value with the type of every part spelled out (bytes and bytearray count as one)."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_typed(v) for v in value])
    if isinstance(value, bytes | bytearray):
        return ("bytes", bytes(value))
    return (type(value).__name__, value)


@pytest.mark.slow
def test_codec_matches_asn1tools() -> None:
    """esim.saip.encoder must give asn1tools' own bytes and esim.saip.decoder its values, on TS.48
    and on personalised packages."""
    from esim.build import build_package
    from esim.params import SubscriberParams
    from esim.saip.schema import build

    plain, _ = build()
    params = SubscriberParams("8944000000000000017", "001010000000001", puk1="12345678",
                              pin2="1234", puk2="12345678", adm1="12345678")
    packages = [_der(n) for n in PROFILES] + [
        build_package(t, params, lambda buf, slots: None)
        for t in ("ts48", "usim-isim-milenage")]
    for der in packages:
        spans = list(split_tlvs(der))
        for element, (start, end) in zip(decode(der), spans, strict=True):
            assert _typed(element.as_choice()) == _typed(plain.decode("ProfileElement",
                                                                      der[start:end]))
            expected = bytes(plain.encode("ProfileElement", element.as_choice(),
                                          check_types=False))
            assert encode([element]) == expected == der[start:end]


_ident = st.integers(0, 32767)
_octets = st.binary(min_size=8, max_size=8)
_pin_config = st.fixed_dictionaries(
    {"keyReference": st.sampled_from([1, 2, 10, 11, 129, 138]), "pinValue": _octets},
    optional={"unblockingPINReference": st.sampled_from([1, 129]),
              "pinAttributes": st.integers(0, 255),  # may equal the DEFAULT 7: kept explicit
              "maxNumOfAttemps-retryNumLeft": st.integers(0, 255)})
_header = st.fixed_dictionaries(
    {"major-version": st.integers(0, 255), "minor-version": st.integers(0, 255),
     "iccid": st.binary(min_size=10, max_size=10),
     "eUICC-Mandatory-services": st.dictionaries(
         st.sampled_from(["usim", "isim", "milenage", "tuak128", "ber-tlv", "eaka"]),
         st.none()),
     "eUICC-Mandatory-GFSTEList": st.lists(
         st.lists(st.integers(0, 10**6), min_size=1, max_size=6).map(
             lambda arcs: "2.23." + ".".join(map(str, arcs))), max_size=4)},
    optional={"profileType": st.text(min_size=1, max_size=20),
              "connectivityParameters": st.binary(max_size=20)})
_elements = st.one_of(
    st.builds(lambda h: ProfileElement("header", h), _header),
    st.builds(lambda i, m, c: ProfileElement("pinCodes", {
        "pin-Header": {"identification": i} | ({"mandated": None} if m else {}),
        "pinCodes": ("pinconfig", c)}), _ident, st.booleans(),
        st.lists(_pin_config, min_size=1, max_size=5)),
    st.builds(lambda i: ProfileElement("end", {"end-header": {"identification": i}}), _ident),
)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(st.lists(_elements, min_size=1, max_size=6))
def test_generated_elements_round_trip(elements: list[ProfileElement]) -> None:
    der = encode(elements)
    again = decode(der)
    assert again == elements
    assert encode(again) == der
