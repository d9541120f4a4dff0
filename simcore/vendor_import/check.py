"""Proving a transport key before a batch lands: the KCV rule and the vendor's sample vector.

A wrong transport key decrypts every EKI/EOPC into well-formed garbage: nothing in the rows can
tell. Two things can:

- a key check value (KCV) of the transport key — the file's `Transport_key: NAME KCV=XXXXXX`, or
  `--kcv XXXXXX` from the key ceremony's papers — compared with the HSM's key before any row is
  read (`service.check_transport_key`). When neither is given the import is refused unless the
  caller says `--no-kcv-check` (`KcvRequired`);
- a sample authentication vector the vendor computed on one card (3GPP TS 35.206 Milenage:
  RAND, SQN, AMF in; RES, and optionally AUTN, CK, IK out). `CheckVector` is computed inside the
  HSM from that card's unwrapped Ki/OPc and compared (constant time) before the import commits.

A vector is written `iccid=…,rand=…,sqn=…,amf=…,res=…[,autn=…][,ck=…][,ik=…]` (hex; SQN as 12
hex digits, AMF 4; RES 4 to 8 bytes, as the vendor printed it).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from simcore.errors import InvalidInput, SimsmithError

_KCV = re.compile(r"^[0-9A-Fa-f]{6}$")
_SIZES = {"rand": (16,), "sqn": (6,), "amf": (2,), "res": (4, 5, 6, 7, 8), "autn": (16,),
          "ck": (16,), "ik": (16,)}


class TransportKeyError(SimsmithError):
    """The transport key is missing, of another purpose, or does not match the file's KCV."""


class KcvRequired(InvalidInput):
    """Keys are encrypted under a transport key, but no KCV says which key: refused unless the
    caller explicitly skips the check."""


class VectorMismatch(TransportKeyError):
    """The vendor's sample vector does not match the card's keys as unwrapped: a wrong
    transport key (or scheme), or a wrong vector."""


def parse_kcv(value: str) -> str:
    """A KCV as given on the command line or the API: 6 hex digits, upper-cased."""
    v = value.strip()
    if not _KCV.match(v):
        raise InvalidInput("kcv", "not a key check value", value=v[:32],
                           expected="6 hex digits (the first 3 bytes of the KCV)")
    return v.upper()


@dataclass(frozen=True)
class CheckVector:
    iccid: str
    rand: bytes
    sqn: int
    amf: bytes
    res: bytes
    autn: bytes | None = None
    ck: bytes | None = None
    ik: bytes | None = None

    def __repr__(self) -> str:
        return f"CheckVector(iccid={self.iccid})"

    @classmethod
    def parse(cls, text: str) -> CheckVector:
        """`iccid=…,rand=…,sqn=…,amf=…,res=…[,autn=…][,ck=…][,ik=…]`."""
        values: dict[str, str] = {}
        pos = 1
        for part in text.split(","):
            name, eq, value = part.partition("=")
            name = name.strip().lower()
            if not eq or name not in {"iccid", *_SIZES}:
                raise InvalidInput("check_vector", f"unknown or malformed item {part[:40]!r}",
                                   position=f"character {pos}", expected="iccid=, rand=, "
                                   "sqn=, amf=, res= and optionally autn=, ck=, ik=")
            if name in values:
                raise InvalidInput("check_vector", f"{name} given twice",
                                   position=f"character {pos}")
            values[name] = value.strip()
            pos += len(part) + 1
        missing = [n for n in ("iccid", "rand", "sqn", "amf", "res") if n not in values]
        if missing:
            raise InvalidInput("check_vector", f"missing {', '.join(missing)}",
                               expected="iccid=, rand=, sqn=, amf=, res=")
        raw: dict[str, bytes] = {}
        for name, sizes in _SIZES.items():
            if name not in values:
                continue
            try:
                b = bytes.fromhex(values[name])
            except ValueError:
                raise InvalidInput("check_vector", f"{name} is not hex",
                                   value=values[name][:40]) from None
            if len(b) not in sizes:
                raise InvalidInput("check_vector", f"{name} has {len(b)} bytes",
                                   expected=" or ".join(f"{2 * s} hex digits" for s in sizes))
            raw[name] = b
        iccid = values["iccid"].rstrip("Ff")
        if not iccid.isdigit() or len(iccid) not in (19, 20):
            raise InvalidInput("check_vector", "iccid is not 19 or 20 digits",
                               value=values["iccid"][:40])
        return cls(iccid, raw["rand"], int.from_bytes(raw["sqn"], "big"), raw["amf"],
                   raw["res"], raw.get("autn"), raw.get("ck"), raw.get("ik"))

    def verify(self, res: bytes, autn: bytes, ck: bytes, ik: bytes) -> None:
        """Compare what the HSM computed with the vendor's values; VectorMismatch names the
        first value that differs (never the values)."""
        for name, want, got in (("RES", self.res, res[: len(self.res)]), ("AUTN", self.autn, autn),
                                ("CK", self.ck, ck), ("IK", self.ik, ik)):
            if want is not None and not hmac.compare_digest(want, got):
                raise VectorMismatch(
                    f"check vector for ICCID {self.iccid}: {name} computed from the unwrapped "
                    "keys differs from the vendor's: wrong transport key or scheme (or a wrong "
                    "vector); nothing imported")
