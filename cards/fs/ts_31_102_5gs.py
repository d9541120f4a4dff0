"""DF.5GS files of 3GPP TS 31.102 (V17) §4.4.11 and the SIMalliance DF.SAIP file the USIM's own
SUCI calculation reads (TS 31.102 §4.4.11.1: DF.5GS under ADF.USIM, FID 5FC0).

File IDs, SFIs, structures and sizes are those a real sysmoISIM-SJA5 reports
(tests/vectors/cards/sysmoISIM-SJA5-fs.tsv). EF.SUCI_Calc_Info's coding is simcore.suci's
(`suci_calc_info` / `parse_suci_calc_info`); the USIM-calculation copy under DF.SAIP (5FD0/4F01,
TCA eUICC Profile Package §9.5.12 "EF.SUCI_Calc_Info_USIM") has the same coding.

Which side computes the SUCI is two EF.UST services (§4.2.8, §5.3.47-48): 124 "subscription
identifier privacy support" alone — the ME, from EF.SUCI_Calc_Info; 124 and 125 "SUCI
calculation by the USIM" — the USIM, answering GET IDENTITY (§7.5).

The security-context files (EF.5GS3GPPNSC, EF.5GSN3GPPNSC, EF.5GAUTHKEYS) hold keys the UE
derives (K_AMF, K_AUSF, K_SEAF): they are decoded to what they hold, never to the key bytes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from cards.fs.base import EF, EncodeError, pad
from cards.fs.plmn import decode_plmn, plmn_from
from cards.tlv import parse_tlv, tlv
from simcore.identifiers import decode_swapped_bcd
from simcore.suci import (
    HomeNetworkPublicKey,
    InvalidSuci,
    ProtectionScheme,
    parse_suci_calc_info,
    routing_indicator_bcd,
    suci_calc_info,
)

DF_5GS = "DF.5GS"
DF_SAIP = "DF.SAIP"
DF_5GS_FID = 0x5FC0
DF_SAIP_FID = 0x5FD0  # the SJA5's FID (the SAIP template's DF.SAIP)

# EF.UST services (TS 31.102 §4.2.8)
SERVICE_5GS_MM = 122  # 5GS mobility management information (EF.5GS3GPPLOCI, EF.5GSN3GPPLOCI)
SERVICE_5G_SECURITY = 123  # 5G security parameters (EF.5GS3GPPNSC, EF.5GAUTHKEYS)
SERVICE_SUCI_PRIVACY = 124  # subscription identifier privacy support (EF.SUCI_Calc_Info, RI)
SERVICE_SUCI_BY_USIM = 125  # SUCI calculation by the USIM (GET IDENTITY)
SERVICE_UAC_AIC = 126  # UAC access identities support (EF.UAC_AIC)
SERVICE_OPL5G = 129  # 5GS operator PLMN list (EF.OPL5G)
SERVICE_SUPI_NAI = 130  # SUPI of type NSI, GLI or GCI (EF.SUPI_NAI)


def calculated_by(services: list[int]) -> str | None:
    """Who computes the SUCI for a card with these EF.UST services: "usim", "me" or None
    (no privacy: the UE sends the IMSI-based SUCI with the null-scheme)."""
    if SERVICE_SUCI_PRIVACY not in services:
        return None
    return "usim" if SERVICE_SUCI_BY_USIM in services else "me"


class _Loci(EF):
    """§4.4.11.2 coding: 5G-GUTI (13 bytes, TS 24.501 §9.11.3.4 from octet 2), last visited
    TAI (PLMN + 3-byte TAC), 5GS update status (0 updated, 1 not updated, 2 roaming not
    allowed)."""

    size = 20
    examples = (
        ("FF" * 13 + "42F618000000" + "01",
         {"guti": None, "tai": {"plmn": {"mcc": "246", "mnc": "81"}, "tac": 0},
          "update_status": 1}),
        ("000BF200F110CAFE01C0FFEE42" + "00F110000102" + "00",
         {"guti": "000BF200F110CAFE01C0FFEE42",
          "tai": {"plmn": {"mcc": "001", "mnc": "01"}, "tac": 0x102}, "update_status": 0}),
    )

    @classmethod
    def decode(cls, data: bytes) -> dict[str, Any]:
        guti = data[0:13]
        plmn = decode_plmn(data[13:16])
        return {"guti": None if guti == b"\xff" * 13 else guti.hex().upper(),
                "tai": None if plmn is None else {"plmn": plmn,
                                                  "tac": int.from_bytes(data[16:19], "big")},
                "update_status": data[19] & 0x07}

    @classmethod
    def encode(cls, value: dict[str, Any], size: int | None = None) -> bytes:
        guti = bytes.fromhex(value["guti"]) if value.get("guti") else b"\xff" * 13
        if len(guti) != 13:
            raise EncodeError("a 5G-GUTI is 13 bytes")
        tai = value.get("tai")
        tai_bytes = (plmn_from(tai["plmn"]) + int(tai["tac"]).to_bytes(3, "big") if tai
                     else b"\xff" * 6)
        return pad(guti + tai_bytes + bytes((value.get("update_status", 1),)), size, cls.name)


class EF_5GS3GPPLOCI(_Loci):
    """§4.4.11.2 EF.5GS3GPPLOCI: 5GS location information for 3GPP access."""

    fid = 0x4F01
    sfi: ClassVar[int | None] = 0x01
    name = "EF.5GS3GPPLOCI"
    df = DF_5GS


class EF_5GSN3GPPLOCI(_Loci):
    """§4.4.11.3 EF.5GSN3GPPLOCI: 5GS location information for non-3GPP access (as §4.4.11.2)."""

    fid = 0x4F02
    sfi: ClassVar[int | None] = 0x02
    name = "EF.5GSN3GPPLOCI"
    df = DF_5GS


class _Nsc(EF):
    """§4.4.11.4 coding: one 'A0' 5GS NAS security context TLV holding ngKSI ('80'), K_AMF
    ('81'), uplink and downlink NAS COUNT ('82', '83') and the algorithms ('84'). Decoded to
    the ngKSI and whether a K_AMF is held (7 = no key available, TS 24.501 §9.11.3.32)."""

    structure = "linear_fixed"
    size = 64
    examples = (
        ("FF" * 64, {"ngksi": None, "k_amf": False}),
        ("A00380010" + "7" + "FF" * 59, {"ngksi": 7, "k_amf": False}),
    )

    @classmethod
    def decode(cls, data: bytes) -> dict[str, Any]:
        if not data or data[0] != 0xA0:
            return {"ngksi": None, "k_amf": False}
        inner = dict(parse_tlv(data[2 : 2 + data[1]]))
        ngksi = inner.get(0x80)
        return {"ngksi": ngksi[0] if ngksi else None, "k_amf": 0x81 in inner}

    @classmethod
    def encode(cls, value: dict[str, Any], size: int | None = None) -> bytes:
        if value.get("k_amf"):
            raise EncodeError(f"{cls.name}: a K_AMF is the UE's, never written by simsmith")
        if value.get("ngksi") is None:
            return pad(b"", size or cls.size, cls.name)
        return pad(tlv(0xA0, tlv(0x80, bytes((value["ngksi"],)))), size or cls.size, cls.name)


class EF_5GS3GPPNSC(_Nsc):
    """§4.4.11.4 EF.5GS3GPPNSC: 5GS 3GPP access NAS security context."""

    fid = 0x4F03
    sfi: ClassVar[int | None] = 0x03
    name = "EF.5GS3GPPNSC"
    df = DF_5GS


class EF_5GSN3GPPNSC(_Nsc):
    """§4.4.11.5 EF.5GSN3GPPNSC: 5GS non-3GPP access NAS security context (as §4.4.11.4)."""

    fid = 0x4F04
    sfi: ClassVar[int | None] = 0x04
    name = "EF.5GSN3GPPNSC"
    df = DF_5GS


class EF_5GAUTHKEYS(EF):
    """§4.4.11.6 EF.5GAUTHKEYS: K_AUSF ('80') and K_SEAF ('81') TLVs. Decoded to which of them
    the card holds, never to the keys."""

    fid = 0x4F05
    sfi: ClassVar[int | None] = 0x05
    name = "EF.5GAUTHKEYS"
    df = DF_5GS
    size = 110
    examples = (("FF" * 110, {"k_ausf": False, "k_seaf": False}),)

    @classmethod
    def decode(cls, data: bytes) -> dict[str, Any]:
        try:
            tags = {t for t, _ in parse_tlv(data)}
        except ValueError:  # a half-written file holds no usable key either
            tags = set()
        return {"k_ausf": 0x80 in tags, "k_seaf": 0x81 in tags}

    @classmethod
    def encode(cls, value: dict[str, Any], size: int | None = None) -> bytes:
        if value.get("k_ausf") or value.get("k_seaf"):
            raise EncodeError(f"{cls.name}: K_AUSF/K_SEAF are the UE's, never written here")
        return pad(b"", size or cls.size, cls.name)


class EF_UAC_AIC(EF):
    """§4.4.11.7 EF.UAC_AIC: UAC access identities configuration, 4 bytes; bit n-1 (from the
    last byte's b1) set = access identity n (1 MPS, 2 MCS, TS 24.501 §4.5.2)."""

    fid = 0x4F06
    sfi: ClassVar[int | None] = 0x06
    name = "EF.UAC_AIC"
    df = DF_5GS
    size = 4
    examples = (("00000000", []), ("00000003", [1, 2]), ("00000002", [2]))

    @classmethod
    def decode(cls, data: bytes) -> list[int]:
        value = int.from_bytes(data[:4], "big")
        return [n + 1 for n in range(32) if value >> n & 1]

    @classmethod
    def encode(cls, value: list[int], size: int | None = None) -> bytes:
        bits = 0
        for n in value:
            if not 1 <= n <= 32:
                raise EncodeError(f"access identity {n} outside 1..32")
            bits |= 1 << (n - 1)
        return pad(bits.to_bytes(4, "big"), size, cls.name)


# The Annex C.4 Profile B and A test keys, as TS 31.121 §4.9.4's test file lists them.
_C4_B = "0272DA71976234CE833A6907425867B82E074D44EF907DFB4B3E21C1C2256EBCD1"
_C4_A = "5A8D38864820197C3394B92613B20B91633CBD897119273BF8E4A6F4EEC0A650"


class EF_SUCI_Calc_Info(EF):
    """§4.4.11.8 EF.SUCI_Calc_Info: 'A0' protection scheme identifier list (scheme, key index
    per entry, by priority), 'A1' home network public key list ('80' key id, '81' key); FF
    after. Decoded to the priority list: {"scheme", "key_id", "public_key"} per entry (key
    fields None for the null-scheme)."""

    fid = 0x4F07
    sfi: ClassVar[int | None] = 0x07
    name = "EF.SUCI_Calc_Info"
    df = DF_5GS
    size = 200
    examples = (
        ("A0020000" + "FF" * 4, [{"scheme": 0, "key_id": None, "public_key": None}]),
        # TS 31.121 §4.9.4 (keys of TS 33.501 Annex C.4): B with key 27 first, A (30), null.
        ("A006020101020000" + "A14B" + "80011B" + "8121" + _C4_B + "80011E" + "8120" + _C4_A
         + "FF" * 3,
         [{"scheme": 2, "key_id": 27, "public_key": _C4_B},
          {"scheme": 1, "key_id": 30, "public_key": _C4_A},
          {"scheme": 0, "key_id": None, "public_key": None}]),
        ("FF" * 8, []),
    )

    @classmethod
    def decode(cls, data: bytes) -> list[dict[str, Any]]:
        try:
            entries = parse_suci_calc_info(data)
        except InvalidSuci as e:
            raise ValueError(f"{cls.name}: {e}") from None
        return [{"scheme": scheme, "key_id": None if key is None else key.key_id,
                 "public_key": None if key is None else key.public.hex().upper()}
                for scheme, key in entries]

    @classmethod
    def encode(cls, value: list[dict[str, Any]], size: int | None = None) -> bytes:
        if not value:
            return pad(b"", size or cls.size, cls.name)
        keys = [HomeNetworkPublicKey(int(e["key_id"]), ProtectionScheme(int(e["scheme"])),
                                     bytes.fromhex(e["public_key"]))
                for e in value if int(e["scheme"]) != 0]
        null = [i for i, e in enumerate(value) if int(e["scheme"]) == 0]
        if null and null != [len(value) - 1]:
            raise EncodeError(f"{cls.name}: the null-scheme can only come last")
        try:
            raw = suci_calc_info(keys, null_scheme=bool(null))
        except InvalidSuci as e:
            raise EncodeError(f"{cls.name}: {e}") from None
        return pad(raw, size, cls.name)


class EF_OPL5G(EF):
    """§4.4.11.9 EF.OPL5G: records of a TAI range (PLMN, lowest and highest TAC, 3 bytes
    each) and the EF.PNN record identifier naming the network there (10 bytes)."""

    fid = 0x4F08
    sfi: ClassVar[int | None] = 0x08
    name = "EF.OPL5G"
    df = DF_5GS
    structure = "linear_fixed"
    size = 10
    record_count = 10
    examples = (
        ("FF" * 10, None),
        ("00F110000000FFFFFE01", {"plmn": {"mcc": "001", "mnc": "01"}, "tac_low": 0,
                                  "tac_high": 0xFFFFFE, "pnn_record": 1}),
    )

    @classmethod
    def decode(cls, data: bytes) -> dict[str, Any] | None:
        plmn = decode_plmn(data[0:3])
        if plmn is None:
            return None
        return {"plmn": plmn, "tac_low": int.from_bytes(data[3:6], "big"),
                "tac_high": int.from_bytes(data[6:9], "big"), "pnn_record": data[9]}

    @classmethod
    def encode(cls, value: dict[str, Any] | None, size: int | None = None) -> bytes:
        if value is None:
            return b"\xff" * (size or cls.size)
        out = (plmn_from(value["plmn"]) + int(value["tac_low"]).to_bytes(3, "big")
               + int(value["tac_high"]).to_bytes(3, "big") + bytes((value["pnn_record"],)))
        return pad(out, size, cls.name)


class EF_SUPI_NAI(EF):
    """§4.4.11.10 EF.SUPI_NAI: the SUPI as a network specific identifier ('80'), global line
    identifier ('81') or global cable identifier ('82') NAI, UTF-8. Decoded to {kind: NAI}."""

    fid = 0x4F09
    sfi: ClassVar[int | None] = 0x09
    name = "EF.SUPI_NAI"
    df = DF_5GS
    size = 200
    _KINDS: ClassVar[dict[int, str]] = {0x80: "nsi", 0x81: "gli", 0x82: "gci"}
    examples = (
        ("FF" * 8, {}),
        ("8010" + b"user@example.org".hex().upper() + "FF" * 3, {"nsi": "user@example.org"}),
    )

    @classmethod
    def decode(cls, data: bytes) -> dict[str, str]:
        out: dict[str, str] = {}
        pos = 0
        while pos + 2 <= len(data) and data[pos] in cls._KINDS:
            n = data[pos + 1]
            out[cls._KINDS[data[pos]]] = data[pos + 2 : pos + 2 + n].decode("utf-8", "replace")
            pos += 2 + n
        return out

    @classmethod
    def encode(cls, value: dict[str, str], size: int | None = None) -> bytes:
        tags = {v: k for k, v in cls._KINDS.items()}
        body = b"".join(tlv(tags[kind], nai.encode("utf-8")) for kind, nai in value.items())
        return pad(body, size, cls.name)


class EF_Routing_Indicator(EF):
    """§4.4.11.11 EF.Routing_Indicator: bytes 1-2 the routing indicator (1-4 digits, BCD,
    digit 1 in byte 1's low nibble, F-padded; "0" when none is provisioned), bytes 3-4 RFU."""

    fid = 0x4F0A
    sfi: ClassVar[int | None] = 0x0A
    name = "EF.Routing_Indicator"
    df = DF_5GS
    size = 4
    examples = (("F0FFFFFF", "0"), ("71FFFFFF", "17"), ("2143FFFF", "1234"),
                ("FFFFFFFF", None))

    @classmethod
    def decode(cls, data: bytes) -> str | None:
        digits = decode_swapped_bcd(data[:2])
        return digits or None

    @classmethod
    def encode(cls, value: str | None, size: int | None = None) -> bytes:
        if value is None:
            return pad(b"", size or cls.size, cls.name)
        try:
            return pad(routing_indicator_bcd(value), size, cls.name)
        except InvalidSuci as e:
            raise EncodeError(f"{cls.name}: {e}") from None


class EF_SUCI_Calc_Info_USIM(EF_SUCI_Calc_Info):
    """§4.4.11.8 coding, in DF.SAIP (TCA eUICC Profile Package §9.5.12 EF.SUCI_Calc_Info_USIM):
    the keys and priority list the USIM itself conceals with (service n°125)."""

    fid = 0x4F01
    sfi: ClassVar[int | None] = None
    name = "EF.SUCI_Calc_Info_USIM"
    df = DF_SAIP
