"""The virtual eUICC's enabled profile computes the SUCI (issue 20 item 4): a simsmith profile
carrying TS 33.501 Annex C.4's Profile A key in DF.5GS/DF.SAIP (EF.UST 124 and 125, as the
TS.48 SUCI test profile), downloaded, enabled, answers GET IDENTITY (TS 31.102 §7.5) with a
SUCI the home-network private key de-conceals to the profile's IMSI; `card read` shows it."""

from __future__ import annotations

import os
from pathlib import Path

from cards.commands import Uicc
from cards.drivers.base import USIM_AID
from cards.read import read_card
from esim.lpa.functions import Es10Functions
from hsm_sim.ecies import HomeNetworkPrivateKey, ProtectionScheme
from simcore.euicc import EuiccLoopback, es10_session, virtual_euicc
from simcore.suci import HomeNetworkPublicKey, Suci, msin_from_scheme_input, suci_calc_info
from tests.esim.sgp22_vectors import session
from tests.euicc.recorded import recorded_euicc
from tests.euicc.smdp_side import download, milenage_upp
from tests.hsm.vectors import h, load

ICCID, IMSI = "8949440000000000017", "001010000000017"
A = {r["set"]: r for r in load("suci/ts33501_annex_c4.txt")}["C.4.3.1"]


def test_enabled_profile_answers_get_identity(tmp_path: Path) -> None:
    calc = suci_calc_info([HomeNetworkPublicKey(30, ProtectionScheme.PROFILE_A,
                                                h(A, "hn_public"))])
    card = virtual_euicc(recorded_euicc(tmp_path / "euicc.json", random=os.urandom))
    transport = EuiccLoopback(card)
    with es10_session(transport) as es10:
        functions = Es10Functions(es10.call)
        download(functions, milenage_upp(ICCID, IMSI, suci_calc_info=calc,
                                         routing_indicator="12"), ICCID, session()["eid"])
        functions.enable(ICCID)
    u = Uicc(transport)
    u.select_aid(USIM_AID)
    suci = Suci.from_bytes(u.get_identity())
    assert (suci.scheme, suci.key_id, suci.routing_indicator) == (ProtectionScheme.PROFILE_A,
                                                                  30, "12")
    key = HomeNetworkPrivateKey(ProtectionScheme.PROFILE_A, h(A, "hn_private"))
    assert suci.imsi(msin_from_scheme_input(key.deconceal(suci.scheme_output))).digits == IMSI
    info = read_card(transport)["suci"]
    assert info["calculated_by"] == "usim" and info["routing_indicator"] == "12"
    assert [(e["scheme"], e["key_id"]) for e in info["usim_calc_info"]] == [(1, 30), (0, None)]
