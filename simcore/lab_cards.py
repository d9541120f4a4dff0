"""Emulated cards seeded from the inventory — a lab path, audited and refused in production.

`simsmith card emulate --from-inventory ICCID` plugs in a virtual card "as its vendor delivers
it" for a stored SIM: the factory ICCID and the vendor's ADM1. ADM codes are never revealed
(docs/hsm.md), so this is the one way the ADM1 of a stored SIM reaches anything but a card's
VERIFY APDU, and it is fenced: only when SIMSMITH_MODE is not `production`, only through
`card_seed()`, and each call is written to the audit log (action `card.lab_seed`, the codes
named, never their values) before the code is handed over. The code travels as a `Secret` and the
emulator keeps it only as a verifier (cards/virtual/codes.py), as a real card keeps its codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from cards.secret import Secret
from simcore import audit, key_writers, keys
from simcore.config import get_settings
from simcore.db import transaction
from simcore.errors import SimsmithError

SEED_ACTION = "card.lab_seed"


class LabOnly(SimsmithError):
    """A lab-only path was asked for in production mode."""


@dataclass(frozen=True)
class CardSeed:
    """What an emulated card needs to be the vendor's card for a stored SIM."""

    iccid: str
    adm1: Secret

    def __repr__(self) -> str:
        return f"CardSeed({self.iccid}, ADM1=<hidden>)"


def card_seed(engine: Engine, hsm: Any, iccid: str, *, actor: str,
              purpose: str = "card emulate --from-inventory") -> CardSeed:
    """ICCID and ADM1 of a stored SIM for an emulated card: audited; refused in production."""
    mode = get_settings().mode
    if mode == "production":
        raise LabOnly("seeding an emulated card from the inventory hands out a SIM's ADM1 code: "
                      "a lab path, refused in production mode (SIMSMITH_MODE=production)")
    stored = keys.load_keys(engine, iccid)
    writer = key_writers.SimKeyWriter(hsm, stored)
    adm1 = writer.adm1(stored.iccid)  # patched by the HSM into a Secret; checks the owner
    with transaction(engine) as s:
        audit.append(s, actor=actor, action=SEED_ACTION, subject_type="sim",
                     subject_id=stored.iccid,
                     details={"codes": ["ADM1"], "purpose": purpose, "mode": mode})
    return CardSeed(stored.iccid, adm1)
