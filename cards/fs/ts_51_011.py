"""DF.GSM and DF.TELECOM files of 3GPP TS 51.011 (V4.15) §10.3 and §10.5.

Most DF.GSM files share their coding with the ADF.USIM files (TS 31.102 refers back to 51.011);
those classes reuse the USIM codecs and examples and only change location and clause.
"""

from __future__ import annotations

from typing import Any, ClassVar

from cards.fs import ts_31_102 as usim
from cards.fs.base import EF, EncodeError, pad
from cards.fs.plmn import decode_plmn, plmn_from

GSM = "DF.GSM"
TELECOM = "DF.TELECOM"


class EF_IMSI(usim.EF_IMSI):
    """§10.3.2 EF.IMSI (DF.GSM)."""

    fid = 0x6F07
    sfi: ClassVar[int | None] = None
    df = GSM


class EF_AD(usim.EF_AD):
    """§10.3.18 EF.AD (DF.GSM): MS operation mode, additional info, length of MNC."""

    fid = 0x6FAD
    sfi: ClassVar[int | None] = None
    df = GSM


class EF_SPN(usim.EF_SPN):
    """§10.3.11 EF.SPN (DF.GSM)."""

    fid = 0x6F46
    df = GSM


class EF_ACC(usim.EF_ACC):
    """§10.3.15 EF.ACC (DF.GSM)."""

    fid = 0x6F78
    sfi: ClassVar[int | None] = None
    df = GSM


class EF_HPPLMN(usim.EF_HPPLMN):
    """§10.3.6 EF.HPPLMN (DF.GSM): HPLMN search period, units of 6 minutes."""

    fid = 0x6F31
    sfi: ClassVar[int | None] = None
    df = GSM


class EF_PLMNwAcT(usim.EF_PLMNwAcT):
    """§10.3.35 EF.PLMNwAcT (DF.GSM)."""

    fid = 0x6F60
    sfi: ClassVar[int | None] = None
    df = GSM


class EF_OPLMNwAcT(usim.EF_OPLMNwAcT):
    """§10.3.36 EF.OPLMNwAcT (DF.GSM)."""

    fid = 0x6F61
    sfi: ClassVar[int | None] = None
    df = GSM


class EF_HPLMNwAcT(usim.EF_HPLMNwAcT):
    """§10.3.37 EF.HPLMNwAcT (DF.GSM)."""

    fid = 0x6F62
    sfi: ClassVar[int | None] = None
    df = GSM


class EF_FPLMN(usim.EF_FPLMN):
    """§10.3.16 EF.FPLMN (DF.GSM)."""

    fid = 0x6F7B
    sfi: ClassVar[int | None] = None
    df = GSM


class EF_LOCI(usim.EF_LOCI):
    """§10.3.17 EF.LOCI (DF.GSM)."""

    fid = 0x6F7E
    sfi: ClassVar[int | None] = None
    df = GSM


class EF_PLMNsel(EF):
    """§10.3.4 EF.PLMNsel: PLMN selector, 3 bytes per PLMN, FFFFFF unused (24 bytes)."""

    fid = 0x6F30
    name = "EF.PLMNsel"
    df = GSM
    size = 24
    examples = (("62F210" + "FF" * 21, [{"mcc": "262", "mnc": "01"}]),)

    @classmethod
    def decode(cls, data: bytes) -> list[dict[str, str]]:
        return [p for i in range(0, len(data) - 2, 3) if (p := decode_plmn(data[i : i + 3]))]

    @classmethod
    def encode(cls, value: list[dict[str, Any]], size: int | None = None) -> bytes:
        return pad(b"".join(plmn_from(e) for e in value), size, cls.name)


class EF_SST(EF):
    """§10.3.7 EF.SST: SIM service table, two bits per service (allocated, activated)."""

    fid = 0x6F38
    name = "EF.SST"
    df = GSM
    size = 8
    examples = (
        ("FF3F", {"allocated": [1, 2, 3, 4, 5, 6, 7], "activated": [1, 2, 3, 4, 5, 6, 7]}),
        ("0D00", {"allocated": [1, 2], "activated": [2]}),
    )

    @classmethod
    def decode(cls, data: bytes) -> dict[str, list[int]]:
        alloc, act = [], []
        for i, byte in enumerate(data):
            for k in range(4):
                n = i * 4 + k + 1
                if byte >> (2 * k) & 1:
                    alloc.append(n)
                if byte >> (2 * k + 1) & 1:
                    act.append(n)
        return {"allocated": alloc, "activated": act}

    @classmethod
    def encode(cls, value: dict[str, list[int]], size: int | None = None) -> bytes:
        top = max([*value.get("allocated", []), *value.get("activated", []), 0])
        out = bytearray(size if size is not None else (top + 3) // 4)
        for key, shift in (("allocated", 0), ("activated", 1)):
            for n in value.get(key, []):
                if not 1 <= n <= 4 * len(out):
                    raise EncodeError(f"service {n} outside 1..{4 * len(out)}")
                out[(n - 1) // 4] |= 1 << (2 * ((n - 1) % 4) + shift)
        return bytes(out)


class EF_MSISDN(usim.EF_MSISDN):
    """§10.5.5 EF.MSISDN (DF.TELECOM)."""

    fid = 0x6F40
    df = TELECOM


class EF_SMSP(usim.EF_SMSP):
    """§10.5.6 EF.SMSP (DF.TELECOM)."""

    fid = 0x6F42
    df = TELECOM
