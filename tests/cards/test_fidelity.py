"""The virtual sysmocom cards present what the real ones do (issue 13 item 7): every file of a
real sysmoISIM-SJA5 with its size, record length and SFI (tests/vectors/cards/), the files real
cards link between DF.GSM/DF.TELECOM and ADF.USIM as one file, 52-byte EF.SMSP records, the
ISIM's EF.IST/EF.AD/EF.ARR, service tables that announce only files that exist, and key files
that authenticate when written the way the vendor's tools write them (K at offset 1, OPc at
offset 17 of the SJA key files, the config byte left as the factory set it)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from cards.apdu import Apdu
from cards.commands import ADM1, Uicc
from cards.drivers.base import ISIM_AID, USIM_AID
from cards.fs.codecs import decode_bitmap
from cards.fs.ts_31_102 import EF_IMSI
from cards.read import read_card
from cards.secret import adm_from_text
from cards.status_words import StatusWordError
from cards.virtual.build import FACTORY_IST, LINKED, USIM_SERVICE_FILES
from cards.virtual.card import VirtualUicc
from cards.virtual.loopback import LoopbackTransport
from cards.virtual.milenage_card import c2_sres, c3_kc
from hsm_sim import milenage
from tests.cards.helpers import ADM, KI, OPC

FIXTURE = Path(__file__).parent.parent / "vectors" / "cards" / "sysmoISIM-SJA5-fs.tsv"
SJA = ["sysmoISIM-SJA2", "sysmoISIM-SJA5"]
ALL = [*SJA, "sysmoUSIM-SJS1"]
AID = {"ADF.USIM": USIM_AID, "ADF.ISIM": ISIM_AID}


def _rows() -> list[dict[str, str]]:
    with FIXTURE.open() as fh:
        return [r for r in csv.DictReader(fh, delimiter="\t")
                if r["fid"] and r["type"] == "working_ef"
                and r["structure"] in ("transparent", "linear_fixed", "cyclic")]


def admin(card: VirtualUicc) -> Uicc:
    u = Uicc(LoopbackTransport(card))
    u.verify(ADM1, adm_from_text(ADM))
    return u


def select(u: Uicc, path: str, *, fcp: bool = False):  # type: ignore[no-untyped-def]
    """Select a fixture path like MF/ADF.USIM/DF.GSM-ACCESS/EF.Kc by AID and FIDs."""
    names = path.split("/")[1:]
    fixture = {r["path"]: r["fid"] for r in csv.DictReader(FIXTURE.open(), delimiter="\t")}
    u.select_fid(0x3F00)
    result = None
    for i, name in enumerate(names):
        prefix = "/".join(["MF", *names[: i + 1]])
        if name in AID:
            result = u.select_aid(AID[name], fcp=fcp)
        else:
            result = u.select_fid(int(fixture[prefix], 16), fcp=fcp)
    return result


@pytest.mark.slow
@pytest.mark.parametrize("type_name", SJA)
def test_every_file_of_the_real_card_with_its_size_record_length_and_sfi(type_name: str) -> None:
    u = Uicc(LoopbackTransport(VirtualUicc(type_name)))
    rows = _rows()
    assert len(rows) > 250
    for row in rows:
        fcp = select(u, row["path"], fcp=True)
        assert fcp is not None, row["path"]
        want_size = int(row["file_size"])
        if row["path"].endswith(("/EF.USIM_AUTH_KEY", "/EF.ISIM_AUTH_KEY")) and \
                type_name == "sysmoISIM-SJA2":
            want_size = 33  # the SJA2's key files have no room for TUAK
        assert (fcp.kind, fcp.size) == (row["structure"], want_size), row["path"]
        if row["structure"] != "transparent":
            assert (fcp.record_length, fcp.record_count) == (
                int(row["record_len"]), int(row["num_of_rec"])), row["path"]
        assert fcp.sfi == (int(row["sfi"]) if row["sfi"] else None), row["path"]


@pytest.mark.parametrize("type_name", ALL)
def test_a_52_byte_smsp_record_and_a_34_byte_msisdn_record_can_be_written(type_name: str) -> None:
    u = admin(VirtualUicc(type_name))
    for df in ([0x7F10], [0x7FF0]):
        u.select_path([*df, 0x6F42])
        u.update_record(1, bytes(range(52)))
        assert u.read_record(1, 52) == bytes(range(52))
        u.select_path([*df, 0x6F40])
        u.update_record(1, b"\xff" * 20 + bytes(14))
    with pytest.raises(StatusWordError, match="6700"):
        u.update_record(1, bytes(26))


@pytest.mark.parametrize("type_name", ALL)
def test_linked_files_written_through_either_path_read_back_through_the_other(
        type_name: str) -> None:
    card = VirtualUicc(type_name)
    u = admin(card)
    fixture = {r["path"]: r for r in csv.DictReader(FIXTURE.open(), delimiter="\t")}
    for n, (second, home, name) in enumerate(LINKED):
        a, b = fixture[f"MF/{second}/{name}"], fixture[f"MF/{home}/{name}"]
        # the real card shows both ends with one structure and size: a link is possible
        assert (a["fid"], a["structure"], a["file_size"], a["record_len"]) == (
            b["fid"], b["structure"], b["file_size"], b["record_len"]), name
        for src, dst in ((second, home), (home, second)):
            fcp = select(u, f"MF/{src}/{name}", fcp=True)
            assert fcp is not None
            pattern = bytes((n + i + (src == home)) & 0xFF for i in range(
                fcp.size if fcp.kind == "transparent" else fcp.record_length))
            if fcp.kind == "transparent":
                u.update_binary(pattern)
            else:
                u.update_record(1, pattern)
            select(u, f"MF/{dst}/{name}")
            got = (u.read_binary(len(pattern)) if fcp.kind == "transparent"
                   else u.read_record(1, len(pattern)))
            assert got == pattern, f"{src}/{name} -> {dst}/{name}"


def test_imsi_written_under_df_gsm_is_what_card_read_shows() -> None:
    card = VirtualUicc("sysmoISIM-SJA2")
    u = admin(card)
    u.select_path([0x7F20, 0x6F07])
    u.update_binary(EF_IMSI.encode("001019876543210"))
    assert read_card(LoopbackTransport(card))["imsi"] == "001019876543210"


def _program_like_the_vendor_tools(card: VirtualUicc, ki: bytes, opc: bytes) -> Uicc:
    """The sequence the vendor's documented flow uses: files under DF.GSM and DF.TELECOM (not
    ADF.USIM), and the key files patched in place — K at offset 1, OPc at offset 17 — with
    the config byte left as the factory set it."""
    u = admin(card)
    u.select_path([0x7F20])
    u.select_fid(0x6F07)
    u.update_binary(EF_IMSI.encode("001010000000123"))
    u.select_path([0x7F10, 0x6F42])
    u.update_record(1, b"\xff" * 24 + bytes.fromhex("fd") + b"\xff" * 27)  # 52 bytes
    u.select_fid(0x6F40)
    u.update_record(1, b"\xff" * 20 + bytes.fromhex("0791947106004034ffffffffffff"))
    if card.type.key_layout == "sja":
        u.select_path([0xA515, 0x6F20])
        u.update_binary(ki, 1)
        u.update_binary(opc, 17)
        for aid in (ISIM_AID, USIM_AID):
            u.select_aid(aid)
            u.select_fid(0xAF20)
            u.update_binary(ki, 1)
            u.update_binary(opc, 17)
    else:
        u.select_path([0x7F20, 0x00FF])
        u.update_binary(ki)
        u.select_fid(0x00F7)
        u.update_binary(b"\x01" + opc)
    return u


@pytest.mark.parametrize("type_name", ALL)
def test_a_card_programmed_the_way_real_cards_are_authenticates_hsm_vectors(
        type_name: str) -> None:
    card = VirtualUicc(type_name)
    u = _program_like_the_vendor_tools(card, KI, OPC)
    apps = [USIM_AID] + ([ISIM_AID] if card.type.has_isim else [])
    for seq, aid in enumerate(apps, 1):
        v = milenage.vector(KI, OPC, os.urandom(16), seq << 5, b"\x80\x00")
        u.select_aid(aid)
        out = u.authenticate_3g(v.rand, v.autn)
        assert (out.res, out.ck, out.ik) == (v.xres, v.ck, v.ik), aid.hex()
        sres, kc = u.authenticate_gsm(v.rand)
        assert (sres, kc) == (c2_sres(v.xres), c3_kc(v.ck, v.ik))
    # 2G: RUN GSM ALGORITHM in DF.GSM uses DF.SYSTEM/EF.SIM_AUTH_KEY (= ADF.USIM/AF22)
    v = milenage.vector(KI, OPC, os.urandom(16), 9 << 5, b"\x80\x00")
    t = LoopbackTransport(card)
    t.send(Apdu(0x00, 0xA4, 0x08, 0x0C, bytes.fromhex("7F20")))
    data, sw = t.send(Apdu(0xA0, 0x88, 0x00, 0x00, v.rand, le=0))
    assert sw == 0x9000 and data == c2_sres(v.xres) + c3_kc(v.ck, v.ik)


def test_the_2g_key_file_is_one_file_in_df_system_and_adf_usim() -> None:
    card = VirtualUicc("sysmoISIM-SJA5")
    assert card.node("3F00/A515/6F20") is card.node("3F00/7FF0/AF22")
    u = admin(card)
    u.select_aid(USIM_AID)
    fcp = u.select_fid(0xAF22, fcp=True)
    assert fcp is not None and fcp.fid == 0xAF22 and fcp.size == 33


@pytest.mark.parametrize("type_name", ALL)
def test_the_service_table_announces_only_services_whose_files_exist(type_name: str) -> None:
    card = VirtualUicc(type_name)
    u = Uicc(LoopbackTransport(card))
    u.select_aid(USIM_AID)
    ust = decode_bitmap(u.read_binary(20, sfi=0x04))
    assert ust and set(ust) <= set(USIM_SERVICE_FILES), ust
    fids = {r["path"].rsplit("/", 1)[1]: int(r["fid"], 16)
            for r in csv.DictReader(FIXTURE.open(), delimiter="\t")
            if r["fid"] and r["path"].startswith("MF/ADF.USIM/")
            and r["path"].count("/") == 2}
    for service in ust:
        for name in USIM_SERVICE_FILES[service]:
            u.select_aid(USIM_AID)
            assert u.select_fid(fids[name], fcp=True) is not None, (service, name)


@pytest.mark.parametrize("type_name", SJA)
def test_the_isim_has_ist_ad_and_arr(type_name: str) -> None:
    u = Uicc(LoopbackTransport(VirtualUicc(type_name)))
    u.select_aid(ISIM_AID)
    assert decode_bitmap(u.read_binary(3, sfi=0x07)) == FACTORY_IST  # EF.IST
    assert len(u.read_binary(3, sfi=0x03)) == 3  # EF.AD
    arr = u.select_fid(0x6F06, fcp=True)
    assert arr is not None and (arr.record_length, arr.record_count) == (50, 4)
    pcscf = u.select_fid(0x6F09, fcp=True)  # IST service 1 needs EF.P-CSCF
    assert pcscf is not None and pcscf.record_length == 128
