"""sysmoUSIM-SJS1 (sysmocom programmable USIM).

Personalisation files (from sysmocom's documentation as reflected in public tools): DF.GSM
3F00/7F20/00FF Ki (16 bytes) and 3F00/7F20/00F7 OPc (17 bytes: 01 then OPc). EF.ICCID is
writable on this card and is written and read back. ADM1 is key reference 0x0A.
"""

from __future__ import annotations

import functools

from cards.apdu import Apdu
from cards.drivers.base import USIM_AID, CardDriver, StepBuilder, standard_files
from cards.fs.ts_102_221 import EF_ICCID
from cards.plan import Step
from cards.profile import AuthVector, CardProfile, KeyWriter


class SysmoUSIM_SJS1(CardDriver):
    name = "sysmoUSIM-SJS1"
    atrs = (bytes.fromhex("3B9F96801FC78031A073BE21136743200718000001A5"),)

    def plan(self, profile: CardProfile, key_writer: KeyWriter, vector: AuthVector | None, *,
             min_adm_tries: int = 2) -> list[Step]:
        b = StepBuilder()
        keys_once = functools.cache(lambda: key_writer.card_keys(profile.iccid))
        b.verify_adm(key_writer, profile.iccid, min_adm_tries)
        b.select_path("iccid", [EF_ICCID.fid], "MF/EF.ICCID")
        iccid = EF_ICCID.encode(profile.iccid)
        b.add(Step("iccid", "UPDATE BINARY EF.ICCID", Apdu(0, 0xD6, 0, 0, iccid)))
        b.add(Step("iccid", "READ BINARY EF.ICCID", Apdu(0, 0xB0, 0, 0, le=10), expect=iccid,
                   needs="PIN1"))
        b.select_path("keys", [0x7F20, 0x00FF], "DF.GSM/EF.KI")
        b.write_secret("keys", "EF.KI", 16,
                       lambda: keys_once().ki.reveal())
        b.select_fid("keys", 0x00F7, "DF.GSM/EF.OPC")
        b.write_secret("keys", "EF.OPC (01, OPc)", 17,
                       lambda: b"\x01" + keys_once().opc.reveal())
        if profile.write_gsm:
            standard_files(b, profile, "gsm", in_usim=False)
            b.run_gsm_algorithm(vector)
        b.select_aid("usim", USIM_AID, "ADF.USIM")
        standard_files(b, profile, "usim", in_usim=True)
        b.authenticate_3g(vector)
        return b.steps
