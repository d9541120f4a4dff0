"""ISIM identities (TS 23.003 §13, TS 31.103 §4.2.2-4.2.4), EF.EHPLMN (TS 31.102 §4.2.84) and
EF.MSISDN (TS 31.102 §4.2.26): spec examples, the TS.48 package's own contents, round trips
through the SAIP codec, and errors naming the parameter."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esim.build import build_package, get_compiled
from esim.compiled import KeySlot, compile_template
from esim.errors import TemplateError
from esim.ims import (
    check_impu,
    decode_impu_records,
    decode_nai_tlv,
    derive_impi,
    derive_impu,
    encode_derived_identity,
    encode_impu_records,
    encode_nai_tlv,
    home_network_domain,
)
from esim.params import (
    ParameterError,
    SubscriberParams,
    decode_msisdn,
    decode_plmn_list,
    encode_msisdn,
    encode_plmn_list,
)
from esim.saip import ProfilePackage, decode
from esim.saip.coding import swap_nibbles, unswap_nibbles
from esim.template import builtin_template, load_template
from simcore.identifiers import decode_swapped_bcd, encode_swapped_bcd
from tests.esim.vectors import VECTORS

TS48 = VECTORS / "ts48" / "ts48v7_saip23_NoBERTLV.der"
BASE = dict(iccid="8944000000000000017", imsi="234150999999999", pin1="1234", puk1="12345678",
            pin2="4321", puk2="87654321", adm1="11223344")


def no_keys(buf: bytearray, slots: Sequence[KeySlot]) -> None:
    """Key slots stay zero: these tests are about the other fields."""


def build(template: str = "usim-isim-milenage", **change: object) -> ProfilePackage:
    params = SubscriberParams(**(BASE | change))  # type: ignore[arg-type]
    return ProfilePackage.from_der(build_package(template, params, no_keys, verify=True))


# --- TS 23.003 -----------------------------------------------------------------------------------

def test_ts23003_examples() -> None:
    """TS 23.003 §13.2, §13.3, §13.4B: IMSI 234150999999999 (MCC 234, MNC 15)."""
    imsi = "234150999999999"
    assert home_network_domain(imsi, 2) == "ims.mnc015.mcc234.3gppnetwork.org"
    assert derive_impi(imsi, 2) == "234150999999999@ims.mnc015.mcc234.3gppnetwork.org"
    assert derive_impu(imsi, 2) == "sip:234150999999999@ims.mnc015.mcc234.3gppnetwork.org"
    # 3-digit MNC (generated here): the MNC is not padded further
    assert derive_impi("310410123456789", 3) == "310410123456789@ims.mnc410.mcc310.3gppnetwork.org"


@pytest.mark.parametrize(("imsi", "mnc_length", "name"), [
    ("23415", 2, "imsi"), ("2341509999999999", 2, "imsi"), ("23415099999999x", 2, "imsi"),
    ("234150999999999", 4, "mnc_length"),
])
def test_derivation_errors(imsi: str, mnc_length: int, name: str) -> None:
    with pytest.raises(ParameterError, match=f"^{name}: "):
        derive_impi(imsi, mnc_length)


def test_ts48_isim_contents_are_this_coding() -> None:
    """The published TS.48 ISIM: EF.IMPI, EF.IMPU records and EF.DOMAIN's fill pattern are '80'
    TLVs; its first IMPU is the §13.4B form for IMSI 001010123456789 with a 2-digit MNC."""
    isim = next(e for e in decode(TS48.read_bytes()) if e.kind == "isim")
    impi = isim.file_content("ef-impi")
    assert encode_nai_tlv("impi", "001010123456789@test.3gpp.com", len(impi)) == impi
    impu = [item for c, item in isim.file("ef-impu") if c == "fillFileContent"]
    assert impu[0] == encode_nai_tlv("impu", derive_impu("001010123456789", 2), len(impu[0]))
    assert [decode_nai_tlv(r) for r in impu] == [
        "sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org", "sip:+11234567890@test.3gpp.com",
        "sip:user@test.3gpp.com"]
    fcp = isim.file("ef-domain")[0][1]
    assert decode_nai_tlv(fcp["proprietaryEFInfo"]["fillPattern"]) == "test.3gpp.com"


# --- through the template, the patch path and the SAIP codec -------------------------------------

def test_isim_identities_derived_round_trip() -> None:
    p = build()
    isim = p.one("isim")
    impi, impu, domain = (isim.file_content(f) for f in ("ef-impi", "ef-impu", "ef-domain"))
    assert (len(impi), len(impu), len(domain)) == (96, 192, 64)  # the template's file sizes
    assert decode_nai_tlv(impi) == "234150999999999@ims.mnc015.mcc234.3gppnetwork.org"
    assert impi[:2] == bytes.fromhex("8031") and impi[51:] == b"\xff" * 45
    assert decode_impu_records(impu, 64) == [
        "sip:234150999999999@ims.mnc015.mcc234.3gppnetwork.org"]
    assert impu[64:] == b"\xff" * 128
    assert decode_nai_tlv(domain) == "ims.mnc015.mcc234.3gppnetwork.org"
    # the file descriptors say the sizes too, and one content item covers each file
    for file, size in (("ef-impi", 96), ("ef-impu", 192), ("ef-domain", 64)):
        items = isim.file(file)
        assert items[0][1]["efFileSize"] == bytes([size])
        assert [c for c, _ in items].count("fillFileContent") == 1
        assert "fillFileOffset" not in [c for c, _ in items]


def test_isim_explicit_identities() -> None:
    impus = ("sip:+447700900123@ims.example.net", "tel:+447700900123",
             "sip:alice@ims.example.net")
    p = build(impi="alice@ims.example.net", impu=impus, ims_domain="ims.example.net")
    isim = p.one("isim")
    assert decode_nai_tlv(isim.file_content("ef-impi")) == "alice@ims.example.net"
    assert decode_impu_records(isim.file_content("ef-impu"), 64) == list(impus)
    assert decode_nai_tlv(isim.file_content("ef-domain")) == "ims.example.net"


def test_template_domain_and_mnc_length(tmp_path: Path) -> None:
    """[defaults] ims_domain for every subscriber; mnc_length 3 written into the USIM's EF.AD."""
    base = builtin_template("usim-isim-milenage")
    text = (Path(__file__).parents[2] / "esim" / "templates" / "usim-isim-milenage.toml"
            ).read_text()
    text = text.replace("mnc_length = 2", "mnc_length = 3\nims_domain = \"ims.op.example\"")
    (tmp_path / "t.toml").write_text(text)
    (tmp_path / "ts48v7_saip23_NoBERTLV.der").write_bytes(base.base)
    compiled = compile_template(load_template(tmp_path / "t.toml"))
    params = SubscriberParams(**(BASE | {"imsi": "310410123456789"}))  # type: ignore[arg-type]
    p = ProfilePackage.from_der(compiled.personalise(params, no_keys))
    assert p.one("usim").file_content("ef-ad") == bytes.fromhex("80000003")
    isim = p.one("isim")
    assert decode_nai_tlv(isim.file_content("ef-impi")) == derive_impi("310410123456789", 3)
    assert decode_nai_tlv(isim.file_content("ef-domain")) == "ims.op.example"
    own = dataclasses.replace(params, ims_domain="ims.other.example")
    p = ProfilePackage.from_der(compiled.personalise(own, no_keys))
    assert decode_nai_tlv(p.one("isim").file_content("ef-domain")) == "ims.other.example"
    with pytest.raises(ParameterError, match=r"mnc_length: is 2, but the template.s EF\.AD says 3"):
        compiled.personalise(dataclasses.replace(params, mnc_length=2), no_keys)


