"""`simsmith esim build` / `build-batch` with the profile options (EF.EHPLMN, EF.MSISDN, ISIM
identities) against a real store and soft HSM (the wiring tests' fixtures); bad input is one
line on stderr naming the option."""

from __future__ import annotations

from pathlib import Path

import pytest

from esim.ims import decode_impu_records, decode_nai_tlv, derive_impi, derive_impu
from esim.params import decode_msisdn, decode_plmn_list
from esim.saip import ProfilePackage
from tests.helpers.cli import (  # noqa: F401  (cli_env: fixture)
    LAB,
    cli_env,
    esim_sims,
    ok,
    refused,
    runner,
)
from tests.wiring.conftest import hsm  # noqa: F401  (fixture)
from tools.cli import app

# Clear packages for a lab SM-DP+ (LAB: these tests decode the files); encrypted ones:
# tests/esim/test_esim_export.py.


def test_help_names_the_options() -> None:
    for command, options in ((["build"], ["--ehplmn", "--msisdn", "--with-msisdn", "--impi",
                                          "--impu", "--ims-domain", "--routing-indicator"]),
                             (["build-batch"], ["--ehplmn", "--with-msisdn", "--ims-domain",
                                                "--routing-indicator"])):
        result = runner.invoke(app, ["esim", *command, "--help"], terminal_width=200)
        assert result.exit_code == 0
        for option in options:
            assert option in result.output


@pytest.mark.slow
@pytest.mark.usefixtures("cli_env")
def test_build_with_profile_options(tmp_path: Path) -> None:
    sim = esim_sims(2)[0]
    iccid, imsi = sim["iccid"], sim["imsi"]
    out = tmp_path / "p.der"
    ok("esim", "build", "-t", "usim-isim-milenage", "--iccid", iccid, "-o", str(out), *LAB,
       "--ehplmn", "00101,00102", "--ehplmn", "310410", "--msisdn", "+447700900123")
    p = ProfilePackage.from_der(out.read_bytes())
    opt, isim = p.one("opt-usim"), p.one("isim")
    assert decode_plmn_list(opt.file_content("ef-ehplmn")) == ["00101", "00102", "310410"]
    assert decode_msisdn(opt.file_content("ef-msisdn")) == "+447700900123"
    # derived: the IMSI range has a 2-digit MNC, as the template's EF.AD
    assert decode_nai_tlv(isim.file_content("ef-impi")) == derive_impi(imsi, 2)
    assert decode_impu_records(isim.file_content("ef-impu"), 64) == [derive_impu(imsi, 2)]
    assert decode_nai_tlv(isim.file_content("ef-domain")) == "ims.mnc001.mcc001.3gppnetwork.org"
    ok("esim", "build", "-t", "usim-isim-milenage", "--iccid", iccid, "-o", str(out), *LAB,
       "--impi", "alice@ims.example.net", "--impu", "sip:alice@ims.example.net",
       "--impu", "tel:+447700900123", "--ims-domain", "ims.example.net")
    isim = ProfilePackage.from_der(out.read_bytes()).one("isim")
    assert decode_nai_tlv(isim.file_content("ef-impi")) == "alice@ims.example.net"
    assert decode_impu_records(isim.file_content("ef-impu"), 64) == [
        "sip:alice@ims.example.net", "tel:+447700900123"]
    assert decode_nai_tlv(isim.file_content("ef-domain")) == "ims.example.net"
    # the 5G SUCI files: the registry's key (issue 20 item 4) and the routing indicator given
    ok("suci", "key", "generate", "--key-id", "4", "--profile", "B")
    ok("esim", "build", "-t", "usim-isim-milenage", "--iccid", iccid, "-o", str(out), *LAB,
       "--routing-indicator", "77")
    five = ProfilePackage.from_der(out.read_bytes()).one("df-5gs")
    assert five.file_content("ef-routing-indicator") == bytes.fromhex("77FFFFFF")
    assert five.file_content("ef-suci-calc-info")[:9] == bytes.fromhex("A004020100 00A1 26 80"
                                                                       .replace(" ", ""))


@pytest.mark.slow
@pytest.mark.usefixtures("cli_env")
def test_msisdn_from_inventory(tmp_path: Path) -> None:
    sims = esim_sims(2)
    ok("msisdn", "add-range", "+447700900000", "+447700900009", "--name", "n")
    ok("msisdn", "assign", sims[0]["iccid"], "--msisdn", "+447700900005")
    out = tmp_path / "p.der"
    ok("esim", "build", "-t", "ts48", "--iccid", sims[0]["iccid"], "-o", str(out), *LAB,
       "--with-msisdn")
    opt = ProfilePackage.from_der(out.read_bytes()).one("opt-usim")
    assert decode_msisdn(opt.file_content("ef-msisdn")) == "+447700900005"
    assert "has no MSISDN in the inventory" in refused(
        "esim", "build", "-t", "ts48", "--iccid", sims[1]["iccid"], "-o", str(out), *LAB,
        "--with-msisdn")
    out_dir = tmp_path / "batch"
    ok("esim", "build-batch", "-t", "usim-isim-milenage", "--batch", "e1", "-o", str(out_dir), *LAB,
       "--with-msisdn", "--ehplmn", "00101", "--ims-domain", "ims.example.net", "--json")
    got = {}
    for sim in sims:
        p = ProfilePackage.from_der((out_dir / f"{sim['iccid']}.der").read_bytes())
        opt, isim = p.one("opt-usim"), p.one("isim")
        got[sim["iccid"]] = decode_msisdn(opt.file_content("ef-msisdn"))
        assert decode_plmn_list(opt.file_content("ef-ehplmn")) == ["00101"]
        assert decode_nai_tlv(isim.file_content("ef-domain")) == "ims.example.net"
        assert decode_nai_tlv(isim.file_content("ef-impi")) == derive_impi(sim["imsi"], 2)
    assert got == {sims[0]["iccid"]: "+447700900005", sims[1]["iccid"]: None}


@pytest.mark.parametrize(("args", "message"), [
    (["--ehplmn", "0010"], "error: --ehplmn: plmn: '0010' must be MCC and MNC, 5 or 6 digits"),
    (["--msisdn", "+44 7700"], "error: --msisdn: msisdn: must be 1 to 20 digits"),
    (["--impi", "nobody"], "error: --impi: impi: must be an NAI"),
    (["--impu", "http://x.org"], "error: --impu: impu: 'http://x.org' must be a 'sip:'"),
    (["--ims-domain", "-bad-"], "error: --ims-domain: ims_domain: must be a domain name"),
    (["--msisdn", "+4477", "--with-msisdn"], "exclude each other"),
    (["--routing-indicator", "12a"], "error: --routing-indicator: not 1 to 4 digits"),
])
@pytest.mark.usefixtures("cli_env")
def test_bad_options_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    line = refused("esim", "build", "-t", "usim-isim-milenage", "--iccid", "8988211000000000011",
                   "-o", str(tmp_path / "x.der"), *LAB, *args, code=2)
    assert message in line


@pytest.mark.usefixtures("cli_env")
def test_identity_too_long_for_the_file(tmp_path: Path) -> None:
    iccid = esim_sims(1)[0]["iccid"]
    line = refused("esim", "build", "-t", "usim-isim-milenage", "--iccid", iccid, "-o",
                   str(tmp_path / "x.der"), *LAB, "--impi", "u" * 90 + "@ims.example.net")
    assert f"SIM {iccid}: impi: needs 108 bytes" in line and "the file holds 96" in line
