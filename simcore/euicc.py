"""The virtual eUICC (esim.euicc) joined to the card layer (cards): the enabled profile's
USIM, an in-process transport, and ES10 over any cards Transport. simcore is the layer that may
use both esim and cards.

The enabled profile's USIM on the virtual eUICC (SGP.22 §2.4.1: the enabled profile's NAAs
are what the device sees; ETSI TS 102 221 / 3GPP TS 31.102 behaviour).

The profile's UPP (SAIP) gives ICCID, IMSI, MNC length and the akaParameter keys; a
VirtualUicc of the virtual UICC's own file system is personalised with them through its
ordinary APDU path (cards.personalise.program_card over a loopback), so `simsmith card read`
reads the profile and AUTHENTICATE runs Milenage with the profile's K/OPc; the profile's SUCI
files (DF.5GS, DF.SAIP, EF.UST 124/125) are written too, so a profile whose USIM computes the
SUCI answers GET IDENTITY (TS 31.102 §7.5) with it. Limits: the UICC's
file system is the virtual UICC's (not every file of the UPP), and an algorithm other than
Milenage (e.g. TS.48's test algorithm) leaves AUTHENTICATE refused (6985), as on the virtual
UICC.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from cards.apdu import Apdu
from cards.fs.codecs import decode_bitmap
from cards.fs.ts_31_102_5gs import EF_Routing_Indicator
from cards.personalise import program_card
from cards.profile import AuthVector, CardKeys, CardProfile, StaticKeyWriter, SuciFiles
from cards.secret import Secret, adm_from_text
from cards.transport import ExchangeTransport, TraceSink, Transport
from cards.virtual.card import VirtualUicc
from cards.virtual.loopback import LoopbackTransport
from cards.virtual.milenage_card import Milenage
from esim.euicc.card import VirtualEuicc
from esim.euicc.es10 import EuiccCore
from esim.lpa.es10 import ApduSender, Es10Session
from esim.saip.package import ALGORITHMS, ProfilePackage

CARD_TYPE = "sysmoISIM-SJA5"  # computes the SUCI itself when the profile says so
KEY_FILE = "3F00/7FF0/AF20"  # the virtual UICC's USIM key file: algorithm byte, K, OPc
# personalisation's check vector uses SQN = SEQ 1 in IND slot 31, so the network's vectors
# (any IND, SEQ ≥ 1) stay fresh (TS 33.102 Annex C.3)
_CHECK_SQN = ((1 << 5) | 31).to_bytes(6, "big")


def _vector(k: bytes, opc: bytes) -> AuthVector:
    m = Milenage(k, opc)
    rand = os.urandom(16)
    amf = b"\x80\x00"
    mac_a, _ = m.f1(rand, _CHECK_SQN, amf)
    res, ck, ik, ak, _ = m.f2345(rand)
    autn = bytes(a ^ b for a, b in zip(_CHECK_SQN, ak, strict=True)) + amf + mac_a
    return AuthVector(rand, autn, res, ck, ik)


def _suci_files(package: ProfilePackage) -> SuciFiles | None:
    """The profile's SUCI configuration (TS 31.102 §4.4.11): DF.5GS's EF.SUCI_Calc_Info and
    EF.Routing_Indicator, and who computes the SUCI (EF.UST 124/125); the USIM's own keys are
    DF.SAIP's when the profile has them. None for a profile without DF.5GS content."""
    try:
        five = package.one("df-5gs")
        calc = five.file_content("ef-suci-calc-info")
        services = decode_bitmap(package.one("usim").file_content("ef-ust"))
    except (KeyError, LookupError):
        return None
    if 124 not in services:
        return None
    by_usim = 125 in services
    if by_usim:
        with contextlib.suppress(KeyError, LookupError):  # no DF.SAIP: DF.5GS's keys
            calc = package.one("df-saip").file_content("ef-suci-calc-info-usim")
    try:
        ri = EF_Routing_Indicator.decode(five.file_content("ef-routing-indicator")) or "0"
    except (KeyError, ValueError):
        ri = "0"
    return SuciFiles(calc.rstrip(b"\xff"), ri, by_usim=by_usim)


def profile_uicc(upp: bytes, state_path: Path | None = None) -> VirtualUicc:
    """The UICC the enabled profile presents; `state_path` keeps it (and its SQNs) across
    restarts, created on first use."""
    if state_path is not None and state_path.exists():
        return VirtualUicc(state_path=state_path)
    package = ProfilePackage.from_der(upp)
    iccid, imsi = package.iccid, package.imsi
    try:
        mnc_length = package.one("usim").file_content("ef-ad")[3] & 0x0F
    except (KeyError, IndexError, LookupError):
        mnc_length = 2
    params = package.all("akaParameter")[0].value["algoConfiguration"][1]
    milenage = ALGORITHMS.get(params.get("algorithmID", 0)) == "milenage"
    k = bytes(params["key"]) if milenage else os.urandom(16)
    opc = bytes(params["opc"]) if milenage else os.urandom(16)
    adm = f"{secrets.randbelow(10 ** 8):08d}"  # never leaves this function
    card = VirtualUicc(CARD_TYPE, iccid=iccid, adm1=adm, state_path=state_path)
    program_card(LoopbackTransport(card),
                 CardProfile(iccid=iccid, imsi=imsi,
                             mnc_length=mnc_length if mnc_length in (2, 3) else 2,
                             suci=_suci_files(package)),
                 StaticKeyWriter(adm_from_text(adm), CardKeys(Secret(k, "Ki"),
                                                              Secret(opc, "OPc"))),
                 _vector(k, opc))
    if not milenage:
        # the virtual UICC computes Milenage only: mark the key file with another algorithm
        # so AUTHENTICATE is refused rather than answered with made-up keys
        card.node(KEY_FILE).data[0] = (card.node(KEY_FILE).data[0] & 0xF0) | 0x0F
        card.save()
    card.reset()
    return card


def virtual_euicc(core: EuiccCore) -> VirtualEuicc:
    """The virtual eUICC card whose enabled profile answers as a personalised virtual UICC."""
    return VirtualEuicc(core, uicc_factory=profile_uicc)


class EuiccLoopback(ExchangeTransport):
    """An in-process Transport straight into a VirtualEuicc (no pcscd): tests and benches."""

    def __init__(self, card: VirtualEuicc, trace: TraceSink | None = None) -> None:
        super().__init__(card.atr, trace)
        self.card = card
        card.reset()

    def _exchange(self, raw: bytes) -> bytes:
        return self.card.process(raw)


def apdu_sender(transport: Transport) -> ApduSender:
    """esim.lpa's APDU sender over a cards Transport (61xx / GET RESPONSE handled there)."""
    def send(cla: int, ins: int, p1: int, p2: int, data: bytes = b"",
             le: int | None = None) -> tuple[bytes, int]:
        return transport.send(Apdu(cla, ins, p1, p2, data, le))
    return send


def es10_session(transport: Transport, block_size: int = 120) -> Es10Session:
    """An ES10 session (logical channel to the ISD-R) over a cards Transport."""
    return Es10Session(apdu_sender(transport), block_size=block_size)
