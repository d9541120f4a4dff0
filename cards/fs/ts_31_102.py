"""ADF.USIM files of 3GPP TS 31.102 (V17) §4.2. DF.GSM reuses these codecs (`ts_51_011`)."""

from __future__ import annotations

from typing import Any, ClassVar

from cards.fs.base import EF, EncodeError, pad
from cards.fs.codecs import decode_bitmap, decode_number, encode_bitmap, encode_number
from cards.fs.plmn import decode_act, decode_plmn, encode_act, plmn_from
from cards.fs.text import decode_alpha, encode_alpha
from simcore.identifiers import decode_swapped_bcd, encode_swapped_bcd

USIM = "ADF.USIM"


class EF_IMSI(EF):
    """§4.2.2 EF.IMSI: length, then parity nibble + digits in swapped BCD (9 bytes)."""

    fid = 0x6F07
    sfi: ClassVar[int | None] = 0x07
    name = "EF.IMSI"
    df = USIM
    size = 9
    examples = (
        ("080910101032547698", "001010123456789"),
        ("0811325476981032F4", "12345678901234"),
        ("FFFFFFFFFFFFFFFFFF", None),
    )

    @classmethod
    def decode(cls, data: bytes) -> str | None:
        n = data[0]
        if n == 0xFF or n == 0 or n > len(data) - 1:
            return None
        digits = decode_swapped_bcd(data[1 : 1 + n])
        return digits[1:]  # the first nibble is the parity/type indication

    @classmethod
    def encode(cls, value: str | None, size: int | None = None) -> bytes:
        if value is None:
            return pad(b"", size or cls.size, cls.name)
        if not (6 <= len(value) <= 15 and value.isdigit()):
            raise EncodeError(f"an IMSI has 6 to 15 digits, got {value!r}")
        parity = "9" if len(value) % 2 else "1"
        body = encode_swapped_bcd(parity + value)
        return pad(bytes((len(body),)) + body, size or cls.size, cls.name)


class EF_AD(EF):
    """§4.2.18 EF.AD: UE operation mode, additional information, length of MNC."""

    fid = 0x6FAD
    sfi: ClassVar[int | None] = 0x03
    name = "EF.AD"
    df = USIM
    size = 4
    examples = (
        ("00000002", {"ue_operation_mode": 0, "additional_info": 0, "mnc_length": 2}),
        ("80000103", {"ue_operation_mode": 128, "additional_info": 1, "mnc_length": 3}),
    )

    @classmethod
    def decode(cls, data: bytes) -> dict[str, Any]:
        return {"ue_operation_mode": data[0],
                "additional_info": int.from_bytes(data[1:3], "big"),
                "mnc_length": (data[3] & 0x0F) if len(data) > 3 else None}

    @classmethod
    def encode(cls, value: dict[str, Any], size: int | None = None) -> bytes:
        if value.get("mnc_length") not in (2, 3):
            raise EncodeError("mnc_length must be 2 or 3")
        out = bytes((value.get("ue_operation_mode", 0),)) + int(
            value.get("additional_info", 0)).to_bytes(2, "big") + bytes((value["mnc_length"],))
        return pad(out, size, cls.name)


class EF_SPN(EF):
    """§4.2.12 EF.SPN: display condition byte, then the name (TS 102 221 Annex A), 17 bytes."""

    fid = 0x6F46
    name = "EF.SPN"
    df = USIM
    size = 17
    examples = (
        ("01" + "73696D736D697468" + "FF" * 8, {"display_condition": 1, "name": "simsmith"}),
        ("00" + "80" + "01410042" + "FF" * 11, {"display_condition": 0, "name": "ŁB"}),
    )

    @classmethod
    def decode(cls, data: bytes) -> dict[str, Any]:
        return {"display_condition": data[0], "name": decode_alpha(data[1:])}

    @classmethod
    def encode(cls, value: dict[str, Any], size: int | None = None) -> bytes:
        body = encode_alpha(value["name"])
        if len(body) > 16:
            raise EncodeError(f"service provider name {value['name']!r} exceeds 16 bytes")
        return pad(bytes((value.get("display_condition", 0),)) + body, size, cls.name)


class EF_ACC(EF):
    """§4.2.15 EF.ACC: access control classes 0..15 as a 2-byte bitmap (class n = bit n)."""

    fid = 0x6F78
    sfi: ClassVar[int | None] = 0x06
    name = "EF.ACC"
    df = USIM
    size = 2
    examples = (("0001", [0]), ("0200", [9]), ("8400", [10, 15]),)

    @classmethod
    def decode(cls, data: bytes) -> list[int]:
        value = int.from_bytes(data[:2], "big")
        return [n for n in range(16) if value >> n & 1]

    @classmethod
    def encode(cls, value: list[int], size: int | None = None) -> bytes:
        bits = 0
        for n in value:
            if not 0 <= n <= 15:
                raise EncodeError(f"access class {n} outside 0..15")
            bits |= 1 << n
        return pad(bits.to_bytes(2, "big"), size, cls.name)


