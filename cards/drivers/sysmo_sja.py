"""sysmoISIM-SJA2 and sysmoISIM-SJA5 (sysmocom programmable ISIMs).

Personalisation files (from sysmocom's documentation as reflected in public tools):
DF.SYSTEM 3F00/A515/6F20 EF.SIM_AUTH_KEY (2G, 33 bytes) and ADF.USIM/AF20, ADF.ISIM/AF20
EF.*_AUTH_KEY (33 bytes): byte 0 config — bits 3-0 algorithm (4 = Milenage), bit 4 set when
bytes 17-32 hold OPc; bytes 1-16 K. The ICCID is factory-set and is checked, never rewritten
(rewriting it is reported to break the card OS licence handling). The algorithm byte is set
explicitly to Milenage with OPc rather than trusting the factory setting. Both have DF.5GS and
DF.SAIP (the real SJA5's files, tests/vectors/cards/): the profile's SUCI files are written
there (`suci_files`); the SJA5 computes the SUCI itself when EF.UST service 125 is on.
"""

from __future__ import annotations

import functools
from typing import ClassVar

from cards.drivers.base import (
    ISIM_AID,
    USIM_AID,
    CardDriver,
    StepBuilder,
    check_iccid,
    isim_files,
    standard_files,
    suci_files,
)
from cards.errors import DriverError
from cards.plan import Step
from cards.profile import AuthVector, CardProfile, KeyWriter

CONFIG_MILENAGE_OPC = 0x14  # bit 4: OPc; bits 3-0: 4 = Milenage


class SysmoSJA(CardDriver):
    has_isim = True
    suci_by_usim: ClassVar[bool] = False  # the card computes the SUCI (GET IDENTITY)

    def plan(self, profile: CardProfile, key_writer: KeyWriter, vector: AuthVector | None, *,
             min_adm_tries: int = 2) -> list[Step]:
        if profile.suci is not None and profile.suci.by_usim and not self.suci_by_usim:
            raise DriverError(f"{self.name} does not compute the SUCI itself (sysmocom: only "
                              "the SJA5 does): program it with the SUCI computed by the phone")
        b = StepBuilder()
        keys_once = functools.cache(lambda: key_writer.card_keys(profile.iccid))

        def key_file() -> bytes:  # asked from the KeyWriter once per card, at the first write
            keys = keys_once()
            return bytes((CONFIG_MILENAGE_OPC,)) + keys.ki.reveal() + keys.opc.reveal()

        b.verify_adm(key_writer, profile.iccid, min_adm_tries)
        check_iccid(b, profile)
        b.select_path("keys", [0xA515, 0x6F20], "DF.SYSTEM/EF.SIM_AUTH_KEY")
        b.write_secret("keys", "EF.SIM_AUTH_KEY (config, K, OPc)", 33, key_file)
        if profile.write_gsm:
            b.select_path("gsm", [0x7F20], "DF.GSM")
            standard_files(b, profile, "gsm", in_usim=False)
            b.run_gsm_algorithm(vector)
        b.select_aid("usim", USIM_AID, "ADF.USIM")
        b.select_fid("keys", 0xAF20, "ADF.USIM/EF.USIM_AUTH_KEY")
        b.write_secret("keys", "EF.USIM_AUTH_KEY (config, K, OPc)", 33, key_file)
        standard_files(b, profile, "usim", in_usim=True)
        b.authenticate_3g(vector)
        if profile.suci is not None:
            suci_files(b, profile.suci)
        if profile.has_isim:
            b.select_aid("isim", ISIM_AID, "ADF.ISIM")
            b.select_fid("keys", 0xAF20, "ADF.ISIM/EF.ISIM_AUTH_KEY")
            b.write_secret("keys", "EF.ISIM_AUTH_KEY (config, K, OPc)", 33, key_file)
            isim_files(b, profile)
        return b.steps


class SysmoISIM_SJA2(SysmoSJA):
    name = "sysmoISIM-SJA2"
    atrs = (
        bytes.fromhex("3B9F96801F878031E073FE211B674A4C753034054BA9"),
        bytes.fromhex("3B9F96801F878031E073FE211B674A4C7531330251B2"),
        bytes.fromhex("3B9F96801F878031E073FE211B674A4C5275310451D5"),
    )


class SysmoISIM_SJA5(SysmoSJA):
    name = "sysmoISIM-SJA5"
    suci_by_usim = True
    atrs = (bytes.fromhex("3B9F96801F878031E073FE211B674A357530350251CC"),)
