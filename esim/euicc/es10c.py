"""ES10c codecs (GSMA SGP.22 v2.x §5.7.15–5.7.21): GetProfilesInfo (BF2D), EnableProfile
(BF31), DisableProfile (BF32), DeleteProfile (BF33), eUICCMemoryReset (BF34), SetNickname
(BF29). The RSPDefinitions compiled in esim.sgp22 cover ES9+/ES10b only, and these are small
fixed shapes, so they are read and written here as BER-TLV (tags of Annex H, AUTOMATIC TAGS).
"""

from __future__ import annotations

from dataclasses import dataclass

from esim.euicc.errors import Es10Refused
from esim.sgp22.errors import Asn1Error
from esim.sgp22.tlv import Tlv, children, encode_tlv, read_tlv

# results (Annex H named INTEGERs)
OK = 0
NOT_FOUND = 1  # iccidOrAidNotFound / iccidNotFound / nothingToDelete
WRONG_STATE = 2  # profileNotInDisabledState / profileNotInEnabledState
UNDEFINED = 127


@dataclass(frozen=True)
class ProfileRef:
    """A profile named by ICCID (5A, EF.ICCID coding) or ISD-P AID (4F)."""

    iccid: bytes | None = None
    aid: bytes | None = None


def _parse(data: bytes, tag: bytes) -> tuple[Tlv, list[Tlv]]:
    try:
        root = read_tlv(data, where=tag.hex().upper())
        if root.tag != tag or root.end != len(data):
            raise Es10Refused(0x6A80, f"not one {tag.hex().upper()} command")
        return root, children(data, root, tag.hex().upper())
    except Asn1Error as exc:
        raise Es10Refused(0x6A80, str(exc)) from None


def _ref(data: bytes, tlv: Tlv) -> ProfileRef:
    if tlv.tag == b"\x5a" and tlv.end - tlv.value_start == 10:
        return ProfileRef(iccid=tlv.value(data))
    if tlv.tag == b"\x4f" and 5 <= tlv.end - tlv.value_start <= 16:
        return ProfileRef(aid=tlv.value(data))
    raise Es10Refused(0x6A80, "profileIdentifier: neither an ICCID (5A) nor an ISD-P AID (4F)")


def enable_disable_request(data: bytes, tag: bytes) -> tuple[ProfileRef, bool]:
    """EnableProfileRequest / DisableProfileRequest: profileIdentifier [0] CHOICE, refreshFlag
    [1] BOOLEAN."""
    _root, kids = _parse(data, tag)
    if not kids or kids[0].tag != b"\xa0":
        raise Es10Refused(0x6A80, "profileIdentifier [0] missing")
    inner = children(data, kids[0])
    if len(inner) != 1:
        raise Es10Refused(0x6A80, "profileIdentifier: exactly one of ICCID / AID")
    refresh = any(k.tag == b"\x81" and k.value(data) != b"\x00" for k in kids[1:])
    return _ref(data, inner[0]), refresh


def delete_request(data: bytes) -> ProfileRef:
    """DeleteProfileRequest: CHOICE { isdpAid 4F, iccid 5A } directly inside BF33."""
    _root, kids = _parse(data, b"\xbf\x33")
    if len(kids) != 1:
        raise Es10Refused(0x6A80, "DeleteProfileRequest: exactly one of ICCID / AID")
    return _ref(data, kids[0])


def nickname_request(data: bytes) -> tuple[bytes, str]:
    """SetNicknameRequest: iccid 5A, profileNickname [16] UTF8String (SIZE(0..64))."""
    _root, kids = _parse(data, b"\xbf\x29")
    if len(kids) != 2 or kids[0].tag != b"\x5a" or kids[1].tag != b"\x90":
        raise Es10Refused(0x6A80, "SetNicknameRequest: iccid (5A) then profileNickname (90)")
    raw = kids[1].value(data)
    if len(raw) > 64:
        raise Es10Refused(0x6A80, "profileNickname: more than 64 bytes")
    try:
        return kids[0].value(data), raw.decode()
    except UnicodeDecodeError:
        raise Es10Refused(0x6A80, "profileNickname: not UTF-8") from None


def memory_reset_request(data: bytes) -> int:
    """EuiccMemoryResetRequest: resetOptions [2] BIT STRING {deleteOperationalProfiles(0),
    deleteFieldLoadedTestProfiles(1), resetDefaultSmdpAddress(2)}; returns the bits as an
    int with bit 0 = 0x80 of the first content byte."""
    _root, kids = _parse(data, b"\xbf\x34")
    if len(kids) != 1 or kids[0].tag != b"\x82" or kids[0].end - kids[0].value_start < 2:
        raise Es10Refused(0x6A80, "EuiccMemoryResetRequest: resetOptions (82) missing")
    return kids[0].value(data)[1]


def result(tag: bytes, code: int) -> bytes:
    """The common `BFxx { 80 result }` answer."""
    return encode_tlv(tag, encode_tlv(b"\x80", bytes([code])))


@dataclass(frozen=True)
class ProfileInfo:
    iccid: bytes  # EF.ICCID coding
    isdp_aid: bytes
    enabled: bool
    nickname: str
    service_provider_name: str
    profile_name: str
    profile_class: int


def profiles_info(profiles: list[ProfileInfo]) -> bytes:
    """ProfileInfoListResponse (BF2D): profileInfoListOk [0] SEQUENCE OF ProfileInfo (E3)."""
    items = b""
    for p in profiles:
        body = (encode_tlv(b"\x5a", p.iccid) + encode_tlv(b"\x4f", p.isdp_aid)
                + encode_tlv(b"\x9f\x70", b"\x01" if p.enabled else b"\x00"))
        if p.nickname:
            body += encode_tlv(b"\x90", p.nickname.encode())
        body += (encode_tlv(b"\x91", p.service_provider_name.encode())
                 + encode_tlv(b"\x92", p.profile_name.encode())
                 + encode_tlv(b"\x95", bytes([p.profile_class])))
        items += encode_tlv(b"\xe3", body)
    return encode_tlv(b"\xbf\x2d", encode_tlv(b"\xa0", items))
