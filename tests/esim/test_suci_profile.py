"""SUCI in eSIM profiles (issue 20 item 4): the templates carry DF.5GS's EF.SUCI_Calc_Info and
EF.Routing_Indicator and DF.SAIP's EF.SUCI_Calc_Info (TS 31.102 §4.4.11, TCA SAIP §9.5.12), in
the TS.48 SUCI test profile's structure, patched per profile through the compiled path; the
built package decodes to the keys, priority list and routing indicator given (TS 33.501 Annex
C.4 keys, TS 31.121 §4.9.4's file); EF.UST services 124/125 follow the template."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from cards.fs.codecs import decode_bitmap
from cards.fs.ts_31_102_5gs import EF_Routing_Indicator, EF_SUCI_Calc_Info
from esim.build import build_package, get_compiled, verify_package
from esim.params import ParameterError, SubscriberParams
from esim.saip import ProfileElement
from esim.template import load_template
from hsm_sim.ecies import ProtectionScheme
from simcore.suci import HomeNetworkPublicKey, suci_calc_info
from tests.esim.test_personalise import full_encode, patcher
from tests.hsm.vectors import h, load

C4 = {r["set"]: r for r in load("suci/ts33501_annex_c4.txt")}
KEY_A = HomeNetworkPublicKey(30, ProtectionScheme.PROFILE_A, h(C4["C.4.3.1"], "hn_public"))
KEY_B = HomeNetworkPublicKey(27, ProtectionScheme.PROFILE_B, h(C4["C.4.4.1"], "hn_public"))
# TS 31.121 §4.9.4: Profile B (key 27) first, Profile A (key 30), then the null-scheme.
TS31121 = bytes.fromhex(
    "A006020101020000A14B80011B8121"
    "0272DA71976234CE833A6907425867B82E074D44EF907DFB4B3E21C1C2256EBCD1"
    "80011E8120" "5A8D38864820197C3394B92613B20B91633CBD897119273BF8E4A6F4EEC0A650")
PARAMS = SubscriberParams(iccid="8988211000000000011", imsi="001010000000011", pin1="1234",
                          puk1="12345678", pin2="1234", puk2="12345678", adm1="12345678")


def content(elements: list[ProfileElement], kind: str, file: str) -> bytes:
    e = next(e for e in elements if e.kind == kind)
    return b"".join(item for choice, item in e.file(file) if choice == "fillFileContent")


def ust(elements: list[ProfileElement]) -> list[int]:
    return decode_bitmap(content(elements, "usim", "ef-ust"))


@pytest.mark.parametrize("name", ["ts48", "usim-isim-milenage"])
def test_built_package_carries_the_keys_priority_and_routing_indicator(name: str) -> None:
    assert suci_calc_info([KEY_B, KEY_A]) == TS31121
    params = dataclasses.replace(PARAMS, suci_calc_info=TS31121, routing_indicator="17")
    der = build_package(name, params, patcher(1))
    assert der == full_encode(name, params, 1)  # compiled patch path == a full re-encode
    els = verify_package(der).elements
    calc = content(els, "df-5gs", "ef-suci-calc-info")
    assert len(calc) == 118 and calc == TS31121 + b"\xff" * (118 - len(TS31121))
    assert [(e["scheme"], e["key_id"]) for e in EF_SUCI_Calc_Info.decode(calc)] == [
        (2, 27), (1, 30), (0, None)]
    assert content(els, "df-saip", "ef-suci-calc-info-usim") == calc
    assert EF_Routing_Indicator.decode(content(els, "df-5gs", "ef-routing-indicator")) == "17"
    assert content(els, "df-5gs", "ef-routing-indicator") == bytes.fromhex("71FFFFFF")
    assert {122, 123, 124, 125, 126} <= set(ust(els))  # TS.48: the USIM computes the SUCI


def test_defaults_are_the_null_scheme_and_routing_indicator_0() -> None:
    els = verify_package(build_package("usim-isim-milenage", PARAMS, patcher(2))).elements
    assert content(els, "df-5gs", "ef-suci-calc-info")[:5] == bytes.fromhex("A0020000FF")
    assert content(els, "df-5gs", "ef-routing-indicator") == bytes.fromhex("F0FFFFFF")


def test_same_package_length_whatever_the_keys() -> None:
    compiled = get_compiled("usim-isim-milenage")
    sizes = {len(compiled.personalise(dataclasses.replace(PARAMS, suci_calc_info=c),
                                      patcher(3)))
             for c in (None, suci_calc_info([KEY_A]), TS31121)}
    assert sizes == {len(compiled.der)}


def test_bad_values_are_named() -> None:
    with pytest.raises(ParameterError, match="suci_calc_info"):
        build_package("ts48", dataclasses.replace(PARAMS, suci_calc_info=b"\xa0\x03\x01"),
                      patcher(4))
    with pytest.raises(ParameterError, match=r"suci_calc_info.*bytes for a file of 118"):
        big = suci_calc_info([KEY_B, KEY_A, dataclasses.replace(KEY_A, key_id=31)])
        build_package("ts48", dataclasses.replace(PARAMS, suci_calc_info=big), patcher(4))
    with pytest.raises(ParameterError, match="routing_indicator"):
        build_package("ts48", dataclasses.replace(PARAMS, routing_indicator="12345"),
                      patcher(4))


def test_template_can_have_the_phone_compute_it(tmp_path: Path) -> None:
    base = Path(__file__).parents[2] / "esim" / "templates" / "ts48v7_saip23_NoBERTLV.der"
    (tmp_path / "base.der").write_bytes(base.read_bytes())
    (tmp_path / "me.toml").write_text(textwrap.dedent("""
        [template]
        name = "me"
        base = "base.der"
        parameters = ["iccid", "imsi", "ki", "opc", "suci", "routing-indicator"]
        [algorithm]
        name = "usim-test-algorithm"
        [defaults]
        suci_calculation = "me"
        routing_indicator = "123"
        """))
    compiled = get_compiled(load_template(tmp_path / "me.toml"))
    els = verify_package(compiled.personalise(PARAMS, patcher(5))).elements
    assert 124 in ust(els) and 125 not in ust(els)
    assert EF_Routing_Indicator.decode(content(els, "df-5gs", "ef-routing-indicator")) == "123"


@pytest.mark.parametrize("name", ["ts48", "usim-isim-milenage"])
def test_the_ts48_suci_test_profile_structure_is_kept(name: str) -> None:
    """The 5G files keep TS.48's structure: the same files with the same file descriptors
    (FIDs, sizes, access rules, fill patterns); only their contents are personalised."""
    from esim.saip import decode

    base = {e.kind: e for e in decode(get_compiled(name).template.base)}
    params = dataclasses.replace(PARAMS, suci_calc_info=TS31121, routing_indicator="9")
    built = {e.kind: e for e in verify_package(build_package(name, params, patcher(6))).elements}
    for kind in ("df-5gs", "df-saip"):
        assert list(built[kind].value) == list(base[kind].value), kind
        for file, items in base[kind].value.items():
            if not isinstance(items, list):
                continue
            fcps = [i for c, i in items if c == "fileDescriptor"]
            assert [i for c, i in built[kind].value[file] if c == "fileDescriptor"] == fcps
