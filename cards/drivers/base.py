"""What every card driver shares: the step builders for selects, writes with read-back, the
ADM guard, the authentication checks (ETSI TS 102 221 §11, TS 31.102 §7.1.2,
TS 51.011 §9.2.16) and the DF.5GS SUCI files (TS 31.102 §4.4.11). A driver only says which
files go where on its card.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import ClassVar

from cards.apdu import Apdu
from cards.commands import ADM1
from cards.errors import CardError, VerificationError
from cards.fs import ts_31_102 as usim
from cards.fs import ts_31_102_5gs as nr5g
from cards.fs import ts_31_103 as isim
from cards.fs import ts_51_011 as gsm
from cards.fs import ts_102_221 as mf
from cards.fs.base import EF, pad
from cards.fs.codecs import decode_bitmap, encode_bitmap
from cards.plan import Step
from cards.profile import AuthVector, CardProfile, KeyWriter, SuciFiles
from cards.status_words import WrongCode, check, error_for

USIM_AID = bytes.fromhex("A0000000871002")
ISIM_AID = bytes.fromhex("A0000000871004")


class AdmGuardError(CardError):
    """The ADM code is not tried because too few tries are left (or it is blocked)."""


class StepBuilder:
    """Collects Steps; every method appends one or more and returns nothing."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def add(self, step: Step) -> None:
        self.steps.append(step)

    def select_path(self, group: str, path: list[int], name: str) -> None:
        data = b"".join(f.to_bytes(2, "big") for f in path)
        self.add(Step(group, f"SELECT {name}", Apdu(0, 0xA4, 0x08, 0x0C, data)))

    def select_fid(self, group: str, fid: int, name: str) -> None:
        self.add(Step(group, f"SELECT {name}", Apdu(0, 0xA4, 0x00, 0x0C, fid.to_bytes(2, "big"))))

    def select_aid(self, group: str, aid: bytes, name: str) -> None:
        self.add(Step(group, f"SELECT {name}", Apdu(0, 0xA4, 0x04, 0x0C, aid)))

    def write_binary(self, group: str, ef: type[EF], data: bytes, *, use_sfi: bool) -> None:
        """UPDATE BINARY then READ BINARY of the same bytes (by SFI when the EF has one)."""
        if use_sfi and ef.sfi is not None:
            p1 = 0x80 | ef.sfi
            how = f" (SFI {ef.sfi:02X})"
        else:
            self.select_fid(group, ef.fid, ef.label())
            p1, how = 0x00, ""
        self.add(Step(group, f"UPDATE BINARY {ef.name}{how}", Apdu(0, 0xD6, p1, 0, data)))
        self.add(Step(group, f"READ BINARY {ef.name}", Apdu(0, 0xB0, 0, 0, le=len(data)),
                      expect=data, needs="PIN1"))

    def write_record(self, group: str, ef: type[EF], number: int, data: bytes, *,
                     use_sfi: bool) -> None:
        p2 = 0x04
        if use_sfi and ef.sfi is not None:
            p2 |= ef.sfi << 3
        else:
            self.select_fid(group, ef.fid, ef.label())
        self.add(Step(group, f"UPDATE RECORD {ef.name} #{number}",
                      Apdu(0, 0xDC, number, p2, data)))
        self.add(Step(group, f"READ RECORD {ef.name} #{number}",
                      Apdu(0, 0xB2, number, 0x04, le=len(data)), expect=data, needs="PIN1"))

    def write_secret(self, group: str, label: str, length: int,
                     data: Callable[[], bytes]) -> None:
        """UPDATE BINARY of key material built at run time; never read back (it is proven by
        AUTHENTICATE instead)."""

        def build() -> Apdu:
            raw = data()
            if len(raw) != length:
                raise ValueError(f"{label}: key material must be {length} bytes")
            return Apdu(0, 0xD6, 0, 0, raw, secret=True)

        self.add(Step(group, f"UPDATE BINARY {label}", build=build,
                      preview=Apdu(0, 0xD6, 0, 0, bytes(length), secret=True)))

    # -- ADM ----------------------------------------------------------------------------------
    def verify_adm(self, key_writer: KeyWriter, iccid: str, min_tries: int) -> None:
        def guard(_data: bytes, sw: int) -> None:
            if sw == 0x9000:
                return
            if sw == 0x6983:
                raise AdmGuardError("ADM1 is blocked on this card: it cannot be personalised")
            if (sw & 0xFFF0) != 0x63C0:
                check(sw, "VERIFY ADM1 (query)")
            left = sw & 0x0F
            if left < min_tries:
                raise AdmGuardError(
                    f"ADM1 has {left} {'try' if left == 1 else 'tries'} left: not trying (a "
                    "wrong code would block the card for good). Confirm the ADM code, then "
                    f"allow it with min_adm_tries={left}")

        def verified(_data: bytes, sw: int) -> None:
            if (sw & 0xFFF0) == 0x63C0:
                n = sw & 0x0F
                raise WrongCode(sw, "VERIFY ADM1",
                                f"wrong ADM1 code, {n} {'try' if n == 1 else 'tries'} left; "
                                "stopped after this one attempt, nothing was written")
            if sw != 0x9000:
                raise error_for(sw, "VERIFY ADM1")

        self.add(Step("adm", "VERIFY ADM1 (tries left, no code sent)",
                      Apdu(0, 0x20, 0x00, ADM1), check=guard))
        self.add(Step("adm", "VERIFY ADM1",
                      build=lambda: Apdu(0, 0x20, 0x00, ADM1, _pad8(key_writer.adm1(iccid)
                                                                    .reveal()), secret=True),
                      preview=Apdu(0, 0x20, 0x00, ADM1, bytes(8), secret=True), check=verified))

    # -- authentication -----------------------------------------------------------------------
    def authenticate_3g(self, vector: AuthVector | None) -> None:
        rand = vector.rand if vector else bytes(16)
        autn = vector.autn if vector else bytes(16)
        apdu = Apdu(0, 0x88, 0x00, 0x81, b"\x10" + rand + b"\x10" + autn, 0,
                    secret_response=True)

        def compare(data: bytes, sw: int) -> None:
            if sw == 0x9862:
                raise VerificationError("AUTHENTICATE (3G): the card rejects the vector's MAC "
                                        "(SW 9862): the card's keys are not the HSM's")
            check(sw, "AUTHENTICATE (3G)", "PIN1")
            assert vector is not None
            if data[:1] == b"\xdc":
                from cards.errors import SyncFailureError

                raise SyncFailureError("AUTHENTICATE (3G): the card rejected the vector's SQN "
                                       "(synchronisation failure); resynchronise with AUTS and "
                                       "verify again", data[2 : 2 + data[1]], vector.rand)
            fields = _lv_fields(data[1:]) if data[:1] == b"\xdb" else []
            if len(fields) < 3:
                raise VerificationError("AUTHENTICATE (3G): malformed response")
            for name, got, want in (("RES", fields[0], vector.res), ("CK", fields[1], vector.ck),
                                    ("IK", fields[2], vector.ik)):
                if not hmac.compare_digest(got, want):
                    raise VerificationError(f"AUTHENTICATE (3G): {name} differs from the "
                                            "vector: the card's keys are not the HSM's")

        self.add(Step("auth", "AUTHENTICATE 3G (RAND, AUTN from the vector)", apdu,
                      check=compare))

    def run_gsm_algorithm(self, vector: AuthVector | None) -> None:
        """RUN GSM ALGORITHM in DF.GSM (class A0, TS 51.011 §9.2.16): SRES/Kc by c2/c3."""
        rand = vector.rand if vector else bytes(16)

        def compare(data: bytes, sw: int) -> None:
            check(sw, "RUN GSM ALGORITHM", "PIN1")
            assert vector is not None
            if len(data) < 12:
                raise VerificationError("RUN GSM ALGORITHM: short response")
            for name, got, want in (("SRES", data[:4], vector.sres), ("Kc", data[4:12],
                                                                      vector.kc)):
                if not hmac.compare_digest(got, want):
                    raise VerificationError(f"RUN GSM ALGORITHM: {name} differs from the vector:"
                                            " the card's 2G key is not the HSM's")

        self.add(Step("auth", "RUN GSM ALGORITHM (RAND from the vector)",
                      Apdu(0xA0, 0x88, 0x00, 0x00, rand, secret_response=True), check=compare))


