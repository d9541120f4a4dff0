"""GET IDENTITY on the virtual USIM (3GPP TS 31.102 V17 §7.5; ETSI TS 102 221 §11.1.23): the
card computes the SUCI itself, as a sysmoISIM-SJA5 does, when EF.UST has service n°124
(subscription identifier privacy) and n°125 (SUCI calculation by the USIM).

Command: CLA '80', INS '78', P1 '00', P2 the identity context — '01' SUCI (b8 '1', specific
reference data, is accepted as well: '81'); no command data; Le. Response: 'A1' L <SUCI>, the
SUCI coded as the 5GS mobile identity IE from octet 4 (TS 24.501 §9.11.3.4; simcore.suci).

What it conceals with: DF.SAIP/EF.SUCI_Calc_Info (the USIM-calculation keys, SAIP §9.5.12) or,
when that holds no scheme, DF.5GS/EF.SUCI_Calc_Info; the first entry of the priority list
(Profile A, B or the null-scheme) wins. IMSI and MNC length from EF.IMSI and EF.AD, the routing
indicator from DF.5GS/EF.Routing_Indicator ("0" when blank). A fresh ephemeral key per command.

Status words: 6985 when the services are off or the files hold no usable configuration (TS
31.102 §7.3.2 lists 6985 for GET IDENTITY), 6A86 for another context, 6982 without PIN1.
"""

from __future__ import annotations

from cards.apdu import Apdu
from cards.fs.codecs import decode_bitmap
from cards.fs.ts_31_102 import EF_AD, EF_IMSI, EF_UST
from cards.fs.ts_31_102_5gs import (
    DF_5GS_FID,
    DF_SAIP_FID,
    SERVICE_SUCI_BY_USIM,
    SERVICE_SUCI_PRIVACY,
    EF_Routing_Indicator,
    EF_SUCI_Calc_Info,
    EF_SUCI_Calc_Info_USIM,
)
from cards.tlv import tlv
from cards.virtual.filesystem import Node
from cards.virtual.interface import UiccContext
from cards.virtual.status import CardStatus
from simcore.identifiers import Imsi, InvalidIdentifier
from simcore.suci import InvalidSuci, conceal_as_phone

INS_GET_IDENTITY = 0x78
CONTEXT_SUCI = 0x01
TAG_SUCI = 0xA1


def _child(node: Node | None, fid: int) -> Node | None:
    return None if node is None else node.children.get(fid)


def _calc_info(adf: Node) -> bytes | None:
    for df_fid, ef_fid in ((DF_SAIP_FID, EF_SUCI_Calc_Info_USIM.fid),
                           (DF_5GS_FID, EF_SUCI_Calc_Info.fid)):
        ef = _child(_child(adf, df_fid), ef_fid)
        if ef is not None and ef.data[:1] not in (b"", b"\xff"):
            return bytes(ef.data)
    return None


def suci_of(adf: Node) -> bytes:
    """The SUCI (5GS mobile identity value) this USIM computes now; CardStatus if it cannot."""
    ust = _child(adf, EF_UST.fid)
    services = decode_bitmap(bytes(ust.data)) if ust is not None else []
    if SERVICE_SUCI_PRIVACY not in services or SERVICE_SUCI_BY_USIM not in services:
        raise CardStatus(0x6985)
    imsi_ef, ad_ef = _child(adf, EF_IMSI.fid), _child(adf, EF_AD.fid)
    calc_info = _calc_info(adf)
    if imsi_ef is None or calc_info is None:
        raise CardStatus(0x6985)
    digits = EF_IMSI.decode(bytes(imsi_ef.data))
    mnc_length = EF_AD.decode(bytes(ad_ef.data))["mnc_length"] if ad_ef is not None else None
    ri_ef = _child(_child(adf, DF_5GS_FID), EF_Routing_Indicator.fid)
    routing = (EF_Routing_Indicator.decode(bytes(ri_ef.data)) if ri_ef is not None else None)
    try:
        imsi = Imsi.parse(digits or "", mnc_length if mnc_length in (2, 3) else None)
        suci = conceal_as_phone(imsi, calc_info, routing_indicator=routing or "0")
    except (InvalidSuci, InvalidIdentifier, ValueError):
        raise CardStatus(0x6985) from None  # a card with a broken configuration refuses
    return suci.to_bytes()


def get_identity(card: UiccContext, apdu: Apdu) -> bytes:
    adf = card.current_adf
    if adf is None or adf.fid != 0x7FF0 or apdu.p1 != 0x00:
        raise CardStatus(0x6985 if apdu.p1 == 0x00 else 0x6A86)
    if apdu.p2 & 0x7F != CONTEXT_SUCI:
        raise CardStatus(0x6A86)
    if apdu.data:
        raise CardStatus(0x6700)
    card.require(("PIN1",))
    return card.case2(apdu, tlv(TAG_SUCI, suci_of(adf)))
