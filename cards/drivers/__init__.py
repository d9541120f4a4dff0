"""Card drivers for programmable SIMs, chosen from the ATR (and EF.DIR for the applications
present), with an override by name."""

from __future__ import annotations

from cards.drivers.base import CardDriver
from cards.drivers.generic import GenericUicc
from cards.drivers.sysmo_sja import SysmoISIM_SJA2, SysmoISIM_SJA5
from cards.drivers.sysmo_sjs1 import SysmoUSIM_SJS1
from cards.errors import DriverError, UnknownCardError

DRIVERS: dict[str, type[CardDriver]] = {
    d.name: d for d in (SysmoISIM_SJA2, SysmoISIM_SJA5, SysmoUSIM_SJS1, GenericUicc)
}


def driver_named(name: str) -> CardDriver:
    try:
        return DRIVERS[name]()
    except KeyError:
        raise DriverError(f"no driver {name!r}; drivers: {', '.join(DRIVERS)}") from None


def driver_for_atr(atr: bytes) -> CardDriver:
    """The driver whose ATR list holds `atr`; UnknownCardError names the ATR otherwise."""
    for cls in DRIVERS.values():
        if atr in cls.atrs:
            return cls()
    raise UnknownCardError(
        f"unknown card: ATR {atr.hex().upper()} matches no driver. If it is a UICC with "
        f"standard files, force one with --driver generic (library: driver='generic'); "
        f"drivers: {', '.join(DRIVERS)}")


__all__ = ["DRIVERS", "CardDriver", "driver_for_atr", "driver_named"]