def _lv_fields(data: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = data[i]
        out.append(data[i + 1 : i + 1 + n])
        i += 1 + n
    return out


def _pad8(raw: bytes) -> bytes:
    return raw + b"\xff" * (8 - len(raw))


def plmn_entry(profile: CardProfile, act: tuple[str, ...]) -> dict[str, object]:
    return {"mcc": profile.mcc, "mnc": profile.mnc, "act": list(act)}


def standard_files(b: StepBuilder, profile: CardProfile, group: str, *, in_usim: bool) -> None:
    """IMSI, AD, ACC, HPLMN/OPLMN/PLMNwAcT, FPLMN, SPN, MSISDN, SMSP in the current DF.GSM or
    ADF.USIM (SFI access in the ADF, TS 31.102 Annex H; selects in DF.GSM)."""
    fs = usim if in_usim else gsm
    b.write_binary(group, fs.EF_IMSI, fs.EF_IMSI.encode(profile.imsi), use_sfi=in_usim)
    b.write_binary(group, fs.EF_AD, fs.EF_AD.encode(
        {"ue_operation_mode": 0, "additional_info": 0, "mnc_length": profile.mnc_length},
        fs.EF_AD.size), use_sfi=in_usim)
    b.write_binary(group, fs.EF_ACC, fs.EF_ACC.encode(profile.access_classes, 2),
                   use_sfi=in_usim)
    b.write_binary(group, fs.EF_HPLMNwAcT, fs.EF_HPLMNwAcT.encode(
        [plmn_entry(profile, profile.hplmn_act)], fs.EF_HPLMNwAcT.size), use_sfi=in_usim)
    b.write_binary(group, fs.EF_OPLMNwAcT, fs.EF_OPLMNwAcT.encode(
        list(profile.oplmn), fs.EF_OPLMNwAcT.size), use_sfi=in_usim)
    b.write_binary(group, fs.EF_PLMNwAcT, fs.EF_PLMNwAcT.encode(
        list(profile.plmn), fs.EF_PLMNwAcT.size), use_sfi=in_usim)
    if profile.fplmn is not None:
        b.write_binary(group, fs.EF_FPLMN, fs.EF_FPLMN.encode(
            list(profile.fplmn), fs.EF_FPLMN.size), use_sfi=in_usim)
    if profile.spn is not None:
        b.write_binary(group, fs.EF_SPN, fs.EF_SPN.encode(
            {"display_condition": profile.spn_display_condition, "name": profile.spn},
            fs.EF_SPN.size), use_sfi=False)
    if in_usim and profile.msisdn:
        b.write_record(group, usim.EF_MSISDN, 1, usim.EF_MSISDN.encode(
            {"alpha": "", "number": profile.msisdn}), use_sfi=False)
    if in_usim and profile.smsc:
        b.write_record(group, usim.EF_SMSP, 1, usim.EF_SMSP.encode(
            {"alpha": "", "sc_address": profile.smsc}), use_sfi=False)


def isim_files(b: StepBuilder, profile: CardProfile) -> None:
    if profile.impi is not None:
        b.write_binary("isim", isim.EF_IMPI, isim.EF_IMPI.encode(profile.impi,
                                                                 isim.EF_IMPI.size), use_sfi=True)
    if profile.domain is not None:
        b.write_binary("isim", isim.EF_DOMAIN, isim.EF_DOMAIN.encode(
            profile.domain, isim.EF_DOMAIN.size), use_sfi=True)
    for n, uri in enumerate(profile.impu[: isim.EF_IMPU.record_count], 1):
        b.write_record("isim", isim.EF_IMPU, n, isim.EF_IMPU.encode(uri, isim.EF_IMPU.size),
                       use_sfi=True)


def suci_files(b: StepBuilder, suci: SuciFiles) -> None:
    """From ADF.USIM: EF.UST services 124 (and 125 when the USIM computes the SUCI) set, the
    card's other services kept (read, changed, written, read back); then DF.5GS
    EF.SUCI_Calc_Info and EF.Routing_Indicator (TS 31.102 §4.4.11.8, §4.4.11.11), and for
    the USIM's own calculation DF.SAIP's copy of the keys. Leaves DF.5GS or DF.SAIP selected."""
    held: dict[str, bytes] = {}

    def keep(data: bytes, sw: int) -> None:
        check(sw, "READ BINARY EF.UST", "PIN1")
        held["read"] = data

    def services() -> bytes:
        have = set(decode_bitmap(held["read"])) | {nr5g.SERVICE_SUCI_PRIVACY}
        if suci.by_usim:
            have.add(nr5g.SERVICE_SUCI_BY_USIM)
        else:
            have.discard(nr5g.SERVICE_SUCI_BY_USIM)
        if max(have) > 8 * len(held["read"]):
            raise CardError(f"EF.UST has {len(held['read'])} bytes: no room for service "
                            f"{max(have)}")
        held["new"] = encode_bitmap(sorted(have), len(held["read"]))
        return held["new"]

    def same(data: bytes, sw: int) -> None:
        check(sw, "READ BINARY EF.UST", "PIN1")
        if not hmac.compare_digest(data, held["new"]):
            raise VerificationError(f"read-back of EF.UST differs: wrote "
                                    f"{held['new'].hex().upper()}, card holds "
                                    f"{data.hex().upper()}")

    ust = 0x80 | (usim.EF_UST.sfi or 0)
    b.add(Step("5gs", "READ BINARY EF.UST (SFI 04)", Apdu(0, 0xB0, ust, 0, le=0), check=keep,
               needs="PIN1"))
    b.add(Step("5gs", "UPDATE BINARY EF.UST (SUCI services 124/125)",
               build=lambda: Apdu(0, 0xD6, ust, 0, services()),
               preview=Apdu(0, 0xD6, ust, 0, bytes(usim.EF_UST.size))))
    b.add(Step("5gs", "READ BINARY EF.UST", Apdu(0, 0xB0, 0, 0, le=0), check=same,
               needs="PIN1"))
    calc = suci.calc_info
    b.select_fid("5gs", nr5g.DF_5GS_FID, "ADF.USIM/DF.5GS")
    b.write_binary("5gs", nr5g.EF_SUCI_Calc_Info, pad(calc, nr5g.EF_SUCI_Calc_Info.size,
                                                        nr5g.EF_SUCI_Calc_Info.name),
                   use_sfi=True)
    b.write_binary("5gs", nr5g.EF_Routing_Indicator, nr5g.EF_Routing_Indicator.encode(
        suci.routing_indicator, nr5g.EF_Routing_Indicator.size), use_sfi=True)
    if suci.by_usim:
        b.select_fid("5gs", nr5g.DF_SAIP_FID, "ADF.USIM/DF.SAIP")
        b.write_binary("5gs", nr5g.EF_SUCI_Calc_Info_USIM, pad(
            calc, nr5g.EF_SUCI_Calc_Info_USIM.size, nr5g.EF_SUCI_Calc_Info_USIM.name),
            use_sfi=False)


def check_iccid(b: StepBuilder, profile: CardProfile) -> None:
    """Read EF.ICCID and insist it is the profile's (cards whose ICCID is fixed at the factory)."""
    want = mf.EF_ICCID.encode(profile.iccid)

    def same(data: bytes, sw: int) -> None:
        check(sw, "READ BINARY EF.ICCID", "PIN1")
        if data != want:
            raise VerificationError(
                f"card ICCID {mf.EF_ICCID.decode(data)} is not the profile's {profile.iccid}: "
                "wrong card in the reader?")

    b.select_path("iccid", [mf.EF_ICCID.fid], "MF/EF.ICCID")
    b.add(Step("iccid", "READ BINARY EF.ICCID", Apdu(0, 0xB0, 0, 0, le=10), check=same))


class CardDriver:
    """A card type's personalisation: `plan()` lists the steps; `atrs` identify the card."""

    name: ClassVar[str]
    atrs: ClassVar[tuple[bytes, ...]] = ()
    has_isim: ClassVar[bool] = False

    def plan(self, profile: CardProfile, key_writer: KeyWriter, vector: AuthVector | None, *,
             min_adm_tries: int = 2) -> list[Step]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<driver {self.name}>"
