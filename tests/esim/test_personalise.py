"""Templates, fast personalisation (patched DER) against a full asn1tools encode, validation."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esim.build import build_package, get_compiled, verify_package
from esim.compiled import CompiledTemplate, KeySlot, compile_template, reference_elements
from esim.errors import ProfileValidationError, TemplateError
from esim.fields import get_field, locate_fields, set_field
from esim.params import ParameterError, SubscriberParams
from esim.saip import ProfilePackage, decode, encode
from esim.saip.validate import validate
from esim.template import builtin_template, builtin_template_names, load_template
from hsm_sim.ecies import ProtectionScheme
from simcore.suci import HomeNetworkPublicKey, suci_calc_info
from tests.hsm.vectors import h, load

TEMPLATES = ["ts48", "usim-isim-milenage"]
_C4 = {r["set"]: r for r in load("suci/ts33501_annex_c4.txt")}
_KEY_A = HomeNetworkPublicKey(30, ProtectionScheme.PROFILE_A, h(_C4["C.4.3.1"], "hn_public"))
_KEY_B = HomeNetworkPublicKey(27, ProtectionScheme.PROFILE_B, h(_C4["C.4.4.1"], "hn_public"))
SUCI_CALC_INFOS = (suci_calc_info([_KEY_A]), suci_calc_info([_KEY_B, _KEY_A]),
                   suci_calc_info([_KEY_B], null_scheme=False))


def _luhn(digits: str) -> str:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return digits + str((10 - total % 10) % 10)


def random_params(rng: random.Random) -> SubscriberParams:
    def digits(n: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(n))

    return SubscriberParams(
        iccid=_luhn("89" + digits(rng.choice((16, 17)))), imsi="00101" + digits(10),
        pin1=digits(rng.randint(4, 8)), puk1=digits(8), pin2=digits(4), puk2=digits(8),
        adm1=digits(8) if rng.random() < 0.5 else digits(16).replace("1", "A"),
        acc=rng.choice([None, 1 << rng.randint(0, 15)]),
        spn=rng.choice([None, "", "Net " + digits(3)]),
        hplmn=rng.choice([None, ("00101",), (digits(5), digits(6))]),
        oplmn=rng.choice([None, (), tuple(digits(5) for _ in range(rng.randint(0, 40)))]),
        smsc=rng.choice([None, "+" + digits(11), digits(6)]),
        ehplmn=rng.choice([None, (), tuple(digits(rng.choice((5, 6)))
                                           for _ in range(rng.randint(1, 10)))]),
        msisdn=rng.choice([None, "+" + digits(rng.randint(1, 20)), digits(rng.randint(1, 20))]),
        impi=rng.choice([None, digits(15) + "@ims.example.net"]),
        impu=rng.choice([None, ("sip:+" + digits(11) + "@ims.example.net",),
                         ("sip:" + digits(15) + "@ims.example.net", "tel:+" + digits(11),
                          "sip:user@ims.example.net")]),
        ims_domain=rng.choice([None, "ims.example.net"]),
        mnc_length=rng.choice([None, 2]),
        suci_calc_info=rng.choice([None, *SUCI_CALC_INFOS]),
        routing_indicator=rng.choice([None, "0", digits(rng.randint(1, 4))]))


def key_bytes(slot_name: str, n: int, seed: int) -> bytes:
    return random.Random(f"{slot_name}/{seed}").randbytes(n)


def patcher(seed: int):  # type: ignore[no-untyped-def]
    """What the HSM side does: write each key into its slot (test keys here)."""
    def patch(buf: bytearray, slots: Sequence[KeySlot]) -> None:
        for s in slots:
            buf[s.offset:s.offset + s.length] = key_bytes(s.name, s.length, seed)
    return patch


def full_encode(name: str, params: SubscriberParams, seed: int) -> bytes:
    elements, located = reference_elements(builtin_template(name), params)
    for f in located:
        if f.encode is None:
            set_field(elements, f, key_bytes(f.param, f.length, seed))
    return encode(elements)


def test_builtin_templates_listed() -> None:
    assert set(TEMPLATES) <= set(builtin_template_names())


@pytest.mark.slow
@pytest.mark.parametrize("name", TEMPLATES)
def test_thousands_of_subscribers_equal_full_encode(name: str) -> None:
    """Patch path vs asn1tools encode of the decoded tree with the same fields set."""
    compiled = get_compiled(name)
    elements, located = reference_elements(compiled.template, random_params(random.Random(0)))
    rng = random.Random(f"subscribers/{name}")
    for n in range(1000):
        params = random_params(rng)
        for f in located:
            set_field(elements, f, key_bytes(f.param, f.length, n) if f.encode is None
                      else f.encode(params))
        assert compiled.personalise(params, patcher(n)) == encode(elements), params


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.integers(0, 2**32), st.sampled_from(TEMPLATES))
def test_random_subscribers_fresh_reference(rng: random.Random, seed: int, name: str) -> None:
    params = random_params(rng)
    der = build_package(name, params, patcher(seed))
    assert der == full_encode(name, params, seed)
    package = verify_package(der)
    assert package.iccid == package.ef_iccid == params.iccid
    assert package.imsi == params.imsi


def test_decoded_values_and_key_slots() -> None:
    compiled = get_compiled("usim-isim-milenage")
    params = SubscriberParams("8949000000000000018", "262019876543210", pin1="1234",
                              puk1="12345678", pin2="5678", puk2="87654321",
                              adm1="0011223344556677", spn="Acme", hplmn=("26201",),
                              smsc="+491710760000")
    der = build_package(compiled, params, patcher(7), verify=True)
    p = ProfilePackage.from_der(der)
    assert p.algorithms == ["milenage", "milenage"]
    assert "csim" not in [e.kind for e in p.elements]
    assert p.one("header").value["profileType"] == "simsmith USIM+ISIM Milenage"
    algo = p.all("akaParameter")[0].value["algoConfiguration"][1]
    assert algo["key"] == key_bytes("ki", 16, 7) and algo["opc"] == key_bytes("opc", 16, 7)
    usim = p.one("usim")
    assert usim.file_content("ef-acc") == bytes.fromhex("0001")  # class 0: IMSI ends in 0
    assert usim.file_content("ef-spn") == b"\x01Acme" + b"\xff" * 12
    smsp = usim.file_content("ef-smsp")
    assert smsp[-28:] == bytes.fromhex("FD" + "FF" * 12 + "0791947101670000FFFFFFFF" + "FFFFFF")
    assert p.one("opt-usim").file_content("ef-hplmnwact")[:5] == bytes.fromhex("62F210C880")
    pins = {c["keyReference"]: c["pinValue"] for c in p.all("pinCodes")[0].value["pinCodes"][1]}
    assert pins[1] == b"1234\xff\xff\xff\xff" and pins[10] == bytes.fromhex("0011223344556677")
    names = {s.name for s in compiled.key_slots()}
    assert names == {"ki", "opc"} | {f"ota-kvn0{v}-kid0{k}" for v in (1, 2) for k in (1, 2, 3)}
    assert all(s.length == 16 for s in compiled.key_slots())


def test_tuak_template(tmp_path: Path) -> None:
    base = builtin_template("ts48").base
    (tmp_path / "base.der").write_bytes(base)
    (tmp_path / "tuak.toml").write_text("""
