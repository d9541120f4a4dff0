"""simcore.suci: the SUCI's string and binary forms, concealment of an IMSI, EF.SUCI_Calc_Info."""

from __future__ import annotations

import pytest

from hsm_sim.ecies import HomeNetworkPrivateKey, ProtectionScheme
from simcore.identifiers import Imsi
from simcore.suci import (
    HomeNetworkPublicKey,
    InvalidSuci,
    Suci,
    UnsupportedScheme,
    conceal_imsi,
    msin_from_scheme_input,
    routing_indicator_bcd,
    scheme_input_of,
    suci_calc_info,
)
from tests.hsm.vectors import cases, h

FORMS = cases("suci/suci_forms.txt")
C4 = {c.values[0]["set"]: c.values[0] for c in cases("suci/ts33501_annex_c4.txt")}


@pytest.mark.parametrize("rec", FORMS)
def test_string_and_binary_forms(rec: dict[str, str]) -> None:
    s = Suci.parse(rec["suci"])
    assert str(s) == rec["suci"]
    assert s.to_bytes() == h(rec, "bytes")
    assert Suci.from_bytes(h(rec, "bytes")) == s


def test_components() -> None:
    s = Suci.parse(FORMS[1].values[0]["suci"])
    assert (s.mcc, s.mnc, s.plmn, s.routing_indicator, s.scheme, s.key_id) == (
        "274", "012", "274012", "678", ProtectionScheme.PROFILE_A, 27)
    assert s.scheme_output == h(C4["C.4.3.1"], "scheme_output")
    assert str(s.imsi("001002086")) == "274012001002086"


def test_scheme_input_is_the_msin_in_bcd() -> None:
    rec = C4["C.4.2.1"]
    assert scheme_input_of(rec["msin"]) == h(rec, "scheme_input")
    assert msin_from_scheme_input(h(rec, "scheme_input")) == "001002086"
    with pytest.raises(InvalidSuci, match="octet 1"):
        msin_from_scheme_input(b"\x00\xfa")
    with pytest.raises(InvalidSuci, match="octet 0"):
        msin_from_scheme_input(b"\xf0\x01")


@pytest.mark.parametrize("setname", ["C.4.3.1", "C.4.4.1"])
def test_conceal_imsi_with_the_annex_ephemeral_key(setname: str) -> None:
    rec = C4[setname]
    imsi = Imsi.parse(rec["mcc_mnc"] + rec["msin"], 3)
    scheme = ProtectionScheme(int(rec["scheme"]))
    s = conceal_imsi(imsi, scheme, 7, h(rec, "hn_public"), routing_indicator="678",
                     ephemeral_private=h(rec, "eph_private"))
    assert s.scheme_output == h(rec, "scheme_output")
    assert (s.mcc, s.mnc, s.key_id, s.routing_indicator) == ("274", "012", 7, "678")
    key = HomeNetworkPrivateKey(scheme, h(rec, "hn_private"))
    assert msin_from_scheme_input(key.deconceal(s.scheme_output)) == rec["msin"]


def test_null_scheme() -> None:
    s = conceal_imsi(Imsi.parse("274012001002086", 3), ProtectionScheme.NULL, 0, None)
    assert str(s) == "suci-0-274-012-0-0-0-001002086"
    with pytest.raises(InvalidSuci, match="key_id: 3 with the null-scheme"):
        Suci.parse("suci-0-274-012-0-0-3-001002086")


@pytest.mark.parametrize("text,exc,match", [
    ("suci-0-274-012-0-3-1-00", UnsupportedScheme,
     r"protection_scheme: scheme 3 is reserved \(at character 17\)"),
    ("suci-0-274-012-0-13-1-00", UnsupportedScheme, "HPLMN proprietary"),
    ("suci-0-274-012-0-1-256-" + "00" * 41, InvalidSuci, r"key_id: 256 is out of range \(at "
                                                         r"character 19\)"),
    ("suci-1-274-012-0-1-1-00", InvalidSuci, "network specific identifier"),
    ("supi-0-274-012-0-1-1-00", InvalidSuci, "does not start with 'suci'"),
    ("suci-0-274-012-0-1-1", InvalidSuci, "7 dash-separated fields"),
    ("suci-0-27-012-0-1-1-00", InvalidSuci, r"mcc '27': malformed \(at character 7\)"),
    ("suci-0-274-012-12345-1-1-00", InvalidSuci, "routing_indicator '12345'"),
    ("suci-0-274-012-0-1-1-0g", InvalidSuci, "not an even number of hex digits"),
    ("suci-0-274-012-0-1-1-" + "00" * 40, InvalidSuci, "40 octets is too short for Profile A"),
    ("suci-0-274-012-0-2-1-" + "00" * 41, InvalidSuci, "41 octets is too short for Profile B"),
    ("suci-0-274-012-0-0-0-12345678901", InvalidSuci, "not an MSIN"),
    ("suci-0-274-012-0-1-1-" + "00" * 5000, InvalidSuci, "characters"),
])
def test_bad_strings(text: str, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        Suci.parse(text)


@pytest.mark.parametrize("data,match", [
    ("0172241076f8011b", "8 octets"),
    ("0272241076f8011b" + "00" * 41, "type_of_identity"),
    ("1172241076f8011b" + "00" * 41, "supi_format"),
    ("01a2241076f8011b" + "00" * 41, "plmn: nibble A is not a digit (at octet 1)"),
    ("0172241076f8031b" + "00" * 41, "scheme 3 is reserved (at octet 6)"),
    ("0172241076f8111b" + "00" * 41, "spare bits"),
    ("01722410f6f8011b" + "00" * 41, "digit after an F filler"),
    ("01722410fff8011b" + "00" * 41, "digit after an F filler"),
    ("0172241076f8011b" + "00" * 40, "too short for Profile A"),
    ("0172241076f800000012fa", "at octet 10"),
])
def test_bad_binary(data: str, match: str) -> None:
    with pytest.raises(InvalidSuci) as e:
        Suci.from_bytes(bytes.fromhex(data))
    assert match in str(e.value)


def test_routing_indicator() -> None:
    assert routing_indicator_bcd("0") == b"\xf0\xff"
    assert routing_indicator_bcd("1234") == b"\x21\x43"
    with pytest.raises(InvalidSuci, match="routing_indicator"):
        routing_indicator_bcd("")


def test_suci_calc_info() -> None:
    a, b = C4["C.4.3.1"], C4["C.4.4.1"]
    data = suci_calc_info([
        HomeNetworkPublicKey(27, ProtectionScheme.PROFILE_A, h(a, "hn_public")),
        HomeNetworkPublicKey(3, ProtectionScheme.PROFILE_B, h(b, "hn_public")),
    ])
    # A0: (1, key 1), (2, key 2), null-scheme last; A1: 80 id 81 key, per key (B compressed).
    want = ("a006" "0101" "0202" "0000"
            "a14b" "80011b" "8120" + a["hn_public"] + "800103" "8121"
            + b["hn_public_compressed"].lower())
    assert data.hex() == want
    # No key at all: the TS.48 SUCI test profile's fill pattern (A0 02 00 00).
    assert suci_calc_info([]) == bytes.fromhex("a0020000")
    with pytest.raises(InvalidSuci, match="repeated"):
        suci_calc_info([HomeNetworkPublicKey(1, ProtectionScheme.PROFILE_A, bytes(32))] * 2)
