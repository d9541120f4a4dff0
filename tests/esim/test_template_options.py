"""Issue 13 item 8: template options are applied or refused, one MNC-length rule for every
template, no remote-file-management entry for an application the profile does not have."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest

from esim.build import build_package, get_compiled
from esim.compiled import KeySlot
from esim.errors import TemplateError
from esim.params import ParameterError, SubscriberParams
from esim.saip import ProfilePackage, decode
from esim.template import builtin_template
from tests.helpers.cli import LAB, cli_env, esim_sims, ok, refused  # noqa: F401  (cli_env: fixture)
from tests.wiring.conftest import hsm  # noqa: F401  (fixture)

CSIM_AID = bytes.fromhex("A0000003431002F310FFFF89020000FF")


def _keys(buf: bytearray, slots: Sequence[KeySlot]) -> None:
    for s in slots:
        buf[s.offset:s.offset + s.length] = b"\x11" * s.length


def _params(mnc_length: int | None) -> SubscriberParams:
    return SubscriberParams(iccid="8988211000000000011", imsi="310150123456789", pin1="1234",
                            puk1="12345678", pin2="4321", puk2="87654321", adm1="11111111",
                            mnc_length=mnc_length)


@pytest.mark.parametrize("template", ["ts48", "usim-isim-milenage"])
def test_one_mnc_length_rule_for_every_template(template: str) -> None:
    assert get_compiled(template).mnc_length == 2  # both EF.ADs say 2 MNC digits
    with pytest.raises(ParameterError) as e:  # a SIM of a 3-digit-MNC range
        build_package(template, _params(3), _keys)
    assert e.value.name == "mnc_length" and "the template's EF.AD says 2" in str(e.value)
    assert f"(template {template})" in str(e.value)
    for agreeing in (2, None):  # None: the range states none, the template's EF.AD stands
        der = build_package(template, _params(agreeing), _keys, verify=True)
        assert ProfilePackage.from_der(der).iccid == "8988211000000000011"


def _rfm_targets(der: bytes) -> list[bytes]:
    return [e.value["adfRFMAccess"]["adfAID"] for e in decode(der)
            if e.kind == "rfm" and "adfRFMAccess" in e.value]


def test_no_rfm_entry_for_the_dropped_csim() -> None:
    assert CSIM_AID in _rfm_targets(get_compiled("ts48").der)  # ts48 keeps its CSIM
    der = get_compiled("usim-isim-milenage").der
    assert not any(e.kind.endswith("csim") for e in decode(der))
    assert CSIM_AID not in _rfm_targets(der) and len(_rfm_targets(der)) == 2  # USIM, ISIM
    keeps_rfm = dataclasses.replace(builtin_template("usim-isim-milenage"),
                                    drop=(15, 16, 17, 18))
    with pytest.raises(TemplateError, match="rfm#30 gives remote file access to ADF "
                                            "A0000003431002F310FFFF89020000FF"):
        keeps_rfm.base_elements()


@pytest.mark.parametrize("args", [["--impi", "alice@ims.example.net"],
                                  ["--impu", "sip:alice@ims.example.net"],
                                  ["--ims-domain", "ims.example.net"]])
@pytest.mark.slow
@pytest.mark.usefixtures("cli_env")
def test_ts48_refuses_isim_options(tmp_path: Path, args: list[str]) -> None:
    iccid = esim_sims(1)[0]["iccid"]
    out = tmp_path / "p.der"
    line = refused("esim", "build", "-t", "ts48", "--iccid", iccid, "-o", str(out), *LAB, *args,
                   code=2)
    assert f"error: {args[0]}: template ts48 does not personalise the ISIM identities" in line
    assert not out.exists()
    if args[0] == "--ims-domain":
        assert "ts48 does not personalise" in refused(
            "esim", "build-batch", "-t", "ts48", "--batch", "e1", "-o", str(tmp_path / "d"),
            *LAB, *args, code=2)
    ok("esim", "build", "-t", "usim-isim-milenage", "--iccid", iccid, "-o", str(out), *LAB,
       *args)  # applied where the template personalises the ISIM (test_cli_build checks how)
