"""Identifier rules against published examples, plus property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simcore.identifiers import (
    Eid,
    Iccid,
    IdentifierRange,
    Imsi,
    InvalidIdentifier,
    Msisdn,
    guess_kind,
    luhn_check_digit,
)

# GSMA TS.48 v7.0 generic test profile: ICCID and IMSI, with their encodings as they appear in
# the published DER (tests/vectors/ts48/ts48v7_saip23_NoBERTLV.der, EF.ICCID and EF.IMSI).
TS48_ICCID = "89000123456789012341"
TS48_ICCID_EF = bytes.fromhex("98001032547698103214")
TS48_IMSI = "001010123456789"
TS48_IMSI_EF = bytes.fromhex("080910101032547698")
# GSMA SGP.29 v1.0 §2.2: example EID.
SGP29_EID = "89049032123451234512345678901235"


def test_iccid_published_example() -> None:
    i = Iccid.parse(TS48_ICCID)
    assert i.check_digit == 1 and i.body == TS48_ICCID[:-1]
    assert i.to_bcd() == TS48_ICCID_EF
    assert Iccid.from_bcd(TS48_ICCID_EF) == i


def test_iccid_ts48_bytes_are_in_the_published_profile() -> None:
    from pathlib import Path

    der = Path(__file__).parents[1] / "vectors" / "ts48" / "ts48v7_saip23_NoBERTLV.der"
    data = der.read_bytes()  # committed with the tests: a missing file is a failure
    assert TS48_ICCID_EF in data and TS48_IMSI_EF in data


def test_iccid_19_digits_uses_f_filler() -> None:
    i = Iccid.from_body("898828000000000001")
    assert len(i.digits) == 19
    assert i.to_bcd()[-1] >> 4 == 0xF  # the 20th nibble is the F filler
    assert Iccid.from_bcd(i.to_bcd()) == i


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("89000123456789012351", "check digit 1 where 8 was expected"),
        ("89000123456789012342", "check digit 2 where 1 was expected"),
        ("8900012345678901", "16 digits"),
        ("890001234567890123412", "21 digits"),
        ("89000123456x89012341", "non-digit 'x' at position 12"),
        ("99000123456789012341", "industry prefix 99"),
    ],
)
def test_iccid_errors_say_what_is_wrong(value: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier) as e:
        Iccid.parse(value)
    assert message in str(e.value)
    assert e.value.field == "iccid"


def test_iccid_trailing_f_is_stripped() -> None:
    assert Iccid.parse(TS48_ICCID + "F").digits == TS48_ICCID
    short = Iccid.from_body("898828000000000001").digits
    assert Iccid.parse(short + "f").digits == short


def test_imsi_published_example_and_parts() -> None:
    i = Imsi.parse(TS48_IMSI)
    assert (i.mcc, i.mnc, i.msin, i.plmn) == ("001", "01", "0123456789", "00101")
    assert i.to_ef_imsi() == TS48_IMSI_EF
    assert Imsi.from_ef_imsi(TS48_IMSI_EF) == i


def test_imsi_mnc_length_rule() -> None:
    assert Imsi.parse("310410123456789").mnc == "410"  # MCC 310: 3-digit MNCs
    assert Imsi.parse("262011234567890").mnc == "01"  # MCC 262: 2-digit MNCs
    assert Imsi.parse("262011234567890", mnc_length=3).mnc == "011"  # the range says so


def test_imsi_even_digit_count_encoding() -> None:
    i = Imsi.parse("31041012345678")
    assert i.to_ef_imsi() == bytes.fromhex("083101141032547" "6f8")
    assert Imsi.from_ef_imsi(i.to_ef_imsi(), 3) == i


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0010101234567890", "16 digits"),
        ("00101", "5 digits"),
        ("00101012345678a", "non-digit 'a' at position 15"),
        ("012010123456789", "MCC 012 is reserved"),
    ],
)
def test_imsi_errors(value: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message):
        Imsi.parse(value)


def test_ef_imsi_errors() -> None:
    with pytest.raises(InvalidIdentifier, match="type of identity"):
        Imsi.from_ef_imsi(bytes.fromhex("080a10101032547698"))
    with pytest.raises(InvalidIdentifier, match="parity"):
        Imsi.from_ef_imsi(bytes.fromhex("080110101032547698"))
    with pytest.raises(InvalidIdentifier, match="length byte"):
        Imsi.from_ef_imsi(bytes.fromhex("ff0910101032547698"))


@pytest.mark.parametrize(
    ("raw", "digits", "cc"),
    [
        ("+44 7700 900123", "447700900123", "44"),
        ("+1-202-555-0143", "12025550143", "1"),
        ("0049 30 123456", "4930123456", "49"),
        ("+358 40 1234567", "358401234567", "358"),
        ("+7 (495) 123-45-67", "74951234567", "7"),
    ],
)
def test_msisdn_normalised(raw: str, digits: str, cc: str) -> None:
    m = Msisdn.parse(raw)
    assert m.digits == digits and m.country_code == cc
    assert m.e164 == "+" + digits


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("+44 7700 900123 4567", "16 digits"),
        ("07700900123", "starts with 0"),
        ("+44 77OO 900123", "non-digit 'O' at position 5"),
    ],
)
def test_msisdn_errors(raw: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message):
        Msisdn.parse(raw)


def test_eid_published_example() -> None:
    e = Eid.parse(SGP29_EID)
    assert int(e.digits) % 97 == 1
    assert Eid.from_body(SGP29_EID[:30]) == e


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("89049032123451234512345678901234", "check digits 34 where 35 were expected"),
        ("8904903212345123451234567890123", "31 digits"),
        ("99049032123451234512345678901235", "prefix 99"),
    ],
)
def test_eid_errors(value: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message):
        Eid.parse(value)


@pytest.mark.parametrize(
    ("value", "kind"),
    [(TS48_ICCID, "iccid"), (TS48_IMSI, "imsi"), ("+447700900123", "msisdn"),
     (SGP29_EID, "eid"), ("447700900123", "msisdn")],
)
def test_guess_kind(value: str, kind: str) -> None:
    assert guess_kind(value) == kind


def test_ranges_iterate_size_overlap() -> None:
    a = Iccid.from_body("8988280000000000000")
    b = Iccid.from_body("8988280000000000009")
    r = IdentifierRange.of("iccid", a.digits, b.digits)
    members = list(r)
    assert len(r) == 10 == len(members)
    assert all(Iccid.parse(m) for m in members)
    assert members[0] == a.digits and members[-1] == b.digits
    assert r.value_at(3) == members[3]
    assert members[5] in r and "89882800000000000990" not in r
    c = IdentifierRange.of("iccid", Iccid.from_body("8988280000000000009").digits,
                           Iccid.from_body("8988280000000000020").digits)
    d = IdentifierRange.of("iccid", Iccid.from_body("8988280000000000010").digits,
                           Iccid.from_body("8988280000000000020").digits)
    assert r.overlaps(c) and c.overlaps(r)
    assert not r.overlaps(d)
    imsis = IdentifierRange.of("imsi", "001010000000000", "001010000000099")
    assert len(imsis) == 100 and list(imsis.values(98)) == ["001010000000098", "001010000000099"]


def test_range_errors() -> None:
    with pytest.raises(InvalidIdentifier, match=r"first .* is after last"):
        IdentifierRange.of("imsi", "001010000000099", "001010000000000")
    with pytest.raises(InvalidIdentifier, match="different lengths"):
        IdentifierRange.of("msisdn", "447700900000", "4477009000000")
    with pytest.raises(InvalidIdentifier, match="different PLMNs"):
        IdentifierRange.of("imsi", "001010000000000", "001020000000000")


# --- properties -------------------------------------------------------------------------------

iccid_bodies = st.text("0123456789", min_size=16, max_size=17).map(lambda s: "89" + s)


@given(iccid_bodies)
def test_generated_iccids_validate_and_round_trip(body: str) -> None:
    i = Iccid.from_body(body)
    assert Iccid.parse(i.digits) == i
    assert Iccid.from_bcd(i.to_bcd()) == i


@given(iccid_bodies, st.data())
def test_every_single_digit_change_is_caught(body: str, data: st.DataObject) -> None:
    good = Iccid.from_body(body).digits
    pos = data.draw(st.integers(2, len(good) - 1))
    new_digit = data.draw(st.sampled_from([d for d in "0123456789" if d != good[pos]]))
    bad = good[:pos] + new_digit + good[pos + 1 :]
    with pytest.raises(InvalidIdentifier, match="check digit"):
        Iccid.parse(bad)


@given(st.text("0123456789", min_size=16, max_size=19))
def test_luhn_digit_makes_the_sum_zero(body: str) -> None:
    full = body + str(luhn_check_digit(body))
    total = 0
    for i, ch in enumerate(reversed(full)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    assert total % 10 == 0


@given(st.sampled_from(["001", "262", "310", "234", "999"]), st.integers(2, 3),
       st.text("0123456789", min_size=1, max_size=10))
def test_imsi_ef_round_trip(mcc: str, mnc_len: int, rest: str) -> None:
    digits = (mcc + "0" * mnc_len + rest)[:15]
    i = Imsi.parse(digits, mnc_len)
    ef = i.to_ef_imsi()
    assert len(ef) == 9
    assert Imsi.from_ef_imsi(ef, mnc_len) == i


@given(st.text("0123456789", min_size=28, max_size=28))
def test_generated_eids_validate(body: str) -> None:
    e = Eid.from_body("89" + body)
    assert Eid.parse(e.digits) == e


@pytest.mark.slow
@given(st.from_regex(r"\A[1-9][0-9]{6,14}\Z"))
def test_msisdn_round_trip(digits: str) -> None:
    m = Msisdn.parse("+" + digits)
    assert Msisdn.parse(m.e164) == m
    assert m.country_code + m.national_number == digits
