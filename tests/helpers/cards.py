"""Card test helpers: a virtual card as a SIM vendor ships it for a stored record."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from cards.virtual.card import VirtualUicc
from simcore import key_writers, keys


def vendor_card(engine: Engine, hsm: Any, iccid: str, card_type: str = "sysmoISIM-SJA2",
                **kw: object) -> VirtualUicc:
    """A factory-fresh card as the vendor ships it for a record: its ICCID and ADM1."""
    adm = key_writers.SimKeyWriter(hsm, keys.load_keys(engine, iccid)).adm1(iccid)
    return VirtualUicc(card_type, iccid=iccid, adm1=adm.reveal().decode(), **kw)  # type: ignore[arg-type]
