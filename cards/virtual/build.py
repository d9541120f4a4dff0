"""Builds a factory-fresh virtual card of a given type, laid out as a real sysmocom card.

The standard files (MF, DF.GSM, DF.TELECOM, ADF.USIM, ADF.ISIM and their sub-DFs) come from
`layouts/sysmoISIM-SJA5.tsv`: every file a real sysmoISIM-SJA5 reports in its FCP, with its
FID, structure, size, record length and count and SFI (ETSI TS 102 221 §11.1.1.4; source and
full dump in tests/vectors/cards/README.md). Files the card does not have (no FID in the dump)
and BER-TLV files (not emulated) are left out. The card type adds its vendor files: the SJA2/
SJA5 DF.SYSTEM and AFxx key files, or the SJS1's 00FF/00F7.

Linked files (`LINKED`): on real cards the DF.GSM and DF.TELECOM files that have a USIM twin
with the same coding (3GPP TS 31.102 §4.2 / TS 51.011 §10, the SIM/USIM file mapping of
TS 31.900) are one file reachable from both DFs — what a 2G tool writes under DF.GSM is what a
USIM reader sees. The same holds for the SJA's 2G key file DF.SYSTEM/6F20 and
ADF.USIM/AF22 EF.USIM_AUTH_KEY_2G. The dump shows both ends with equal structure and size
(checked here at build time); the list itself follows the specs and public descriptions of the
cards and should be checked against the vendor manual.

Factory contents: FF everywhere except the ICCID, EF.DIR, the service tables (announcing only
services whose files exist, `USIM_SERVICE_FILES`), EF.AD, the Milenage constants and random
factory keys.
"""

from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass
from importlib import resources

from cards.fs.codecs import encode_bitmap
from cards.fs.ts_31_102 import EF_AD, EF_UST
from cards.fs.ts_51_011 import EF_AD as GSM_AD
from cards.fs.ts_51_011 import EF_SST
from cards.fs.ts_102_221 import EF_DIR, EF_ICCID
from cards.virtual.card_types import ALGO_MILENAGE, CONFIG_OPC, ISIM_AID, USIM_AID, CardType
from cards.virtual.filesystem import ADM1, ALW, NEV, PIN1, Node, df, ef, ef_records

USIM_FID, ISIM_FID = 0x7FF0, 0x7FF1  # ADFs are selected by AID; these FIDs only name paths
LAYOUT = "sysmoISIM-SJA5.tsv"

