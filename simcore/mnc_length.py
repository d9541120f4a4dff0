"""The MNC length of a stored IMSI: the one rule every profile template and card uses.

Where the MNC ends is not written in an IMSI (3GPP TS 23.003 §2.2: 2 or 3 digits, the choice of
the country's numbering plan); the inventory records it on the IMSI range
(`simsmith range add imsi … --mnc-length N`). A SIM's MNC length is its IMSI range's; an IMSI
in no range that records one has none (None), and the consumer's own default stands — the
profile template's EF.AD (TS 31.102 §4.2.18), checked by esim against a known length, or a
card profile's EF.AD. Nothing guesses from the digits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlmodel import col

from simcore.db import read_session
from simcore.models import NumberRange


@dataclass(frozen=True)
class MncLengths:
    """The inventory's IMSI ranges that record an MNC length, read once (a batch asks per SIM)."""

    ranges: tuple[tuple[str, str, int], ...]  # (first, last, MNC length)

    @classmethod
    def load(cls, engine: Engine) -> MncLengths:
        with read_session(engine) as s:
            rows = s.execute(select(col(NumberRange.first), col(NumberRange.last),
                                    col(NumberRange.mnc_length))
                             .where(col(NumberRange.kind) == "imsi",
                                    col(NumberRange.mnc_length).is_not(None))
                             .order_by(col(NumberRange.id))).all()
        return cls(tuple((first, last, int(n)) for first, last, n in rows))

    def of(self, imsi: str) -> int | None:
        """The MNC length of the range holding `imsi` (same length, inside first..last)."""
        return next((n for first, last, n in self.ranges
                     if len(first) == len(imsi) and first <= imsi <= last), None)


def mnc_length_of(engine: Engine, imsi: str) -> int | None:
    """One IMSI's MNC length from the inventory (see the module docstring)."""
    return MncLengths.load(engine).of(imsi)
