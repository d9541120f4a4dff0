"""SUCI on cards through the real stack (pyscard → pcscd → vpcd → virtual sysmoISIM-SJA5), issue
20 item 3: `card program` writes the registry's home-network public keys, the scheme priority
and the routing indicator; the card computes a SUCI on GET IDENTITY and simsmith de-conceals it
through the HSM to the card's IMSI (audited); a SUCI a phone computes from the read files
de-conceals too; the personalisation record names what was written."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from cards.commands import Uicc
from cards.drivers.base import USIM_AID
from cards.pcsc import PcscTransport
from cards.read import read_card
from hsm_sim.ecies import ProtectionScheme
from hsm_sim.soft import SoftHsm
from simcore import inventory, suci_keys
from simcore.db import read_session
from simcore.identifiers import Imsi
from simcore.models import AuditEvent
from simcore.personalisation import program_sim
from simcore.suci import Suci, conceal_as_phone
from tests.cards.conftest import Insert
from tests.helpers.cards import vendor_card
from tests.wiring.conftest import seed


def _details(engine: Engine, action: str) -> list[dict[str, object]]:
    with read_session(engine) as s:
        rows = s.execute(select(AuditEvent).where(col(AuditEvent.action) == action)).scalars()
        return [json.loads(r.details) for r in rows]


@pytest.mark.parametrize("by", ["usim", "me"])
def test_programmed_card_suci_deconceals_to_its_imsi(engine: Engine, hsm: SoftHsm,
                                                     insert: Insert, by: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMSMITH_SUCI_ROUTING_INDICATOR", "42")
    suci_keys.generate_key(engine, hsm, 5, "A", actor="t")
    suci_keys.generate_key(engine, hsm, 6, "B", actor="t")  # newer: first in the list
    iccid = seed(engine, hsm, 1)[0]
    imsi = inventory.get_sim(engine, iccid).imsi
    _, reader = insert(vendor_card(engine, hsm, iccid, "sysmoISIM-SJA5"))
    with PcscTransport(reader, timeout=2) as t:
        out = program_sim(engine, hsm, t, actor="t", iccid=iccid, reader=reader, suci_by=by)
        info = read_card(t)
        u = Uicc(t)
        u.select_aid(USIM_AID)
        if by == "usim":
            suci = Suci.from_bytes(u.get_identity())
        else:
            u.select_fid(0x5FC0)  # DF.5GS: what a phone reads, EF.SUCI_Calc_Info by SFI
            calc = u.read_binary(200, sfi=0x07)
            suci = conceal_as_phone(Imsi.parse(info["imsi"], 2), calc,
                                    routing_indicator=info["suci"]["routing_indicator"])
    assert out.status == "programmed"
    assert info["suci"]["calculated_by"] == by and info["suci"]["routing_indicator"] == "42"
    assert [(e["scheme"], e["key_id"]) for e in info["suci"]["calc_info"]] == [(2, 6), (1, 5),
                                                                               (0, None)]
    assert (suci.scheme, suci.key_id, suci.routing_indicator) == (ProtectionScheme.PROFILE_B,
                                                                  6, "42")
    found = suci_keys.deconceal(engine, hsm, str(suci), actor="udm")
    assert found.imsi.digits == imsi
    assert _details(engine, "suci.deconcealed")[-1]["imsi"] == imsi
    record = next(d for d in _details(engine, "sim.personalised"))
    assert record["suci"] == {"calculated_by": by, "schemes": [[2, 6], [1, 5], [0, None]],
                              "routing_indicator": "42"}