class EF_HPPLMN(EF):
    """§4.2.6 EF.HPPLMN: higher-priority PLMN search period, in units of 6 minutes."""

    fid = 0x6F31
    sfi: ClassVar[int | None] = 0x12
    name = "EF.HPPLMN"
    df = USIM
    size = 1
    examples = (("05", {"search_period_minutes": 30}), ("00", {"search_period_minutes": 0}),)

    @classmethod
    def decode(cls, data: bytes) -> dict[str, int]:
        return {"search_period_minutes": data[0] * 6}

    @classmethod
    def encode(cls, value: dict[str, int], size: int | None = None) -> bytes:
        minutes = value["search_period_minutes"]
        if minutes % 6 or not 0 <= minutes <= 255 * 6:
            raise EncodeError("search period must be a multiple of 6 minutes up to 1530")
        return pad(bytes((minutes // 6,)), size, cls.name)


class _PlmnWithAct(EF):
    """Shared 5-byte entries: PLMN (3) + access technology (2); unused entries FFFFFF0000."""

    size = 40
    examples: ClassVar[tuple[tuple[str, Any], ...]] = (
        ("00F110" + "C080" + "FFFFFF0000" * 7,
         [{"mcc": "001", "mnc": "01", "act": ["UTRAN", "E-UTRAN", "GSM"]}]),
        ("62F2104000" + "130062" + "0800", [{"mcc": "262", "mnc": "01", "act": ["E-UTRAN"]},
                                            {"mcc": "310", "mnc": "260", "act": ["NG-RAN"]}]),
    )

    @classmethod
    def decode(cls, data: bytes) -> list[dict[str, Any]]:
        out = []
        for i in range(0, len(data) - 4, 5):
            plmn = decode_plmn(data[i : i + 3])
            if plmn is not None:
                out.append({**plmn, "act": decode_act(data[i + 3 : i + 5])})
        return out

    @classmethod
    def encode(cls, value: list[dict[str, Any]], size: int | None = None) -> bytes:
        body = b"".join(plmn_from(e) + encode_act(list(e.get("act", []))) for e in value)
        if size is not None:
            if len(body) > size:
                raise EncodeError(f"{cls.name}: {len(value)} entries exceed {size // 5}")
            body += b"\xff\xff\xff\x00\x00" * ((size - len(body)) // 5)
        return pad(body, size, cls.name)


class EF_PLMNwAcT(_PlmnWithAct):
    """§4.2.5 EF.PLMNwAcT: user-controlled PLMN selector with access technology."""

    fid = 0x6F60
    sfi: ClassVar[int | None] = 0x0A
    name = "EF.PLMNwAcT"
    df = USIM


class EF_OPLMNwAcT(_PlmnWithAct):
    """§4.2.53 EF.OPLMNwAcT: operator-controlled PLMN selector with access technology."""

    fid = 0x6F61
    sfi: ClassVar[int | None] = 0x11
    name = "EF.OPLMNwAcT"
    df = USIM


class EF_HPLMNwAcT(_PlmnWithAct):
    """§4.2.54 EF.HPLMNwAcT: HPLMN selector with access technology."""

    fid = 0x6F62
    sfi: ClassVar[int | None] = 0x13
    name = "EF.HPLMNwAcT"
    df = USIM
    size = 5
    examples = (("00F110C080", [{"mcc": "001", "mnc": "01", "act": ["UTRAN", "E-UTRAN", "GSM"]}]),)


class EF_FPLMN(EF):
    """§4.2.16 EF.FPLMN: forbidden PLMNs, 3 bytes each, FFFFFF when unused (12 bytes)."""

    fid = 0x6F7B
    sfi: ClassVar[int | None] = 0x0D
    name = "EF.FPLMN"
    df = USIM
    size = 12
    examples = (("00F110" + "FF" * 9, [{"mcc": "001", "mnc": "01"}]), ("FF" * 12, []),)

    @classmethod
    def decode(cls, data: bytes) -> list[dict[str, str]]:
        return [p for i in range(0, len(data) - 2, 3) if (p := decode_plmn(data[i : i + 3]))]

    @classmethod
    def encode(cls, value: list[dict[str, Any]], size: int | None = None) -> bytes:
        return pad(b"".join(plmn_from(e) for e in value), size, cls.name)


class EF_LOCI(EF):
    """§4.2.17 EF.LOCI: TMSI, LAI (PLMN + LAC), RFU byte, location update status (11 bytes)."""

    fid = 0x6F7E
    sfi: ClassVar[int | None] = 0x0B
    name = "EF.LOCI"
    df = USIM
    size = 11
    examples = (
        ("FFFFFFFF00F1100000FF01",
         {"tmsi": "FFFFFFFF", "plmn": {"mcc": "001", "mnc": "01"}, "lac": 0, "update_status": 1}),
        ("1234ABCDFFFFFFFFFEFF00",
         {"tmsi": "1234ABCD", "plmn": None, "lac": 0xFFFE, "update_status": 0}),
    )

    @classmethod
    def decode(cls, data: bytes) -> dict[str, Any]:
        return {"tmsi": data[0:4].hex().upper(), "plmn": decode_plmn(data[4:7]),
                "lac": int.from_bytes(data[7:9], "big"), "update_status": data[10] & 0x07}

    @classmethod
    def encode(cls, value: dict[str, Any], size: int | None = None) -> bytes:
        plmn = plmn_from(value["plmn"]) if value.get("plmn") else b"\xff\xff\xff"
        out = (bytes.fromhex(value["tmsi"]) + plmn + int(value["lac"]).to_bytes(2, "big")
               + b"\xff" + bytes((value["update_status"],)))
        return pad(out, size, cls.name)


class EF_UST(EF):
    """§4.2.8 EF.UST: USIM service table, service n = bit (n-1)%8 of byte (n-1)//8."""

    fid = 0x6F38
    sfi: ClassVar[int | None] = 0x04
    name = "EF.UST"
    df = USIM
    size = 8
    examples = (("0A2E0000", [2, 4, 10, 11, 12, 14]), ("00" * 8, []),)

    @classmethod
    def decode(cls, data: bytes) -> list[int]:
        return decode_bitmap(data)

    @classmethod
    def encode(cls, value: list[int], size: int | None = None) -> bytes:
        return encode_bitmap(value, size)


class EF_EST(EF_UST):
    """§4.2.47 EF.EST: enabled services table (1 FDN, 2 BDN, 3 APN control list)."""

    fid = 0x6F56
    sfi: ClassVar[int | None] = 0x05
    name = "EF.EST"
    df = USIM
    size = 1
    examples = (("01", [1]), ("00", []),)


class EF_MSISDN(EF):
    """§4.2.26 EF.MSISDN: records of alpha identifier + §4.4.2.3 dialling number (14 bytes)."""

    fid = 0x6F40
    name = "EF.MSISDN"
    df = USIM
    structure = "linear_fixed"
    size = 34  # 20-byte alpha identifier: the record length of the sysmocom cards
    record_count = 6
    examples = (
        ("4F776E" + "FF" * 9 + "0791947106004034FFFFFFFFFFFF",
         {"alpha": "Own", "number": "+491760000443"}),
        ("FF" * 26, None),
    )

    @classmethod
    def decode(cls, data: bytes) -> dict[str, Any] | None:
        alpha, tail = data[:-14], data[-14:]
        number = decode_number(tail[:12])
        if number is None and not alpha.rstrip(b"\xff"):
            return None
        return {"alpha": decode_alpha(alpha), "number": number}

    @classmethod
    def encode(cls, value: dict[str, Any] | None, size: int | None = None) -> bytes:
        size = size or cls.size
        if value is None:
            return b"\xff" * size
        alpha = pad(encode_alpha(value.get("alpha") or ""), size - 14, "alpha identifier")
        number = (encode_number(value["number"]) if value.get("number") else b"\xff" * 12)
        return alpha + number + b"\xff\xff"


class EF_SMSP(EF):
    """§4.2.27 EF.SMSP: alpha identifier + parameter indicators, TP-DA, TS-SCA, PID, DCS, VP."""

    fid = 0x6F42
    name = "EF.SMSP"
    df = USIM
    structure = "linear_fixed"
    size = 52  # 24-byte alpha identifier: the record length of the sysmocom cards
    record_count = 2
    examples = (
        ("FF" * 12 + "FD" + "FF" * 12 + "0791947106004034FFFFFFFF" + "FFFFFF",
         {"alpha": "", "sc_address": "+491760000443", "pid": None, "dcs": None,
          "validity": None}),
        ("534D5343FFFFFFFFFFFFFFFF" + "E1" + "FF" * 12 + "04812143F5FFFFFFFFFFFFFF" + "0000A7",
         {"alpha": "SMSC", "sc_address": "12345", "pid": 0, "dcs": 0, "validity": 0xA7}),
    )

    @classmethod
    def decode(cls, data: bytes) -> dict[str, Any]:
        alpha, p = data[:-28], data[-28:]
        ind = p[0]

        def opt(bit: int, value: int) -> int | None:
            return None if ind >> bit & 1 else value

        return {"alpha": decode_alpha(alpha),
                "sc_address": None if ind & 0x02 else decode_number(p[13:25]),
                "pid": opt(2, p[25]), "dcs": opt(3, p[26]), "validity": opt(4, p[27])}

    @classmethod
    def encode(cls, value: dict[str, Any], size: int | None = None) -> bytes:
        size = size or cls.size
        ind = 0xE1  # b1: TP-DA absent (never written here); b6-b8 reserved = 1
        sca = b"\xff" * 12
        if value.get("sc_address"):
            sca = encode_number(value["sc_address"])
        else:
            ind |= 0x02
        tail = b""
        for bit, key in ((2, "pid"), (3, "dcs"), (4, "validity")):
            if value.get(key) is None:
                ind |= 1 << bit
                tail += b"\xff"
            else:
                tail += bytes((value[key],))
        alpha = pad(encode_alpha(value.get("alpha") or ""), size - 28, "alpha identifier")
        return alpha + bytes((ind,)) + b"\xff" * 12 + sca + tail
