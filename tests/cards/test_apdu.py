"""APDU building/parsing, status words, BCD, secrets, TLV/FCP (ISO 7816-4, TS 102 221)."""

from __future__ import annotations

import pickle

import pytest

from cards.apdu import Apdu, ApduError, parse_apdu
from cards.fcp import parse_fcp
from cards.secret import CodeFormatError, Secret, adm_from_text, pin_from_text
from cards.status_words import (
    CodeBlocked,
    FileNotFound,
    SecurityStatusNotSatisfied,
    StatusWordError,
    WrongCode,
    check,
    error_for,
)
from cards.tlv import parse_tlv, tlv
from simcore.identifiers import InvalidIdentifier, decode_swapped_bcd, encode_swapped_bcd


@pytest.mark.parametrize(
    ("apdu", "wire", "case"),
    [
        (Apdu(0, 0xA4, 0, 0x0C, bytes.fromhex("3F00")), "00A4000C023F00", 3),
        (Apdu(0, 0xA4, 4, 4, bytes.fromhex("A0000000871002"), 0), "00A4040407A000000087100200", 4),
        (Apdu(0, 0xB0, 0x87, 0, le=9), "00B0870009", 2),
        (Apdu(0, 0xB0, 0, 0, le=256), "00B0000000", 2),
        (Apdu(0, 0x20, 0, 0x0A), "0020000A", 1),
    ],
)
def test_apdu_round_trip(apdu: Apdu, wire: str, case: int) -> None:
    assert apdu.to_bytes().hex().upper() == wire
    assert apdu.case == case
    back = parse_apdu(bytes.fromhex(wire))
    assert back.to_bytes() == apdu.to_bytes()


def test_apdu_rejects_bad_fields() -> None:
    with pytest.raises(ApduError, match="P1"):
        Apdu(0, 0xA4, 0x100, 0)
    with pytest.raises(ApduError, match="Lc"):
        parse_apdu(bytes.fromhex("00D60000051122"))


def test_secret_data_masked_in_trace() -> None:
    apdu = Apdu(0, 0x20, 0, 0x0A, b"12345678", secret=True)
    shown = apdu.masked_hex()
    assert shown == "00 20 00 0A 08 <8 secret bytes>"
    assert "3132" not in shown


@pytest.mark.parametrize(
    ("sw", "cls", "text"),
    [
        (0x6982, SecurityStatusNotSatisfied, "security status not satisfied: ADM not verified"),
        (0x63C2, WrongCode, "wrong code, 2 tries left"),
        (0x63C1, WrongCode, "wrong code, 1 try left"),
        (0x6A82, FileNotFound, "file or application not found"),
        (0x6983, CodeBlocked, "blocked"),
        (0x6FFF, StatusWordError, "unexpected status word"),
    ],
)
def test_status_words(sw: int, cls: type, text: str) -> None:
    err = error_for(sw, "UPDATE BINARY EF.IMSI", needs="ADM")
    assert type(err) is cls
    assert text in str(err)
    assert f"{sw:04X}" in str(err)
    with pytest.raises(cls):
        check(sw, "x", "ADM")


def test_wrong_code_tries_left() -> None:
    err = error_for(0x63C2)
    assert isinstance(err, WrongCode) and err.tries_left == 2


def test_success_words() -> None:
    for sw in (0x9000, 0x9100, 0x9240):
        check(sw)


@pytest.mark.parametrize(
    ("digits", "length", "hexa"),
    [
        ("8949000000000000001", 10, "989400000000000000F1"),
        ("12345", None, "2143F5"),
        ("", 2, "FFFF"),
    ],
)
def test_bcd(digits: str, length: int | None, hexa: str) -> None:
    assert encode_swapped_bcd(digits, length).hex().upper() == hexa
    assert decode_swapped_bcd(bytes.fromhex(hexa)) == digits


def test_bcd_errors() -> None:
    with pytest.raises(InvalidIdentifier):
        encode_swapped_bcd("12a")
    with pytest.raises(InvalidIdentifier):
        encode_swapped_bcd("123", 1)
    with pytest.raises(InvalidIdentifier):
        decode_swapped_bcd(b"\xa1")


def test_secret_never_shows() -> None:
    s = Secret(bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc"), "Ki")
    for text in (repr(s), str(s), f"{s}", f"{s!r}", str([s]), str({"k": s})):
        assert "465b" not in text.lower() and "Ki" in text
    with pytest.raises(TypeError):
        pickle.dumps(s)
    assert s == Secret(s.reveal())


def test_codes_from_text() -> None:
    assert adm_from_text("12345678").reveal() == b"12345678"
    assert adm_from_text("0011223344556677").reveal() == bytes.fromhex("0011223344556677")
    assert pin_from_text("1234").reveal() == b"1234\xff\xff\xff\xff"
    with pytest.raises(CodeFormatError) as exc:
        adm_from_text("12x45")
    assert "12x45" not in str(exc.value)


def test_tlv_and_fcp() -> None:
    body = (tlv(0x82, bytes.fromhex("4221001A01")) + tlv(0x83, b"\x6f\x40")
            + tlv(0x8A, b"\x05") + tlv(0x88, b"\x00") + tlv(0x9B, b"\x01"))
    fcp = parse_fcp(tlv(0x62, body))
    assert fcp.kind == "linear_fixed" and fcp.fid == 0x6F40
    assert fcp.record_length == 26 and fcp.record_count == 1 and fcp.size == 26
    assert fcp.other == {0x9B: b"\x01"}
    df = parse_fcp(tlv(0x62, tlv(0x82, b"\x78\x21") + tlv(0x84, bytes.fromhex("A0000000871002"))
                       + tlv(0xC6, tlv(0x90, b"\x60") + tlv(0x83, b"\x01") + tlv(0x83, b"\x0a"))))
    assert df.kind == "DF" and df.aid == bytes.fromhex("A0000000871002")
    assert df.pin_refs == (1, 10)
    assert parse_tlv(b"\xff\xff" + tlv(0x80, b"x" * 200)) == [(0x80, b"x" * 200)]
