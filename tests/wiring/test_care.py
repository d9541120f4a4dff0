"""simcore.care: PIN1/PUK1 of a stored SIM through the HSM, audited before they are returned,
masked in reprs; refused for SIMs out of service or without codes."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, delete
from sqlmodel import col

from hsm_sim.soft import SoftHsm
from simcore import audit, care, inventory, keys
from simcore.db import transaction
from simcore.errors import Conflict, InvalidInput, NotFound
from simcore.identifiers import Iccid
from simcore.models import SimCredential
from tests.wiring.conftest import seed


@pytest.mark.storage
def test_reveal_access_codes(engine: Engine, hsm: SoftHsm) -> None:
    iccid = seed(engine, hsm, 1, state="in_stock")[0]
    codes = care.reveal_access_codes(engine, hsm, iccid, actor="care:alice", reason="  ")
    creds = keys.load_keys(engine, iccid).credentials
    assert codes.pin1 == hsm.reveal_code(creds["PIN1"], owner=iccid)
    assert codes.puk1 == hsm.reveal_code(creds["PUK1"], owner=iccid)
    assert repr(codes) == str(codes) == f"AccessCodes({iccid}, PIN1=<hidden>, PUK1=<hidden>)"
    (ev,) = audit.query(engine, subject_id=iccid, action="sim.access_codes_revealed")
    assert ev.actor == "care:alice" and ev.subject_type == "sim"
    assert json.loads(ev.details) == {"codes": ["PIN1", "PUK1"], "state": "in_stock"}
    assert codes.puk1 not in ev.details
    assert audit.verify(engine).events >= 1


@pytest.mark.storage
def test_refusals(engine: Engine, hsm: SoftHsm) -> None:
    with_codes, without = seed(engine, hsm, 2, state="in_stock")
    with transaction(engine) as s:
        s.execute(delete(SimCredential).where(col(SimCredential.iccid) == without,
                                              col(SimCredential.name) == "PUK1"))
    with pytest.raises(keys.MissingKeys, match="no PUK1"):
        care.reveal_access_codes(engine, hsm, without, actor="t")
    with pytest.raises(NotFound, match="no SIM"):
        care.reveal_access_codes(engine, hsm, Iccid.from_body("898821199999999999").digits,
                                 actor="t")
    with pytest.raises(InvalidInput):
        care.reveal_access_codes(engine, hsm, "1234", actor="t")
    with pytest.raises(InvalidInput, match="too long"):
        care.reveal_access_codes(engine, hsm, with_codes, actor="t", reason="x" * 201)
    inventory.terminate(engine, with_codes, reason="lost", actor="t")
    with pytest.raises(Conflict, match="terminated"):
        care.reveal_access_codes(engine, hsm, with_codes, actor="t")
    assert audit.query(engine, action="sim.access_codes_revealed") == []
