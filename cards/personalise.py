"""Personalisation and verification flows: detect the driver (ATR, then EF.DIR — ETSI TS 102 221
§13.1), plan, verify ADM once, write, read back, and prove the keys with AUTHENTICATE
(3GPP TS 31.102 §7.1.2; TS 51.011 §9.2.16 in DF.GSM).

Entry points: `plan_card` (for --dry-run), `program_card`, `verify_card`, `read_iccid`,
`personalised_as` (resumable batches).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cards.apdu import Apdu
from cards.drivers import CardDriver, driver_for_atr, driver_named
from cards.drivers.base import ISIM_AID, USIM_AID, StepBuilder
from cards.errors import DriverError
from cards.fs.ts_31_102 import EF_IMSI
from cards.fs.ts_102_221 import EF_DIR, EF_ICCID
from cards.plan import GroupStats, PlanReport, Step, describe, execute
from cards.profile import AuthVector, CardProfile, KeyWriter
from cards.status_words import check
from cards.transport import Transport


@dataclass(frozen=True)
class ProgramResult:
    """What a personalisation did: for the audit record and the benchmark."""

    iccid: str
    driver: str
    atr: str
    apdus: int
    exchanges: int
    seconds: float
    groups: dict[str, GroupStats] = field(default_factory=dict)


def applications(transport: Transport, report: PlanReport, max_records: int = 2) -> list[bytes]:
    """AIDs listed in EF.DIR (records read until an empty one, at most `max_records`)."""
    aids: list[bytes] = []
    steps = [Step("detect", "SELECT MF/EF.DIR", Apdu(0, 0xA4, 0x08, 0x0C, b"\x2f\x00"),
                  needs="PIN1")]
    execute(transport, steps, report)
    length = 0
    for number in range(1, max_records + 1):
        found: list[bytes] = []

        def take(data: bytes, sw: int, found: list[bytes] = found) -> None:
            if sw == 0x6A83:
                return
            check(sw, "READ RECORD EF.DIR", "PIN1")
            found.append(data)

        execute(transport, [Step("detect", f"READ RECORD EF.DIR #{number}",
                                 Apdu(0, 0xB2, number, 0x04, le=length), check=take)], report)
        if not found or (entry := EF_DIR.decode(found[0])) is None:
            break
        length = len(found[0])
        aids.append(bytes.fromhex(entry["aid"]))
    return aids


def choose_driver(transport: Transport, driver: str | None = None) -> CardDriver:
    """The named driver, or the one whose ATR list holds the card's ATR."""
    return driver_named(driver) if driver else driver_for_atr(transport.atr)


def plan_card(profile: CardProfile, key_writer: KeyWriter, vector: AuthVector | None,
              driver: str | CardDriver, *, min_adm_tries: int = 2) -> list[Step]:
    d = driver_named(driver) if isinstance(driver, str) else driver
    return d.plan(profile, key_writer, vector, min_adm_tries=min_adm_tries)


def describe_plan(steps: list[Step]) -> list[str]:
    return describe(steps)


def program_card(transport: Transport, profile: CardProfile, key_writer: KeyWriter,
                 vector: AuthVector, *, driver: str | None = None,
                 min_adm_tries: int = 2) -> ProgramResult:
    """Detect, verify ADM (once), write, read back, AUTHENTICATE; raise on the first problem."""
    d = choose_driver(transport, driver)
    report = PlanReport()
    need_isim = profile.has_isim and d.has_isim
    aids = applications(transport, report, max_records=2 if need_isim else 1)
    if not any(a.startswith(USIM_AID) for a in aids):
        raise DriverError("EF.DIR lists no USIM application: not a USIM, cannot personalise")
    if profile.has_isim and not any(a.startswith(ISIM_AID) for a in aids):
        raise DriverError("the profile has ISIM data but EF.DIR lists no ISIM application")
    steps = d.plan(profile, key_writer, vector, min_adm_tries=min_adm_tries)
    execute(transport, steps, report)
    return ProgramResult(profile.iccid, d.name, transport.atr.hex().upper(), report.apdus,
                         report.exchanges, report.seconds, report.groups)


def read_iccid(transport: Transport) -> str:
    """EF.ICCID (SELECT by path from MF, READ BINARY)."""
    b = StepBuilder()
    b.select_path("iccid", [EF_ICCID.fid], "MF/EF.ICCID")
    execute(transport, b.steps)
    data, sw = transport.send(Apdu(0, 0xB0, 0, 0, le=10))
    check(sw, "READ BINARY EF.ICCID", "PIN1")
    return str(EF_ICCID.decode(data))


def personalised_as(transport: Transport, profile: CardProfile) -> bool:
    """True when the card already holds the profile's ICCID and IMSI (ADF.USIM): a resumable
    batch skips it (then `verify_card` proves the keys). Sends 4 APDUs, no code."""
    if read_iccid(transport) != profile.iccid:
        return False
    b = StepBuilder()
    b.select_aid("usim", USIM_AID, "ADF.USIM")
    execute(transport, b.steps)
    data, sw = transport.send(Apdu(0, 0xB0, 0x80 | 0x07, 0, le=9))
    if sw != 0x9000:
        return False
    return bool(EF_IMSI.decode(data) == profile.imsi)


def verify_card(transport: Transport, vector: AuthVector, *, gsm: bool = True) -> PlanReport:
    """AUTHENTICATE in ADF.USIM (3G) and, if `gsm`, RUN GSM ALGORITHM in DF.GSM; compare
    RES/CK/IK and SRES/Kc with the vector. Raises VerificationError/SyncFailureError."""
    b = StepBuilder()
    if gsm:
        b.select_path("gsm", [0x7F20], "DF.GSM")
        b.run_gsm_algorithm(vector)
    b.select_aid("usim", USIM_AID, "ADF.USIM")
    b.authenticate_3g(vector)
    return execute(transport, b.steps)
