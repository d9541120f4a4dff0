"""PLMN identity and access-technology codings (3GPP TS 24.008 §10.5.1.3, TS 31.102 §4.2.5).

A PLMN is 3 bytes: MCC2|MCC1, MNC3|MCC3, MNC2|MNC1 (MNC3 = F for a two-digit MNC).
"""

from __future__ import annotations

from typing import Any

ACT_BITS: dict[str, int] = {
    "UTRAN": 0x8000,
    "E-UTRAN": 0x4000,
    "NG-RAN": 0x0800,
    "GSM": 0x0080,
    "GSM COMPACT": 0x0040,
    "cdma2000 HRPD": 0x0020,
    "cdma2000 1xRTT": 0x0010,
}


class PlmnError(ValueError):
    """An MCC/MNC is not 3 / 2-3 digits."""


def encode_plmn(mcc: str, mnc: str) -> bytes:
    if not (len(mcc) == 3 and mcc.isdigit() and len(mnc) in (2, 3) and mnc.isdigit()):
        raise PlmnError(f"MCC must be 3 digits and MNC 2 or 3 digits, got {mcc!r}/{mnc!r}")
    m3 = mnc[2] if len(mnc) == 3 else "F"
    return bytes.fromhex(mcc[1] + mcc[0] + m3 + mcc[2] + mnc[1] + mnc[0])


def decode_plmn(data: bytes) -> dict[str, str] | None:
    """3 bytes -> {"mcc", "mnc"}; None for an unused entry (FFFFFF)."""
    if data[:3] == b"\xff\xff\xff":
        return None
    h = data[:3].hex().upper()
    mcc = h[1] + h[0] + h[3]
    mnc = h[5] + h[4] + ("" if h[2] == "F" else h[2])
    return {"mcc": mcc, "mnc": mnc}


def encode_act(names: list[str]) -> bytes:
    value = 0
    for name in names:
        if name in ACT_BITS:
            value |= ACT_BITS[name]
        elif name.startswith("0x"):
            value |= int(name, 16)
        else:
            raise PlmnError(f"unknown access technology {name!r}; known: {', '.join(ACT_BITS)}")
    return value.to_bytes(2, "big")


def decode_act(data: bytes) -> list[str]:
    value = int.from_bytes(data[:2], "big")
    names = [n for n, bit in ACT_BITS.items() if value & bit]
    rest = value & ~sum(ACT_BITS.values())
    for bit in range(15, -1, -1):
        if rest & (1 << bit):
            names.append(f"0x{1 << bit:04X}")
    return names


def plmn_from(entry: dict[str, Any]) -> bytes:
    return encode_plmn(str(entry["mcc"]), str(entry["mnc"]))
