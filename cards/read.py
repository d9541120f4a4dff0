"""Read what a card holds (ETSI TS 102 221 §13, 3GPP TS 31.102 §4.2, TS 31.103 §4.2): ICCID,
applications, IMSI, SPN, ACC, PLMN lists, MSISDN, services, and PIN/ADM tries left (VERIFY
without data: no try is spent). The result is JSON-ready; hex only for AIDs and the ATR.
"""

from __future__ import annotations

from typing import Any

from cards.apdu import Apdu
from cards.commands import ADM1, PIN1, PIN2, Uicc
from cards.drivers import DRIVERS
from cards.drivers.base import ISIM_AID, USIM_AID
from cards.errors import CardError
from cards.fs import ts_31_102 as usim
from cards.fs import ts_31_103 as isim
from cards.fs import ts_102_221 as mf
from cards.fs.base import EF
from cards.status_words import (
    FileNotFound,
    RecordNotFound,
    SecurityStatusNotSatisfied,
    check,
)


def _read_ef(u: Uicc, ef: type[EF]) -> Any:
    """Select the EF in the current DF (by SFI when it has one) and decode all of it."""
    t = u.transport
    if ef.structure == "linear_fixed":
        u.select_fid(ef.fid)
        data, sw = t.send(Apdu(0, 0xB2, 1, 0x04, le=0))
        check(sw, f"READ RECORD {ef.name}", "PIN1")
        return ef.decode(data)
    if ef.sfi is not None:
        data, sw = t.send(Apdu(0, 0xB0, 0x80 | ef.sfi, 0, le=0))
    else:
        u.select_fid(ef.fid)
        data, sw = t.send(Apdu(0, 0xB0, 0, 0, le=0))
    check(sw, f"READ BINARY {ef.name}", "PIN1")
    return ef.decode(data)


def card_type_for(atr: bytes) -> str:
    for name, cls in DRIVERS.items():
        if atr in cls.atrs:
            return name
    return "unknown"


def read_card(transport: Any) -> dict[str, Any]:
    """Everything `simsmith card read` shows. Files a card lacks are reported as null; files
    behind an unverified PIN1 too, with a note (no PIN is ever tried here)."""
    u = Uicc(transport)
    info: dict[str, Any] = {"atr": transport.atr.hex().upper(),
                            "card_type": card_type_for(transport.atr)}
    u.select_fid(0x3F00)
    info["iccid"] = _read_ef(u, mf.EF_ICCID)
    apps = []
    u.select_fid(mf.EF_DIR.fid)
    for n in range(1, 9):
        try:
            data = u.read_record(n, 0)
        except RecordNotFound:
            break
        entry = mf.EF_DIR.decode(data)
        if entry is None:
            break
        apps.append(entry)
    info["applications"] = apps
    u.select_fid(0x3F00)
    info["tries_left"] = {"PIN1": u.tries_left(PIN1), "PIN2": u.tries_left(PIN2),
                          "ADM1": u.tries_left(ADM1)}
    u.select_aid(USIM_AID)
    for key, ef in (("imsi", usim.EF_IMSI), ("ad", usim.EF_AD), ("spn", usim.EF_SPN),
                    ("acc", usim.EF_ACC), ("hplmn_act", usim.EF_HPLMNwAcT),
                    ("oplmn_act", usim.EF_OPLMNwAcT), ("plmn_act", usim.EF_PLMNwAcT),
                    ("fplmn", usim.EF_FPLMN), ("msisdn", usim.EF_MSISDN),
                    ("services", usim.EF_UST)):
        try:
            info[key] = _read_ef(u, ef)
        except FileNotFound:
            info[key] = None
        except SecurityStatusNotSatisfied:
            info[key] = None
            info.setdefault("notes", []).append(f"{ef.name}: PIN1 not verified")
    if any(a["aid"].startswith(ISIM_AID.hex().upper()) for a in apps):
        try:
            u.select_aid(ISIM_AID)
            info["isim"] = {"impi": _read_ef(u, isim.EF_IMPI),
                            "domain": _read_ef(u, isim.EF_DOMAIN),
                            "impu": _read_ef(u, isim.EF_IMPU)}
        except CardError as exc:
            info["isim"] = {"error": str(exc)}
    return info