# TS 31.102 §4.2.8: service n -> the files it needs (under ADF.USIM). A service is announced in
# the factory EF.UST only when its files exist; 33 ("shall be set to 1") and 38 (GSM security
# context) need no file. 122-126 are the 5GS services (§4.4.11.1: their files are in DF.5GS;
# 125, SUCI calculation by the USIM, reads DF.SAIP).
USIM_SERVICE_FILES: dict[int, tuple[str, ...]] = {
    2: ("EF.FDN",), 4: ("EF.SDN",), 10: ("EF.SMS",), 11: ("EF.SMSR",), 12: ("EF.SMSP",),
    14: ("EF.CCP2",), 15: ("EF.CBMI",), 17: ("EF.GID1",), 19: ("EF.SPN",),
    20: ("EF.PLMNwAcT",), 21: ("EF.MSISDN",), 27: ("DF.GSM-ACCESS",), 33: (), 35: ("EF.ACL",),
    38: (), 122: ("DF.5GS",), 123: ("DF.5GS",), 124: ("DF.5GS",), 125: ("DF.5GS", "DF.SAIP"),
    126: ("DF.5GS",),
}
# Factory: 5G files present, SUCI computed by the ME (124 without 125), as sysmocom ships its
# ISIMs; `card program` chooses (EF.UST 124/125) and writes the keys.
FACTORY_UST = sorted(set(USIM_SERVICE_FILES) - {125})
# TS 51.011 §10.3.7 services allocated and activated in DF.GSM/EF.SST: 1 CHV1 disable, 2 ADN,
# 3 FDN, 4 SMS, 5 AoC, 7 PLMNsel, 9 MSISDN, 10 EXT1, 11 EXT2, 12 SMSP, 13 LND, 14 CBMI,
# 15 GID1, 16 GID2, 17 SPN, 18 SDN, 19 EXT3 — not 6 (EF.CCP: the real card has none).
FACTORY_SST = [1, 2, 3, 4, 5, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
# TS 31.103 §4.2.7 EF.IST: 1 P-CSCF address (EF.P-CSCF exists).
FACTORY_IST = [1]

_GSM_TWINS = ("EF.IMSI", "EF.SPN", "EF.PLMNwAcT", "EF.OPLMNwAcT", "EF.HPLMNwAcT", "EF.ACC",
              "EF.FPLMN", "EF.LOCI", "EF.HPPLMN", "EF.GID1", "EF.GID2", "EF.CBMI", "EF.CBMID",
              "EF.CBMIR", "EF.PUCT", "EF.ACMmax", "EF.ACM", "EF.eMLPP", "EF.AAeM", "EF.PNN",
              "EF.OPL", "EF.SPDI", "EF.MBDN", "EF.MBI", "EF.MWIS", "EF.CFIS")
_TELECOM_TWINS = ("EF.MSISDN", "EF.SMSP", "EF.SMS", "EF.SMSS", "EF.SMSR", "EF.FDN", "EF.SDN",
                  "EF.EXT2", "EF.EXT3", "EF.BDN", "EF.CMI")
# (DF reached second, home DF, file name): the home DF keeps the file's SFI.
LINKED: tuple[tuple[str, str, str], ...] = (
    *(("DF.GSM", "ADF.USIM", n) for n in _GSM_TWINS),
    *(("DF.TELECOM", "ADF.USIM", n) for n in _TELECOM_TWINS),
)
SJA_KEY_LINKS = (("ADF.USIM", "EF.USIM_AUTH_KEY_2G", "DF.SYSTEM", "EF.SIM_AUTH_KEY"),)

# Files a subscriber (PIN1) may update as well as the operator (ADM1), TS 31.102 §4.2.
PIN1_UPDATE = {"EF.LOCI", "EF.FPLMN", "EF.PLMNwAcT", "EF.PLMNsel", "EF.PL", "EF.MSISDN",
               "EF.SMSP", "EF.SMS", "EF.SMSS", "EF.SMSR", "EF.ADN", "EF.LND", "EF.Kc",
               "EF.KcGPRS", "EF.Keys", "EF.KeysPS", "EF.PSLOCI", "EF.EPSLOCI", "EF.EPSNSC",
               "EF.LOCIGPRS", "EF.START-HFN", "EF.THRESHOLD", "EF.ACM", "EF.ICI", "EF.OCI",
               "EF.ICT", "EF.OCT"}


@dataclass(frozen=True)
class LayoutRow:
    """One file of the real card's dump (`path` like "MF/ADF.USIM/EF.IMSI")."""

    path: str
    fid: int
    structure: str  # "df" | "transparent" | "linear_fixed" | "cyclic"
    record_length: int
    records: int
    size: int
    sfi: int | None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def parent(self) -> str:
        return self.path.rsplit("/", 1)[0]


@functools.cache
def layout() -> tuple[LayoutRow, ...]:
    """The emulated files of the real SJA5, in dump order (parents before children)."""
    text = resources.files("cards.virtual").joinpath("layouts", LAYOUT).read_text()
    rows: list[LayoutRow] = []
    for r in csv.DictReader(text.splitlines(), delimiter="\t"):
        if not r["fid"] and r["path"] != "MF/ADF.USIM":
            continue  # the card has no such file
        structure = "df" if r["type"] == "df" else r["structure"]
        if structure not in ("df", "transparent", "linear_fixed", "cyclic"):
            continue  # BER-TLV files are not emulated
        fid = {"MF/ADF.USIM": USIM_FID, "MF/ADF.ISIM": ISIM_FID}.get(r["path"])
        rows.append(LayoutRow(r["path"], fid if fid is not None else int(r["fid"], 16),
                              structure, int(r["record_len"] or 0), int(r["num_of_rec"] or 0),
                              int(r["file_size"] or 0), int(r["sfi"]) if r["sfi"] else None))
    return tuple(rows)


def _is_vendor(row: LayoutRow) -> bool:
    return row.path.startswith("MF/DF.SYSTEM") or (
        row.path.startswith("MF/ADF.") and row.structure != "df" and row.fid >> 8 == 0xAF)


def _access(row: LayoutRow) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if row.path.startswith("MF/DF.SYSTEM"):
        if row.name in ("EF.CHV1", "EF.CHV2", "EF.ADM1", "EF.ADM2"):
            return NEV, NEV  # the codes themselves live in the card's verifiers
        return (NEV if row.name == "EF.SIM_AUTH_KEY" else ADM1), ADM1
    if row.fid in (0xAF20, 0xAF22):
        return NEV, ADM1  # key files: written, never read
    if _is_vendor(row):
        return ADM1, ADM1
    read = ALW if row.parent == "MF" else PIN1
    return read, ADM1 + (PIN1 if row.name in PIN1_UPDATE else ())


def build_card(card_type: CardType, iccid: str) -> Node:
    """A blank card: factory ICCID, FF-filled personalisation files, random factory keys."""
    mf = df(0x3F00, "MF")
    nodes: dict[str, Node] = {"MF": mf}
    for row in layout()[1:]:
        if row.path.startswith("MF/ADF.ISIM") and not card_type.has_isim:
            continue
        if _is_vendor(row) and card_type.key_layout != "sja":
            continue
        parent = nodes.get(row.parent)
        if parent is None:
            continue
        if row.structure == "df":
            aid = {"MF/ADF.USIM": USIM_AID, "MF/ADF.ISIM": ISIM_AID}.get(row.path)
            nodes[row.path] = parent.add(df(row.fid, row.name, aid))
            continue
        read, update = _access(row)
        if row.structure == "transparent":
            size = card_type.auth_key_size if row.fid == 0xAF20 else row.size
            node = ef(row.fid, row.name, size, sfi=row.sfi, read=read, update=update)
        else:
            node = ef_records(row.fid, row.name, row.record_length, row.records, sfi=row.sfi,
                              read=read, update=update, cyclic=row.structure == "cyclic")
        nodes[row.path] = parent.add(node)
    _link(nodes, card_type)
    _factory(card_type, nodes, iccid)
    return mf


def _link(nodes: dict[str, Node], card_type: CardType) -> None:
    for second, home, name in LINKED:
        there, here = nodes.get(f"MF/{second}/{name}"), nodes.get(f"MF/{home}/{name}")
        if there is None or here is None:
            continue
        if (there.kind, there.size, there.record_length) != (here.kind, here.size,
                                                            here.record_length):
            raise ValueError(f"{second}/{name} and {home}/{name} differ: cannot be linked")
        assert there.parent is not None
        there.parent.link(here)
        nodes[f"MF/{second}/{name}"] = here
    if card_type.key_layout == "sja":
        for adf, name, home, home_name in SJA_KEY_LINKS:
            key2g, sim_key = nodes[f"MF/{adf}/{name}"], nodes[f"MF/{home}/{home_name}"]
            assert key2g.parent is not None
            # One file under two FIDs: selected through the ADF it answers as AF22.
            key2g.parent.children[key2g.fid] = sim_key
            nodes[f"MF/{adf}/{name}"] = sim_key


def _factory_key_file(size: int = 33) -> bytes:
    return bytes((CONFIG_OPC | ALGO_MILENAGE,)) + os.urandom(32) + b"\xff" * (size - 33)


def _factory(card_type: CardType, nodes: dict[str, Node], iccid: str) -> None:
    iccid_node = nodes["MF/EF.ICCID"]
    iccid_node.data[:] = EF_ICCID.encode(iccid)
    iccid_node.update = ADM1 if card_type.key_layout == "sjs1" else NEV
    ef_dir = nodes["MF/EF.DIR"]
    ef_dir.records[0][:] = EF_DIR.encode({"aid": USIM_AID.hex(), "label": "USIM"},
                                         ef_dir.record_length)
    if card_type.has_isim:
        ef_dir.records[1][:] = EF_DIR.encode({"aid": ISIM_AID.hex(), "label": "ISIM"},
                                             ef_dir.record_length)
    ust = nodes["MF/ADF.USIM/EF.UST"]
    ust.data[:] = EF_UST.encode(FACTORY_UST, ust.size)
    ad = nodes["MF/ADF.USIM/EF.AD"]
    ad.data[:] = EF_AD.encode({"mnc_length": 2}, ad.size)
    sst = nodes["MF/DF.GSM/EF.SST"]
    sst.data[:] = EF_SST.encode({"allocated": FACTORY_SST, "activated": FACTORY_SST}, sst.size)
    gsm_ad = nodes["MF/DF.GSM/EF.AD"]
    gsm_ad.data[:] = GSM_AD.encode({"mnc_length": 2}, gsm_ad.size)
    if card_type.has_isim:
        ist = nodes["MF/ADF.ISIM/EF.IST"]
        ist.data[:] = encode_bitmap(FACTORY_IST, ist.size)
        nodes["MF/ADF.ISIM/EF.AD"].data[:] = bytes(nodes["MF/ADF.ISIM/EF.AD"].size)
    if card_type.key_layout == "sja":
        nodes["MF/DF.SYSTEM/EF.SIM_AUTH_KEY"].data[:] = _factory_key_file()
        nodes["MF/DF.SYSTEM/EF.MILENAGE_CFG"].data[:] = bytes((64, 0, 32, 64, 96)) + b"".join(
            ((i and 1 << (i - 1)) or 0).to_bytes(16, "big") for i in range(5))
        for key in ("MF/ADF.USIM/EF.USIM_AUTH_KEY", "MF/ADF.ISIM/EF.ISIM_AUTH_KEY",
                    "MF/ADF.ISIM/EF.ISIM_AUTH_KEY_2G"):
            if key in nodes:
                nodes[key].data[:] = _factory_key_file(nodes[key].size)
    else:
        gsm = nodes["MF/DF.GSM"]
        gsm.add(ef(0x00FF, "EF.KI", 16, read=NEV, fill=os.urandom(16)))
        gsm.add(ef(0x00F7, "EF.OPC", 17, read=NEV, fill=b"\x01" + os.urandom(16)))
