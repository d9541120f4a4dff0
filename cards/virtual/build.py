"""Builds a factory-fresh virtual card of a given type: the standard files of every registered
EF class (cards.fs) placed under MF, DF.TELECOM, DF.GSM, ADF.USIM and ADF.ISIM, plus the card
type's vendor files, with the factory contents a blank programmable card ships with.
"""

from __future__ import annotations

import os

from cards.fs import REGISTRY
from cards.fs.ts_31_102 import EF_AD, EF_UST
from cards.fs.ts_51_011 import EF_AD as GSM_AD
from cards.fs.ts_51_011 import EF_SST
from cards.fs.ts_102_221 import EF_DIR, EF_ICCID
from cards.virtual.card_types import ALGO_MILENAGE, CONFIG_OPC, ISIM_AID, USIM_AID, CardType
from cards.virtual.filesystem import ADM1, ALW, NEV, PIN1, Node, df, ef, ef_records

USIM_FID, ISIM_FID = 0x7FF0, 0x7FF1
FACTORY_UST = [2, 4, 10, 11, 12, 14, 15, 17, 19, 20, 21, 27, 33, 35, 38]
PIN1_UPDATE = {"EF.LOCI", "EF.FPLMN", "EF.PLMNwAcT", "EF.PL", "EF.MSISDN", "EF.SMSP"}


def build_card(card_type: CardType, iccid: str) -> Node:
    """A blank card: factory ICCID, FF-filled personalisation files, random factory keys."""
    mf = df(0x3F00, "MF")
    dfs = {
        "MF": mf,
        "DF.TELECOM": mf.add(df(0x7F10, "DF.TELECOM")),
        "DF.GSM": mf.add(df(0x7F20, "DF.GSM")),
        "ADF.USIM": mf.add(df(USIM_FID, "ADF.USIM", USIM_AID)),
    }
    if card_type.has_isim:
        dfs["ADF.ISIM"] = mf.add(df(ISIM_FID, "ADF.ISIM", ISIM_AID))
    for cls in REGISTRY:
        parent = dfs.get(cls.df)
        if parent is None:
            continue
        read = ALW if cls.df == "MF" else PIN1
        update = ADM1 + (PIN1 if cls.name in PIN1_UPDATE else ())
        if cls.structure == "linear_fixed":
            parent.add(ef_records(cls.fid, cls.name, cls.size, cls.record_count, sfi=cls.sfi,
                                  read=read, update=update))
        else:
            parent.add(ef(cls.fid, cls.name, cls.size, sfi=cls.sfi, read=read, update=update))
    iccid_node = mf.children[EF_ICCID.fid]
    iccid_node.data[:] = EF_ICCID.encode(iccid)
    iccid_node.update = ADM1 if card_type.key_layout == "sjs1" else NEV
    ef_dir = mf.children[EF_DIR.fid]
    ef_dir.records[0][:] = EF_DIR.encode({"aid": USIM_AID.hex(), "label": "USIM"}, EF_DIR.size)
    if card_type.has_isim:
        ef_dir.records[1][:] = EF_DIR.encode({"aid": ISIM_AID.hex(), "label": "ISIM"},
                                             EF_DIR.size)
    usim = dfs["ADF.USIM"]
    usim.children[EF_UST.fid].data[:] = EF_UST.encode(FACTORY_UST, EF_UST.size)
    usim.children[EF_AD.fid].data[:] = EF_AD.encode({"mnc_length": 2}, EF_AD.size)
    gsm = dfs["DF.GSM"]
    gsm.children[EF_SST.fid].data[:] = EF_SST.encode(
        {"allocated": list(range(1, 21)), "activated": list(range(1, 21))}, EF_SST.size)
    gsm.children[GSM_AD.fid].data[:] = GSM_AD.encode({"mnc_length": 2}, GSM_AD.size)
    _vendor_files(card_type, mf, dfs)
    return mf


def _factory_key_file() -> bytes:
    return bytes((CONFIG_OPC | ALGO_MILENAGE,)) + os.urandom(32)


def _vendor_files(card_type: CardType, mf: Node, dfs: dict[str, Node]) -> None:
    if card_type.key_layout == "sja":
        system = mf.add(df(0xA515, "DF.SYSTEM"))
        system.add(ef(0x6F20, "EF.SIM_AUTH_KEY", 33, read=NEV, fill=_factory_key_file()))
        system.add(ef(0x6F21, "EF.MILENAGE_CFG", 85, read=ADM1,
                      fill=bytes((64, 0, 32, 64, 96)) + b"".join(
                          ((i and 1 << (i - 1)) or 0).to_bytes(16, "big") for i in range(5))))
        for name in ("ADF.USIM", "ADF.ISIM"):
            if name in dfs:
                dfs[name].add(ef(0xAF20, "EF.USIM_AUTH_KEY" if name == "ADF.USIM"
                                 else "EF.ISIM_AUTH_KEY", 33, read=NEV,
                                 fill=_factory_key_file()))
    else:
        gsm = dfs["DF.GSM"]
        gsm.add(ef(0x00FF, "EF.KI", 16, read=NEV, fill=os.urandom(16)))
        gsm.add(ef(0x00F7, "EF.OPC", 17, read=NEV, fill=b"\x01" + os.urandom(16)))
