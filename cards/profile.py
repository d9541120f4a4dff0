"""What personalisation writes and proves: the subscriber's card profile, the hook that supplies
key material at write time, and the authentication vector to check the card against.

Clear Ki/OPc and the ADM code come from the caller (the HSM side) through `KeyWriter`, only at
the moment the APDU is built; they travel as `Secret` and never appear in plans, traces, reprs or
errors. A vector follows 3GPP TS 33.102 §6.3.2 (RAND, AUTN, XRES, CK, IK).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from cards.conversion import c2_sres, c3_kc
from cards.secret import Secret


@dataclass(frozen=True)
class SuciFiles:
    """What a card carries for 5G subscription privacy (TS 31.102 §4.4.11, TS 33.501 §6.12):
    EF.SUCI_Calc_Info content (simcore.suci.suci_calc_info: public keys, key ids, scheme
    priority), the routing indicator, and who computes the SUCI — the USIM (EF.UST 124 and
    125; the same keys also go to DF.SAIP) or the phone (124 only). No secret: public keys."""

    calc_info: bytes
    routing_indicator: str = "0"
    by_usim: bool = False


@dataclass(frozen=True)
class CardProfile:
    """The subscriber data written to one card. PLMN entries are {"mcc", "mnc", "act"} dicts."""

    iccid: str
    imsi: str
    mnc_length: int = 2
    msisdn: str | None = None
    spn: str | None = None
    spn_display_condition: int = 0x01
    acc: tuple[int, ...] | None = None  # default: from the IMSI's last digit (TS 22.011 §4.2)
    hplmn_act: tuple[str, ...] = ("UTRAN", "E-UTRAN", "GSM")
    oplmn: tuple[dict[str, Any], ...] = ()
    plmn: tuple[dict[str, Any], ...] = ()
    fplmn: tuple[dict[str, Any], ...] | None = None  # None: leave the card's list alone
    smsc: str | None = None
    impi: str | None = None
    impu: tuple[str, ...] = ()
    domain: str | None = None
    write_gsm: bool = True  # also write DF.GSM for 2G handsets
    suci: SuciFiles | None = None  # DF.5GS SUCI files and EF.UST 124/125 (drivers with DF.5GS)

    def __post_init__(self) -> None:
        if self.mnc_length not in (2, 3):
            raise ValueError("mnc_length must be 2 or 3")
        if not (self.imsi.isdigit() and 6 <= len(self.imsi) <= 15):
            raise ValueError(f"IMSI must be 6 to 15 digits, got {self.imsi!r}")

    @property
    def mcc(self) -> str:
        return self.imsi[:3]

    @property
    def mnc(self) -> str:
        return self.imsi[3 : 3 + self.mnc_length]

    @property
    def access_classes(self) -> list[int]:
        return list(self.acc) if self.acc is not None else [int(self.imsi[-1])]

    @property
    def has_isim(self) -> bool:
        return bool(self.impi or self.impu or self.domain)


@dataclass(frozen=True)
class CardKeys:
    """Subscriber key K (Ki) and OPc for Milenage, as the card stores them."""

    ki: Secret
    opc: Secret


class KeyWriter(Protocol):
    """Supplies secrets for one card at the moment they are written (HSM side)."""

    def adm1(self, iccid: str) -> Secret: ...

    def card_keys(self, iccid: str) -> CardKeys: ...


@dataclass(frozen=True)
class StaticKeyWriter:
    """A KeyWriter over fixed values (development, tests, a single hand-programmed card)."""

    adm: Secret
    keys: CardKeys | None = None

    def adm1(self, iccid: str) -> Secret:
        return self.adm

    def card_keys(self, iccid: str) -> CardKeys:
        if self.keys is None:
            raise LookupError(f"no keys for ICCID {iccid}")
        return self.keys


@dataclass(frozen=True)
class AuthVector:
    """One quintet: the card must answer RES/CK/IK to (RAND, AUTN); SRES/Kc follow by c2/c3."""

    rand: bytes
    autn: bytes
    res: bytes
    ck: bytes = field(repr=False)
    ik: bytes = field(repr=False)

    @property
    def sres(self) -> bytes:
        return c2_sres(self.res)

    @property
    def kc(self) -> bytes:
        return c3_kc(self.ck, self.ik)
