"""The card file system as declarative tables: one small class per elementary file.

Modules by specification: `ts_102_221` (MF), `ts_31_102` (ADF.USIM), `ts_31_102_5gs` (DF.5GS,
DF.SAIP), `ts_51_011` (DF.GSM, DF.TELECOM), `ts_31_103` (ADF.ISIM). Every class registers
itself in `base.REGISTRY`; importing this package loads all of them.
"""

from cards.fs import ts_31_102, ts_31_102_5gs, ts_31_103, ts_51_011, ts_102_221
from cards.fs.base import EF, REGISTRY, lookup

__all__ = ["EF", "REGISTRY", "lookup", "ts_31_102", "ts_31_102_5gs", "ts_31_103", "ts_51_011",
           "ts_102_221"]