def test_ehplmn_and_msisdn_round_trip() -> None:
    for template in ("ts48", "usim-isim-milenage"):
        p = build(template, ehplmn=("23415", "234150", "310410"), msisdn="+447700900123")
        opt = p.one("opt-usim")
        ehplmn = opt.file_content("ef-ehplmn")
        assert len(ehplmn) == 30  # TS.48: 10 entries
        # TS 24.008 §10.5.1.13: MCC 234 MNC 15 -> 32 F4 51; 3-digit MNC 150 -> 32 04 51
        assert ehplmn[:9] == bytes.fromhex("32F451" "320451" "130014")
        assert ehplmn[9:] == b"\xff" * 21
        assert decode_plmn_list(ehplmn) == ["23415", "234150", "310410"]
        record = opt.file_content("ef-msisdn")
        assert len(record) == 39  # record 1 only; record 2 keeps the file's fill
        # alpha (25 'FF'), length 7, TON/NPI international ISDN, 447700900123 swapped, CCP2, Ext5
        assert record == b"\xff" * 25 + bytes.fromhex("0791447700091032FFFFFFFFFFFF")
        assert decode_msisdn(record) == "+447700900123"


def test_unset_ehplmn_and_msisdn_leave_the_files_empty() -> None:
    opt = build().one("opt-usim")
    assert opt.file_content("ef-ehplmn") == b"\xff" * 30
    assert opt.file_content("ef-msisdn") == b"\xff" * 39
    assert decode_msisdn(opt.file_content("ef-msisdn")) is None


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "message"), [
    ({"impi": "x" * 79 + "@ims.example.net"}, r"impi: needs 97 bytes .* the file holds 96"),
    ({"impi": "x" * 200 + "@ims.example.net"}, r"impi: needs 219 bytes .* the file holds 96"),
    ({"impi": "no-at-sign"}, "impi: must be an NAI"),
    ({"impi": "a b@ims.example.net"}, "impi: must be an NAI"),
    ({"impu": ("http://example.net",)}, "impu: 'http://example.net' must be a 'sip:'"),
    ({"impu": ()}, "impu: needs at least one"),
    ({"impu": ("tel:+1",) * 4}, "impu: has 4 identities; EF.IMPU holds 3 records of 64 bytes"),
    ({"impu": ("sip:" + "u" * 60 + "@x.org",)}, r"impu: needs 72 bytes .* the file holds 64"),
    ({"ims_domain": "ims..example"}, "ims_domain: must be a domain name"),
    ({"ims_domain": "a" * 63 + ".example"}, r"ims_domain: needs 73 bytes .* holds 64"),
    ({"ehplmn": ("23415",) * 11}, "ehplmn: has 11 PLMNs; the file holds 10"),
    ({"ehplmn": ("2341",)}, "ehplmn: plmn: '2341' must be MCC and MNC"),
    ({"msisdn": "+44 7700"}, "msisdn: must be 1 to 20 digits"),
    ({"msisdn": "1" * 21}, "msisdn: must be 1 to 20 digits"),
    ({"msisdn": ""}, "msisdn: must be 1 to 20 digits"),
    ({"mnc_length": 3}, "mnc_length: is 3, but the template's EF.AD says 2 MNC digits"),
])
def test_errors_name_the_parameter(change: dict[str, object], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        build("usim-isim-milenage", **change)


def test_ts48_isim_too_small_for_derived_identities() -> None:
    """TS.48's 32-byte EF.IMPI cannot hold a §13.3 IMPI: the error says the size."""
    template = builtin_template("ts48")
    template.parameters = (*template.parameters, "impi")
    compiled = compile_template(template)
    with pytest.raises(ParameterError, match=r"impi: needs 51 bytes .* the file holds 32"):
        compiled.personalise(SubscriberParams(**BASE), no_keys)  # type: ignore[arg-type]
    short = SubscriberParams(**(BASE | {"impi": "1@test.3gpp.com"}))  # type: ignore[arg-type]
    isim = ProfilePackage.from_der(compiled.personalise(short, no_keys)).one("isim")
    assert decode_nai_tlv(isim.file_content("ef-impi")) == "1@test.3gpp.com"


@pytest.mark.parametrize(("edit", "message"), [
    ({"file_sizes": {"isim.ef-impu": 100}}, "not a whole number of 64-byte records"),
    ({"file_sizes": {"isim.ef-nope": 100}}, "no such file"),
    ({"file_sizes": {"isim.ef-impi": 16}}, "fills 32 bytes, more than 16"),
    ({"defaults": {"mnc_length": 4}}, "mnc_length must be 2 or 3"),
])
def test_template_edit_errors(edit: dict[str, dict[str, int]], message: str) -> None:
    template = builtin_template("usim-isim-milenage")
    for attr, value in edit.items():
        getattr(template, attr).update(value)
    with pytest.raises(TemplateError, match=message):
        compile_template(template)


def test_isim_parameters_need_an_isim() -> None:
    template = builtin_template("usim-isim-milenage")
    # the ISIM, its options, PINs, AKA, and the RFM instance aimed at its ADF
    template.drop = (*template.drop, 19, 20, 21, 22, 29)
    template.file_sizes = {}
    template.services = tuple(s for s in template.services or () if s != "isim")
    with pytest.raises(TemplateError, match=r"no place for \['impi', 'impu', 'ims-domain'\]"):
        compile_template(template)


def test_compiled_templates_list_the_new_fields() -> None:
    params = {f.param for f in get_compiled("usim-isim-milenage").fields}
    assert {"ehplmn", "msisdn", "impi", "impu", "ims-domain"} <= params
    assert {"ehplmn", "msisdn"} <= {f.param for f in get_compiled("ts48").fields}


# --- encoders, both ways -------------------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=200)


@given(_TEXT, st.integers(0, 300))
def test_nai_tlv_round_trip(text: str, size: int) -> None:
    try:
        data = encode_nai_tlv("impi", text, size)
    except ParameterError as e:
        n = len(text.encode())
        assert n > 255 or n + 2 + (n >= 0x80) > size, e
        return
    assert len(data) == size and decode_nai_tlv(data) == text


@given(st.lists(st.from_regex(r"(sip|tel):[!-~]{1,40}", fullmatch=True), min_size=1,
                max_size=5), st.sampled_from([32, 64]))
@pytest.mark.slow
def test_impu_records_round_trip(uris: list[str], record_length: int) -> None:
    size = 3 * record_length
    try:
        data = encode_impu_records(tuple(uris), record_length, size)
    except ParameterError:
        assert len(uris) > 3 or any(len(u) + 2 > record_length for u in uris)
        return
    assert len(data) == size and decode_impu_records(data, record_length) == uris
    assert all(check_impu(u) == u for u in uris)


@given(st.from_regex(r"[0-9]{6,15}", fullmatch=True), st.sampled_from([2, 3]),
       st.integers(40, 70))
def test_derived_identity_fast_path_equals_derivation(imsi: str, mnc_length: int,
                                                      room: int) -> None:
    for name, scheme, derive in (("impi", b"", derive_impi), ("impu", b"sip:", derive_impu)):
        try:
            want: bytes | str = encode_nai_tlv(name, derive(imsi, mnc_length), room) + b"\xff" * 9
        except ParameterError as e:
            want = str(e)
        try:
            got: bytes | str = encode_derived_identity(name, scheme, imsi, mnc_length, room,
                                                       room + 9)
        except ParameterError as e:
            got = str(e)
        assert got == want


_PLMN = st.from_regex(r"[0-9]{5,6}", fullmatch=True)


@pytest.mark.slow
@given(st.lists(_PLMN, max_size=12), st.sampled_from([b"", b"\xc8\x80"]), st.integers(0, 60))
def test_plmn_lists_round_trip(plmns: list[str], act: bytes, size: int) -> None:
    try:
        data = encode_plmn_list("ehplmn", tuple(plmns), act, size)
    except ParameterError as e:
        assert len(plmns) > size // (3 + len(act)) and "ehplmn" in str(e)
        return
    assert len(data) == size and decode_plmn_list(data, len(act)) == plmns


@pytest.mark.slow
@given(st.from_regex(r"[0-9]{0,40}", fullmatch=True))
def test_nibble_swap_agrees_with_simcore_codec(digits: str) -> None:
    """esim's swapped-BCD (bytes.translate) against simcore.identifiers' reference codec."""
    data = swap_nibbles(digits + "F" * (len(digits) % 2))
    assert data == encode_swapped_bcd(digits)
    assert unswap_nibbles(data).rstrip("F") == decode_swapped_bcd(data) == digits


@pytest.mark.slow
@given(st.from_regex(r"\+?[0-9]{1,20}", fullmatch=True), st.integers(14, 60))
def test_msisdn_round_trip(number: str, record_length: int) -> None:
    record = encode_msisdn(number, record_length)
    assert len(record) == record_length and decode_msisdn(record) == number
