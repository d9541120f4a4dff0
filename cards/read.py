"""Read what a card holds (ETSI TS 102 221 §13, 3GPP TS 31.102 §4.2 and §4.4.11, TS 31.103
§4.2): ICCID, applications, IMSI, SPN, ACC, PLMN lists, MSISDN, services, the SUCI
configuration of DF.5GS (who computes it, keys and scheme priority, routing indicator), and
PIN/ADM tries left (VERIFY without data: no try is spent). The result is JSON-ready; hex only
for AIDs, public keys and the ATR.
"""

from __future__ import annotations

from typing import Any

from cards.apdu import Apdu
from cards.commands import ADM1, PIN1, PIN2, Uicc
from cards.drivers import DRIVERS
from cards.drivers.base import ISIM_AID, USIM_AID
from cards.errors import CardError
from cards.fs import ts_31_102 as usim
from cards.fs import ts_31_102_5gs as nr5g
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


def _read_suci(u: Uicc, services: list[int], info: dict[str, Any]) -> dict[str, Any] | None:
    """DF.5GS's SUCI files (TS 31.102 §4.4.11.8, .11) and, when the USIM computes the SUCI,
    DF.SAIP's keys; None for a card without DF.5GS. Leaves DF.5GS or DF.SAIP selected."""
    out: dict[str, Any] = {"calculated_by": nr5g.calculated_by(services)}
    try:
        u.select_fid(nr5g.DF_5GS_FID)
    except FileNotFound:
        return None
    files: list[tuple[str, type[EF]]] = [("calc_info", nr5g.EF_SUCI_Calc_Info),
                                         ("routing_indicator", nr5g.EF_Routing_Indicator),
                                         ("uac_access_identities", nr5g.EF_UAC_AIC)]
    for key, ef in files:
        try:
            out[key] = _read_ef(u, ef)
        except FileNotFound:
            out[key] = None
        except SecurityStatusNotSatisfied:
            out[key] = None
            info.setdefault("notes", []).append(f"{ef.name}: PIN1 not verified")
        except ValueError as e:  # a file whose content does not decode: say so, go on
            out[key] = None
            info.setdefault("notes", []).append(str(e))
    out["usim_calc_info"] = None
    if out["calculated_by"] == "usim":
        try:
            u.select_fid(nr5g.DF_SAIP_FID)
            out["usim_calc_info"] = _read_ef(u, nr5g.EF_SUCI_Calc_Info_USIM)
        except (FileNotFound, SecurityStatusNotSatisfied, ValueError) as e:
            info.setdefault("notes", []).append(f"DF.SAIP/EF.SUCI_Calc_Info: {e}")
    return out


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
    info["suci"] = _read_suci(u, info.get("services") or [], info)
    if any(a["aid"].startswith(ISIM_AID.hex().upper()) for a in apps):
        try:
            u.select_aid(ISIM_AID)
            info["isim"] = {"impi": _read_ef(u, isim.EF_IMPI),
                            "domain": _read_ef(u, isim.EF_DOMAIN),
                            "impu": _read_ef(u, isim.EF_IMPU)}
        except CardError as exc:
            info["isim"] = {"error": str(exc)}
    return info
