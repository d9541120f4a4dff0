"""simcore.lab_cards: an emulated card seeded from the inventory (issue 13 item 1) gets the
SIM's ADM1 only through the audited lab path — refused in production mode — and keeps it, as a
real card does, as a verifier: the emulator's state file never holds the clear code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cards.commands import ADM1, Uicc
from cards.status_words import WrongCode
from cards.virtual.card import VirtualUicc
from cards.virtual.loopback import LoopbackTransport
from hsm_sim.soft import SoftHsm
from simcore import audit, key_writers, keys, lab_cards
from tests.wiring.conftest import seed


@pytest.mark.storage
def test_card_seed_is_audited_and_the_state_file_holds_no_clear_code(
        engine: Engine, hsm: SoftHsm, tmp_path: Path) -> None:
    iccid = seed(engine, hsm, 1)[0]
    got = lab_cards.card_seed(engine, hsm, iccid, actor="lab:bob")
    assert repr(got) == f"CardSeed({iccid}, ADM1=<hidden>)" and "ADM1=<hidden>" in str(got)
    (ev,) = audit.query(engine, subject_id=iccid, action=lab_cards.SEED_ACTION)
    assert ev.actor == "lab:bob" and ev.subject_type == "sim"
    details = json.loads(ev.details)
    assert details == {"codes": ["ADM1"], "purpose": "card emulate --from-inventory",
                       "mode": "dev"}
    adm = got.adm1.reveal()
    assert adm.hex() not in ev.details and adm.rstrip(b"\xff").decode() not in ev.details
    state = tmp_path / "card.json"
    card = VirtualUicc("sysmoISIM-SJA2", iccid=got.iccid, adm1=got.adm1, state_path=state)
    text = state.read_text()
    assert adm.hex() not in text and adm.rstrip(b"\xff").decode() not in text
    assert state.stat().st_mode & 0o777 == 0o600
    u = Uicc(LoopbackTransport(card))
    stored = key_writers.SimKeyWriter(hsm, keys.load_keys(engine, iccid)).adm1(iccid)
    u.verify(ADM1, stored)  # the card opens with the SIM's ADM1 from the store
    with pytest.raises(WrongCode):
        u.verify(ADM1, type(stored)(b"00000000", "ADM1"))


@pytest.mark.storage
def test_card_seed_is_refused_in_production(engine: Engine, hsm: SoftHsm,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    iccid = seed(engine, hsm, 1)[0]
    monkeypatch.setenv("SIMSMITH_MODE", "production")
    with pytest.raises(lab_cards.LabOnly, match="refused in production mode"):
        lab_cards.card_seed(engine, hsm, iccid, actor="t")
    assert audit.query(engine, action=lab_cards.SEED_ACTION) == []
