"""Small builders for store tests."""

from __future__ import annotations

from sqlalchemy import Engine

from simcore import inventory, ranges
from simcore.identifiers import Iccid

ICCID_FIRST = Iccid.from_body("8988280000000000000").digits
ICCID_LAST = Iccid.from_body("8988280000000099999").digits
IMSI_FIRST, IMSI_LAST = "001010000000000", "001010000099999"


def seed(engine: Engine, count: int = 10, *, batch: str = "b1", kind: str = "physical",
         form_factor: str | None = None) -> inventory.GenerateResult:
    """Ranges (once) and `count` in-stock SIMs in a new batch."""
    if not ranges.list_ranges(engine):
        ranges.add_range(engine, "iccid", ICCID_FIRST, ICCID_LAST, name="iccid-1", actor="t")
        ranges.add_range(engine, "imsi", IMSI_FIRST, IMSI_LAST, name="imsi-1", actor="t")
    return inventory.generate_sims(engine, count, batch=batch, actor="t", kind=kind,
                                   form_factor=form_factor)
