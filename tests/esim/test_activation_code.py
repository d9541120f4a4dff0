"""Activation codes (SGP.22 §4.1) and confirmation codes (SGP.22 §3.1.3)."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esim.activation_code import ActivationCode, generate_matching_id
from esim.confirmation_code import (
    generate_confirmation_code,
    hash_confirmation_code,
    hashed_confirmation_code,
    verify_confirmation_code,
)
from esim.errors import ActivationCodeError, ConfirmationCodeMismatch
from tests.esim.vectors import load_sections

SECTIONS = load_sections("sgp22/activation_codes.txt")


@pytest.mark.parametrize("row", SECTIONS["valid"], ids=lambda r: r[0])
def test_valid_codes_parse_and_rebuild(row: list[str]) -> None:
    code, address, matching_id, oid, flag = row[0], row[1], row[2], row[3], row[4].split()[0]
    ac = ActivationCode.parse(code)
    assert ac.smdp_address == address
    assert ac.matching_id == matching_id
    assert ac.smdp_oid == (None if oid == "-" else oid)
    assert ac.confirmation_code_required is (flag == "1")
    assert ac.to_string() == code
    assert ActivationCode.from_uri("LPA:" + code) == ac
    assert ac.to_uri() == "LPA:" + code


@pytest.mark.parametrize("row", SECTIONS["invalid"], ids=lambda r: r[0])
def test_invalid_codes_name_field_and_position(row: list[str]) -> None:
    code, field, position = row[0], row[1], int(row[2])
    with pytest.raises(ActivationCodeError) as info:
        ActivationCode.parse(code)
    assert info.value.field == field
    assert info.value.position == position
    assert str(info.value).startswith(f"{field} at position {position}: ")


def test_flag_without_oid_builds_empty_oid() -> None:
    ac = ActivationCode("SMDP.GSMA.COM", "ABC", confirmation_code_required=True)
    assert str(ac) == "1$SMDP.GSMA.COM$ABC$$1"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"smdp_address": "a$b.com", "matching_id": "A"}, "SM-DP+ Address"),
        ({"smdp_address": "a.com", "matching_id": "A$B"}, "Matching ID"),
        ({"smdp_address": "a.com", "matching_id": "A", "smdp_oid": "1.2$1"}, "SM-DP+ OID"),
        ({"smdp_address": "a.com", "matching_id": "a"}, "Matching ID"),
        ({"smdp_address": "a.com", "matching_id": ""}, "Matching ID"),
        ({"smdp_address": "a.com", "matching_id": "A", "smdp_oid": ""}, "SM-DP+ OID"),
        ({"smdp_address": "a" * 64 + ".com", "matching_id": "A"}, "SM-DP+ Address"),
        ({"smdp_address": ("a" * 60 + ".") * 5 + "com", "matching_id": "A"}, "SM-DP+ Address"),
        ({"smdp_address": "a.com", "matching_id": "A" * 256}, "Matching ID"),
    ],
)
def test_building_refuses_bad_fields(kwargs: dict[str, str], field: str) -> None:
    with pytest.raises(ActivationCodeError) as info:
        ActivationCode(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_uri_needs_prefix_and_white_space_is_refused() -> None:
    with pytest.raises(ActivationCodeError, match="does not start with 'LPA:'"):
        ActivationCode.from_uri("1$A.COM$B")
    with pytest.raises(ActivationCodeError) as info:
        ActivationCode.parse("1$A.COM$B C")
    assert info.value.position == 9
    with pytest.raises(ActivationCodeError) as info:
        ActivationCode.from_uri("LPA:1$A.COM$b")
    assert info.value.position == 12  # positions count the prefix
    with pytest.raises(ActivationCodeError, match="empty"):
        ActivationCode.parse("")


_label = st.from_regex(r"\A[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?\Z")
_fqdn = st.builds(lambda ls, tld: ".".join([*ls, tld]), st.lists(_label, min_size=1, max_size=4),
                  st.from_regex(r"\A[a-z]{2,6}\Z"))
_mid = st.from_regex(r"\A[0-9A-Z-]{1,64}\Z")
_oid = st.from_regex(r"\A[0-2](\.(0|[1-9][0-9]{0,5})){1,8}\Z")


@pytest.mark.slow
@given(_fqdn, _mid, st.none() | _oid, st.booleans())
def test_round_trip(address: str, matching_id: str, oid: str | None, cc: bool) -> None:
    ac = ActivationCode(address, matching_id, oid, cc)
    assert ActivationCode.parse(ac.to_string()) == ac
    assert ActivationCode.from_uri(ac.to_uri()) == ac


@given(st.text(max_size=60))
def test_parse_never_fails_other_than_activation_code_error(text: str) -> None:
    try:
        ac = ActivationCode.parse(text)
    except ActivationCodeError:
        return
    assert ac.to_string() == text


def test_generated_matching_ids_are_qr_alphanumeric_unique_and_long() -> None:
    ids = {generate_matching_id() for _ in range(2000)}
    assert len(ids) == 2000
    for mid in ids:
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){4}", mid)
        ActivationCode("rsp.example.com", mid)


def test_generated_matching_id_retries_on_collision() -> None:
    seen: list[str] = []

    def exists(candidate: str) -> bool:
        seen.append(candidate)
        return len(seen) < 3

    mid = generate_matching_id(exists)
    assert mid == seen[-1] and len(seen) == 3
    with pytest.raises(RuntimeError):
        generate_matching_id(lambda _: True)
    with pytest.raises(ValueError):
        generate_matching_id(groups=1)


def test_confirmation_code_hash_and_verify() -> None:
    code = generate_confirmation_code()
    assert re.fullmatch(r"[0-9]{8}", code)
    stored = hash_confirmation_code(code)
    assert stored == hashlib.sha256(code.encode()).digest()
    tid = bytes.fromhex("0123456789ABCDEF0123456789ABCDEF")
    sent = hashlib.sha256(hashlib.sha256(code.encode()).digest() + tid).digest()
    assert hashed_confirmation_code(stored, tid) == sent
    verify_confirmation_code(stored, tid, sent)
    with pytest.raises(ConfirmationCodeMismatch) as info:
        verify_confirmation_code(stored, tid[:-1] + b"\x00", sent)
    assert code not in str(info.value)
    with pytest.raises(ValueError):
        hashed_confirmation_code(stored, b"")
    with pytest.raises(ValueError):
        hashed_confirmation_code(stored, bytes(17))
    with pytest.raises(ValueError):
        hash_confirmation_code("")
    with pytest.raises(ValueError):
        generate_confirmation_code(3)


def test_lab_address_only_when_asked() -> None:
    """`host:port` (a lab SM-DP+ on a port of its own) is not SGP.22 §4.1's form: refused by
    default, taken with lab=True, with the port checked."""
    for address in ("127.0.0.1:8443", "localhost:8443", "smdp.lab.test:8443"):
        with pytest.raises(ActivationCodeError):
            ActivationCode(address, "ABC")
        code = ActivationCode.parse(f"1${address}$ABC", lab=True)
        assert code.smdp_address == address and code.to_string() == f"1${address}$ABC"
        assert ActivationCode.from_uri(code.to_uri(), lab=True) == code
    for bad, position in (("1$127.0.0.1:0$ABC", 12), ("1$a.b:65536$ABC", 6),
                          ("1$127.0.0.1$ABC", 2), ("1$lab:8443$ABC", 2)):
        with pytest.raises(ActivationCodeError) as e:
            ActivationCode.parse(bad, lab=True)
        assert e.value.field == "SM-DP+ Address" and e.value.position == position
