"""Generic UICC driver: standard files only (TS 31.102 ADF.USIM, TS 51.011 DF.GSM, TS 31.103
ADF.ISIM), no proprietary key files. The card's Ki/OPc must already match the HSM's (e.g. loaded
by the card vendor); AUTHENTICATE proves it. Chosen only when forced (`driver="generic"`).
"""

from __future__ import annotations

from cards.drivers.base import (
    ISIM_AID,
    USIM_AID,
    CardDriver,
    StepBuilder,
    check_iccid,
    isim_files,
    standard_files,
)
from cards.plan import Step
from cards.profile import AuthVector, CardProfile, KeyWriter


class GenericUicc(CardDriver):
    name = "generic"
    has_isim = True

    def plan(self, profile: CardProfile, key_writer: KeyWriter, vector: AuthVector | None, *,
             min_adm_tries: int = 2) -> list[Step]:
        b = StepBuilder()
        b.verify_adm(key_writer, profile.iccid, min_adm_tries)
        check_iccid(b, profile)
        if profile.write_gsm:
            b.select_path("gsm", [0x7F20], "DF.GSM")
            standard_files(b, profile, "gsm", in_usim=False)
        b.select_aid("usim", USIM_AID, "ADF.USIM")
        standard_files(b, profile, "usim", in_usim=True)
        b.authenticate_3g(vector)
        if profile.has_isim:
            b.select_aid("isim", ISIM_AID, "ADF.ISIM")
            isim_files(b, profile)
        return b.steps
