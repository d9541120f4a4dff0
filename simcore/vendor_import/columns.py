"""Column names of vendor output files and card-key CSVs, mapped to simsmith's canonical names.

Vendors name the same field differently (KI or EKI, OPC or EOPC, ADM or ADM1, KIC1 or KIC …);
pySim's card-key CSV (pySim-prog `--read-csv`, pySim `card_key_provider`) uses ICCID, IMSI, ACC,
PIN1, PUK1, PIN2, PUK2, KI, OPC, ADM1, KIC1, KID1, KIK1 … Each canonical column has a `Spec`:
what kind of value it holds, its length, and whether it is secret (then its value is never
shown: errors say only its length). Users add aliases in a small TOML file:

    [aliases]
    "K_ENC" = "EKI"
    "SERIAL" = "ICCID"
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from simcore.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Spec:
    """What a canonical column holds. `kind`: iccid, imsi, msisdn, hex (bytes given in `sizes`),
    code (decimal digits, `sizes` = allowed digit counts), code_or_hex (ADM: 8 digits or 16 hex
    digits), text. `encrypted`: a key under the vendor's transport key."""

    name: str
    kind: str
    sizes: tuple[int, ...] = ()
    secret: bool = False
    encrypted: bool = False


def _ota(prefix: str) -> dict[str, Spec]:
    return {f"{prefix}{i}": Spec(f"{prefix}{i}", "hex", (16, 24, 32), secret=True)
            for i in (1, 2, 3)}


SPECS: dict[str, Spec] = {
    "ICCID": Spec("ICCID", "iccid"),
    "IMSI": Spec("IMSI", "imsi"),
    "MSISDN": Spec("MSISDN", "msisdn"),
    "ACC": Spec("ACC", "hex", (2,)),
    "PIN1": Spec("PIN1", "code", (4, 5, 6, 7, 8), secret=True),
    "PUK1": Spec("PUK1", "code", (8,), secret=True),
    "PIN2": Spec("PIN2", "code", (4, 5, 6, 7, 8), secret=True),
    "PUK2": Spec("PUK2", "code", (8,), secret=True),
    "KI": Spec("KI", "hex", (16,), secret=True),
    "OPC": Spec("OPC", "hex", (16,), secret=True),
    "EKI": Spec("EKI", "hex", (16,), secret=True, encrypted=True),
    "EOPC": Spec("EOPC", "hex", (16,), secret=True, encrypted=True),
    **{f"ADM{i}": Spec(f"ADM{i}", "code_or_hex", (8,), secret=True) for i in (1, 2, 3, 4)},
    **_ota("KIC"), **_ota("KID"), **_ota("KIK"),
}

# Built-in aliases (upper-case) -> canonical name. Canonical names map to themselves.
BUILTIN_ALIASES: dict[str, str] = {
    **{name: name for name in SPECS},
    "ICC": "ICCID", "ICCID_F": "ICCID", "SER_NB": "ICCID",
    "K": "KI", "KI_CLEAR": "KI", "OP_C": "OPC",
    "KI_ENC": "EKI", "ENC_KI": "EKI", "KIENC": "EKI",
    "OPC_ENC": "EOPC", "ENC_OPC": "EOPC", "EOP_C": "EOPC",
    "ADM": "ADM1", "ADM_1": "ADM1",
    "PIN": "PIN1", "PUK": "PUK1", "CHV1": "PIN1", "UNBLOCK_CHV1": "PUK1",
    "CHV2": "PIN2", "UNBLOCK_CHV2": "PUK2",
    "KIC": "KIC1", "KID": "KID1", "KIK": "KIK1",
    "MSISDN1": "MSISDN",
}


@dataclass(frozen=True)
class ColumnMap:
    """Aliases -> canonical names: the built-in table plus the user's."""

    aliases: Mapping[str, str]

    @classmethod
    def builtin(cls) -> ColumnMap:
        return cls(dict(BUILTIN_ALIASES))

    @classmethod
    def load(cls, path: Path | None) -> ColumnMap:
        """The built-in table extended by the `[aliases]` of a TOML file (if given)."""
        table = dict(BUILTIN_ALIASES)
        if path is None:
            return cls(table)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise InvalidInput("column map", f"cannot read {path}: {e}") from None
        extra = data.get("aliases", {})
        if not isinstance(extra, dict):
            raise InvalidInput("column map", f"{path}: [aliases] must be a table")
        for alias, canonical in extra.items():
            if not isinstance(canonical, str) or canonical.upper() not in SPECS:
                raise InvalidInput("column map", f"{path}: alias {alias!r} names an unknown "
                                   f"column {canonical!r}", expected=", ".join(sorted(SPECS)))
            table[alias.upper()] = canonical.upper()
        return cls(table)

    def canonical(self, name: str) -> str | None:
        """The canonical column for a header name, or None when unknown."""
        return self.aliases.get(name.strip().upper())
