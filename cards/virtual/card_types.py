"""Programmable card types the virtual card can present: ATR, applications and the vendor's
personalisation files (facts in the project's notes on sysmocom cards; not vendor code).

- sysmoISIM-SJA2 / SJA5: DF.SYSTEM 3F00/A515 with EF 6F20 (2G key file, 33 bytes, the same
  file as ADF.USIM/AF22 EF.USIM_AUTH_KEY_2G) and 6F21 (Milenage constants, 85 bytes);
  ADF.USIM/AF20 and ADF.ISIM/AF20 (EF.*_AUTH_KEY: config byte, K, OP/OPc; 33 bytes on the SJA2,
  67 on the SJA5, whose layout has room for TUAK). Config byte: bits 3-0 algorithm
  (4 = Milenage), bit 4 OPc (else OP). Sizes: tests/vectors/cards/ (a real SJA5).
- sysmoUSIM-SJS1: DF.GSM 7F20/00FF Ki (16 bytes) and 7F20/00F7 OPc (17 bytes: 01 then OPc);
  EF.ICCID writable.
"""

from __future__ import annotations

from dataclasses import dataclass

USIM_AID = bytes.fromhex("A0000000871002FFFFFFFF8907090000")
ISIM_AID = bytes.fromhex("A0000000871004FFFFFFFF8907090000")

ALGO_MILENAGE = 0x04
CONFIG_OPC = 0x10


@dataclass(frozen=True)
class CardType:
    name: str
    atr: bytes
    has_isim: bool
    key_layout: str  # "sja" (AF20 auth-key files) or "sjs1" (00FF/00F7 in DF.GSM)
    auth_key_size: int = 33  # ADF.USIM/ADF.ISIM EF.*_AUTH_KEY: 33 (SJA2), 67 (SJA5, TUAK-ready)


CARD_TYPES: dict[str, CardType] = {
    t.name: t
    for t in (
        CardType("sysmoISIM-SJA2",
                 bytes.fromhex("3B9F96801F878031E073FE211B674A4C753034054BA9"), True, "sja"),
        CardType("sysmoISIM-SJA5",
                 bytes.fromhex("3B9F96801F878031E073FE211B674A357530350251CC"), True, "sja",
                 auth_key_size=67),
        CardType("sysmoUSIM-SJS1",
                 bytes.fromhex("3B9F96801FC78031A073BE21136743200718000001A5"), False, "sjs1"),
        # A card with a made-up ATR: only the generic driver (forced) may program it.
        CardType("generic-test-uicc", bytes.fromhex("3B9F96801F878031E073FE2100000000000000000042"),
                 True, "sja"),
    )
}


def card_type(name: str) -> CardType:
    try:
        return CARD_TYPES[name]
    except KeyError:
        raise KeyError(f"unknown card type {name!r}; known: {', '.join(CARD_TYPES)}") from None