[template]
name = "tuak"
base = "base.der"
drop = [15, 16, 17, 18, 30]  # the CSIM, its PEs and the RFM instance aimed at it
services = ["usim", "isim", "tuak256"]
parameters = ["iccid", "imsi", "ki", "opc"]
[algorithm]
name = "tuak"
key_length = 32
opc_length = 32
number_of_keccak = 1
""")
    template = load_template(tmp_path / "tuak.toml")
    compiled = compile_template(template)
    assert {(s.name, s.length) for s in compiled.key_slots()} == {("ki", 32), ("opc", 32)}
    params = SubscriberParams("8944000000000000017", "001010000000001")
    der = compiled.personalise(params, patcher(1))
    p = verify_package(der)
    assert p.algorithms == ["tuak", "tuak"]
    algo = p.all("akaParameter")[0].value["algoConfiguration"][1]
    assert algo["numberOfKeccak"] == 1 and algo["key"] == key_bytes("ki", 32, 1)
    # ... and a template whose services do not match its algorithm is refused at compile time
    (tmp_path / "bad.toml").write_text((tmp_path / "tuak.toml").read_text().replace(
        '"tuak256"', '"tuak128"'))
    with pytest.raises(ProfileValidationError, match=r"eUICC-Mandatory-services.*tuak256"):
        compile_template(load_template(tmp_path / "bad.toml"))


@pytest.mark.parametrize(("text", "message"), [
    ("[template]\nname='x'\n", "needs 'base'"),
    ("[template]\nname='x'\nbase='nope.der'\nparameters=[]\n[algorithm]\nname='milenage'\n",
     "cannot read base package"),
    ("[template]\nname='x'\nbase='b'\nparameters=[]\n[algorithm]\nname='comp128'\n",
     "name must be one of"),
    ("[template]\nname='x'\nbase='b'\nparameters=[]\n[algorithm]\nname='milenage'\n"
     "key_length=32\n", "takes keys of"),
    ("not toml [", "not valid TOML"),
])
def test_template_file_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "t.toml").write_text(text)
    with pytest.raises(TemplateError, match=message):
        load_template(tmp_path / "t.toml")


def test_template_parameter_errors(tmp_path: Path) -> None:
    template = builtin_template("ts48")
    template.parameters = ("iccid", "mms")
    with pytest.raises(TemplateError, match="unknown parameters"):
        compile_template(template)
    template.parameters = ("iccid",)
    template.drop = (99,)
    with pytest.raises(TemplateError, match="identifications"):
        compile_template(template)


@pytest.mark.parametrize(("change", "name"), [
    ({"iccid": "89ABC"}, "ICCID"), ({"imsi": "0010"}, "IMSI"), ({"pin1": "12"}, "pin1"),
    ({"puk1": "1234567"}, "puk1"), ({"adm1": "1234"}, "adm1"), ({"acc": 1 << 16}, "acc"),
    ({"spn": "x" * 17}, "spn"), ({"spn": "Ä"}, "spn"), ({"hplmn": ("0010",)}, "hplmn"),
    ({"oplmn": ("00101",) * 51}, "oplmn"), ({"smsc": "+12a"}, "smsc"),
])
def test_parameter_errors_name_parameter_not_value(change: dict[str, object], name: str) -> None:
    base = dict(iccid="8944000000000000017", imsi="001010000000001", pin1="1234",
                puk1="12345678", pin2="4321", puk2="87654321", adm1="11223344")
    base.update(change)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=name) as info:
        build_package("ts48", SubscriberParams(**base), patcher(0))  # type: ignore[arg-type]
    for secret in ("12345678", "87654321", "11223344"):
        assert secret not in str(info.value)


def test_secrets_stay_out_of_reprs() -> None:
    params = SubscriberParams("8944000000000000017", "001010000000001", pin1="9182",
                              puk1="55501234", adm1="77665544")
    text = repr(params) + str(params) + repr(get_compiled("ts48"))
    for secret in ("9182", "55501234", "77665544"):
        assert secret not in text
    assert "8944000000000000017" in text
    with pytest.raises(ParameterError) as info:
        build_package("ts48", SubscriberParams("8944000000000000017", "001010000000001",
                                               pin1="1", puk1="55501234"), patcher(0))
    assert "55501234" not in str(info.value)


def test_patch_keys_must_keep_lengths() -> None:
    def bad(buf: bytearray, slots: Sequence[KeySlot]) -> None:
        buf[slots[0].offset:slots[0].offset + 1] = b"\x00\x00"

    params = SubscriberParams("8944000000000000017", "001010000000001", puk1="12345678",
                              pin2="1234", puk2="12345678", adm1="12345678")
    with pytest.raises(TemplateError, match="length"):
        get_compiled("ts48").personalise(params, bad)


def _elements() -> list:  # type: ignore[type-arg]
    return decode(builtin_template("ts48").base)


@pytest.mark.parametrize(("mutate", "where"), [
    (lambda e: e.pop(0), "first profile element must be the header"),
    (lambda e: e.pop(), "last profile element must be end"),
    (lambda e: e[3].value["pin-Header"].update(identification=5), "5 is also used by pukCodes"),
    (lambda e: e[1].value["ef-iccid"].__setitem__(1, ("fillFileContent", bytes(10))),
     r"mf#4\.ef-iccid"),
    (lambda e: e[1].value["ef-iccid"].__setitem__(
        1, ("fillFileContent", bytes.fromhex("98001032547698103224"))), "differs from the header"),
    (lambda e: e[10].value["algoConfiguration"][1].update(key=bytes(15)),
     r"akaParameter#11\.key: is 15 bytes"),
    (lambda e: e[0].value["eUICC-Mandatory-services"].pop("isim"), "isim element is present"),
    (lambda e: e[0].value["eUICC-Mandatory-services"].pop("usim-test-algorithm"),
     "uses usim-test-algorithm"),
    (lambda e: e[7].value["ef-imsi"].__setitem__(1, ("fillFileContent", b"\x08" + bytes(8))),
     r"usim#8\.ef-imsi"),
])
def test_validation_names_element_and_field(mutate, where: str) -> None:  # type: ignore[no-untyped-def]
    elements = _elements()
    validate(elements)
    mutate(elements)
    with pytest.raises(ProfileValidationError, match=where):
        validate(elements)


def test_field_locations_read_back() -> None:
    template = builtin_template("ts48")
    elements = template.base_elements()
    located = locate_fields(template, elements)
    iccid = [f for f in located if f.param == "iccid"]
    assert [f.where for f in iccid] == ["header.iccid", "mf#4.ef-iccid.1"]
    assert get_field(elements, iccid[0]) == bytes.fromhex("89000123456789012341")
    compiled: CompiledTemplate = get_compiled(template)
    for f, offset in zip(compiled.fields, compiled.offsets, strict=True):
        assert len(compiled.der[offset:offset + f.length]) == f.length


def test_build_packages_batch_verifies_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    import esim.build

    subs = [random_params(random.Random(i)) for i in range(7)]
    verified: list[bytes] = []
    real = esim.build.verify_package
    monkeypatch.setattr(esim.build, "verify_package", lambda der: verified.append(der) or real(der))
    out = list(esim.build.build_packages("ts48", subs, lambda p: patcher(int(p.imsi[-4:])),
                                         verify_every=3))
    assert [p for p, _ in out] == subs
    assert [der for _, der in out] == [full_encode("ts48", p, int(p.imsi[-4:])) for p in subs]
    assert verified == [out[0][1], out[3][1], out[6][1]]
