"""Row rules for vendor files (design §4): each broken rule is an `Issue` at file:line:column.

Rules: row count equals the header's Quantity (a file that ends early, or mid-line, is reported
as truncated); ICCID of 19/20 digits, industry prefix 89, Luhn check digit (ITU-T E.118; a
trailing `F` filler is stripped); IMSI (ITU-T E.212) of the batch's length and PLMN; consecutive
ICCIDs/IMSIs when the input variables give start values; no duplicate ICCID or IMSI inside the
file (duplicates against the store are checked by the import service, chunk by chunk); every key
the right number of hex digits; PIN/PUK/ADM codes of decimal digits (ETSI TS 102 221 §9.5.1: kept
as ASCII padded with 'FF' to 8 bytes); ACC of 4 hex digits (TS 31.102 §4.2.15).

Secret values never appear in issues: only their shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from simcore.errors import InvalidInput
from simcore.identifiers import Iccid, Imsi, Msisdn, luhn_check_digit
from simcore.vendor_import.columns import SPECS, Spec
from simcore.vendor_import.parse import OVERLONG, Header, RawRow
from simcore.vendor_import.report import Issue, Report, clip, mask
from simcore.vendor_import.secret import Secret

CODE_LENGTH = 8
# Luhn (ISO/IEC 7812-1 Annex B) with C-speed steps: digits to double mapped through a table.
_DOUBLED = bytes.maketrans(b"0123456789", bytes(48 + d for d in (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)))


def luhn_digit(body: str) -> int:
    """The Luhn check digit of a string of ASCII digits (same as identifiers.luhn_check_digit)."""
    b = body.encode("ascii")[::-1]
    total = sum(b[0::2].translate(_DOUBLED)) + sum(b[1::2]) - 48 * len(b)
    return (10 - total % 10) % 10


def _msisdn(card: CardRow, v: str, index: int) -> tuple[str, str] | None:
    try:
        Msisdn.parse(v)
    except InvalidInput as e:
        return "msisdn.format", e.reason
    return None

_HEX = frozenset("0123456789abcdefABCDEF")

# Credential names in the store (SimCredential.name) and their HSM key types, as simcore.keys
# names them: codes by their own name, OTA keys by GlobalPlatform key version and id.
_OTA_ID = {"KIC": (1, "KIc"), "KID": (2, "KID"), "KIK": (3, "KIK")}


def credential_of(column: str) -> tuple[str, str]:
    """(store name, HSM key type) of a credential column: PIN1 -> (PIN1, PIN), KIC1 ->
    (ota-kvn01-kid01, KIc)."""
    if column[:3] in _OTA_ID:
        kid, key_type = _OTA_ID[column[:3]]
        return f"ota-kvn{int(column[3:]):02d}-kid{kid:02d}", key_type
    return column, column.rstrip("0123456789")


# (line, ICCID, IMSI, Ki or EKI, OPc or EOPC, ACC, ((name, key type, value), …)); every key and
# code a `Secret`, so that printing or logging a card shows none of them.
Card = tuple[int, str, str, Secret, Secret | None, str | None,
             tuple[tuple[str, str, Secret], ...]]


@dataclass(slots=True, repr=False)
class CardRow:
    """One valid card. Key fields hold the bytes the file gave (EKI/EOPC encrypted under the
    transport key, or clear) as `Secret`s; they go to the HSM and nowhere else."""

    line: int
    iccid: str
    imsi: str
    ki: Secret
    opc: Secret | None = None
    acc: str | None = None
    credentials: list[tuple[str, str, Secret]] = field(default_factory=list)  # name, type, value

    def as_tuple(self) -> Card:
        """The compact form that travels between processes (pickles ~10x faster)."""
        return (self.line, self.iccid, self.imsi, self.ki, self.opc, self.acc,
                tuple(self.credentials))

    def __repr__(self) -> str:
        names = ",".join(c[0] for c in self.credentials)
        return f"CardRow(line={self.line}, iccid={self.iccid}, imsi={self.imsi}, keys=<{names}>)"


_NO_KEY = Secret(b"")


class Validator:
    """Checks rows one by one; `finish()` checks what needs the whole file."""

    def __init__(self, header: Header, report: Report, *, dedupe: bool = True) -> None:
        """`dedupe`: find ICCIDs/IMSIs repeated in the file here, in sets that grow with it.
        The import passes False and finds them against the store instead, chunk by chunk
        (simcore.vendor_import.service), so its memory does not grow with the file."""
        self.h = header
        self.report = report
        self.path = report.path
        self.count = 0
        self.valid = 0
        self._iccids: set[int] = set()
        self._imsis: set[int] = set()
        self.width = header.width
        self.checks = [(c.index, SPECS[c.name], self._checker(SPECS[c.name]))
                       for c in header.columns]
        self.quantity = self._quantity()
        self.iccid_start = self._start_iccid()
        self.imsi_start, self.plmn, self.imsi_len = self._start_imsi()
        self.mnc_length: int | None = None
        # With a start value the sequence rule already makes every value unique: no set.
        self._dedupe = dedupe
        self._dedupe_iccids = dedupe and self.iccid_start is None
        self._dedupe_imsis = dedupe and self.imsi_start is None

    @property
    def deduplicates(self) -> bool:
        """Whether repeated ICCIDs and IMSIs are caught here (with start values the sequence
        rule catches them)."""
        return self._dedupe or (self.iccid_start is not None and self.imsi_start is not None)

    # --- header-level checks -----------------------------------------------------------------

    def _issue(self, line: int, column: int, fld: str, rule: str, message: str,
               shown: str | None = None) -> None:
        self.report.add(Issue(self.path, line, column, fld, rule, message, shown))

    def _quantity(self) -> int | None:
        q = self.h.quantity
        line, column = self.h.at("quantity")
        if q is None:
            if self.h.fmt == "out":
                self._issue(self.h.columns_line, 1, "Quantity", "header.quantity",
                            "the header (before this `var_out:` line) has no Quantity")
            return None
        if not q.isdigit() or int(q) < 1:
            self._issue(line, column, "Quantity", "header.quantity",
                        "not a positive whole number", clip(q))
            return None
        return int(q)

    def _start_iccid(self) -> int | None:
        v = self.h.var_in.get("ICCID")
        if v is None:
            return None
        try:
            return int(Iccid.parse(v).body)
        except InvalidInput as e:
            self._issue(self.h.var_in_lines["ICCID"], self.h.var_in_cols["ICCID"],
                        "Var_In_List ICCID", "iccid.start", e.reason, clip(v))
            return None

    def _start_imsi(self) -> tuple[int | None, str | None, int | None]:
        v = self.h.var_in.get("IMSI")
        if v is None:
            return None, None, None
        try:
            imsi = Imsi.parse(v)
        except InvalidInput as e:
            self._issue(self.h.var_in_lines["IMSI"], self.h.var_in_cols["IMSI"],
                        "Var_In_List IMSI", "imsi.start", e.reason, clip(v))
            return None, None, None
        return int(imsi.digits), imsi.plmn, len(imsi.digits)

    # --- rows --------------------------------------------------------------------------------

    def row(self, raw: RawRow) -> CardRow | None:
        """The card of a row, or None (and issues) when it breaks a rule."""
        index = self.count
        self.count += 1
        fields = raw.fields
        if raw.text is OVERLONG:  # reported by the reader
            self.report.bad_rows += 1
            return None
        if len(fields) != self.width:
            if not raw.ended and len(fields) < self.width:
                self._issue(raw.line, len(raw.text) + 1, "file", "file.truncated",
                            f"the file ends inside this row ({len(fields)} of {self.width} "
                            "fields): truncated")
            elif len(fields) < self.width:
                self._issue(raw.line, len(raw.text) + 1, "row", "row.short",
                            f"{len(fields)} fields, expected {self.width}")
            else:
                self._issue(raw.line, raw.column_of(self.width, self.h.fmt, self.h.delimiter),
                            "row", "row.extra",
                            f"{len(fields)} fields, expected {self.width} (an extra column)")
            self.report.bad_rows += 1
            return None
        before = self.report.total
        card = CardRow(raw.line, "", "", _NO_KEY)
        for i, spec, checker in self.checks:
            value = fields[i]
            problem = checker(card, value, index)
            if problem is not None:
                rule, message = problem
                if not raw.ended:
                    rule, message = "file.truncated", f"{message} (the file ends here: truncated)"
                self._issue(raw.line, raw.column_of(i, self.h.fmt, self.h.delimiter), spec.name,
                            rule, message, mask(value, spec.secret))
        if self.report.total != before:
            self.report.bad_rows += 1
            return None
        self.valid += 1
        return card

    def _checker(self, spec: Spec) -> Callable[[CardRow, str, int], tuple[str, str] | None]:
        """The check (and store) function of one column, chosen once per file."""
        kind = spec.kind
        if kind == "iccid":
            return self._iccid
        if kind == "imsi":
            return self._imsi
        if kind == "msisdn":
            return _msisdn
        if kind in ("code", "code_or_hex"):
            return partial(self._code, spec)
        if kind != "hex":
            return lambda card, v, index: None
        lengths = frozenset(2 * n for n in spec.sizes)
        hexset = _HEX

        def check(card: CardRow, v: str, index: int) -> tuple[str, str] | None:
            if len(v) not in lengths or not hexset.issuperset(v):
                return self._hex_problem(spec, v)
            store(card, v)
            return None

        store: Callable[[CardRow, str], None]
        if spec.name in ("KI", "EKI"):
            def store(card: CardRow, v: str) -> None:
                card.ki = Secret(bytes.fromhex(v))
        elif spec.name in ("OPC", "EOPC"):
            def store(card: CardRow, v: str) -> None:
                card.opc = Secret(bytes.fromhex(v))
        elif spec.name == "ACC":
            def store(card: CardRow, v: str) -> None:
                card.acc = v.upper()
        else:
            name, key_type = credential_of(spec.name)

            def store(card: CardRow, v: str) -> None:
                card.credentials.append((name, key_type, Secret(bytes.fromhex(v))))
        return check

    @staticmethod
    def _code(spec: Spec, card: CardRow, v: str, index: int) -> tuple[str, str] | None:
        if v.isdigit() and v.isascii() and len(v) in (
                spec.sizes if spec.kind == "code" else (8,)):
            data = v.encode("ascii").ljust(CODE_LENGTH, b"\xff")
        elif spec.kind == "code_or_hex" and len(v) == 16 and _HEX.issuperset(v):
            data = bytes.fromhex(v)
        else:
            allowed = "/".join(map(str, spec.sizes))
            what = f"{allowed} decimal digits" + (" or 16 hex digits"
                                                  if spec.kind == "code_or_hex" else "")
            return "code.format", f"{len(v)} characters, expected {what}"
        name, key_type = credential_of(spec.name)
        card.credentials.append((name, key_type, Secret(data)))
        return None

    @staticmethod
    def _hex_problem(spec: Spec, v: str) -> tuple[str, str]:
        bad = next((i for i, c in enumerate(v) if c not in _HEX), None)
        if bad is not None:
            return "hex.digits", f"a non-hex character at position {bad + 1}"
        sizes = " or ".join(str(2 * s) for s in spec.sizes)
        return "hex.length", f"{len(v)} hex digits, expected {sizes}"

    def _iccid(self, card: CardRow, v: str, index: int) -> tuple[str, str] | None:
        if v[-1:] in ("F", "f"):
            v = v[:-1]
        if not v.isdigit() or not v.isascii():
            return "iccid.digits", "not all decimal digits"
        if len(v) not in (19, 20):
            return "iccid.length", f"{len(v)} digits, expected 19 or 20"
        if not v.startswith("89"):
            return "iccid.prefix", f"industry prefix {v[:2]}, expected 89 (E.118)"
        body = int(v[:-1])
        if self.iccid_start is not None and body != self.iccid_start + index:
            want = str(self.iccid_start + index).zfill(len(v) - 1)
            return "iccid.sequence", (f"not consecutive: row {index + 1} should be "
                                      f"{want}{luhn_check_digit(want)} (start + {index})")
        check = luhn_digit(v[:-1])
        if ord(v[-1]) - 48 != check:
            return "iccid.luhn", f"check digit {v[-1]} where {check} was expected (Luhn)"
        if self._dedupe_iccids:
            if body in self._iccids:
                return "iccid.duplicate", "appears earlier in this file"
            self._iccids.add(body)
        card.iccid = v
        return None

    def _imsi(self, card: CardRow, v: str, index: int) -> tuple[str, str] | None:
        if not v.isdigit() or not v.isascii():
            return "imsi.digits", "not all decimal digits"
        if self.plmn is None:
            try:
                imsi = Imsi.parse(v)
            except InvalidInput as e:
                return "imsi.format", e.reason
            self.plmn, self.imsi_len = imsi.plmn, len(v)
        if len(v) != self.imsi_len:
            return "imsi.length", f"{len(v)} digits, the batch's IMSIs have {self.imsi_len}"
        if not v.startswith(self.plmn):
            return "imsi.plmn", f"PLMN {v[:len(self.plmn)]}, the batch's is {self.plmn}"
        n = int(v)
        if self.imsi_start is not None and n != self.imsi_start + index:
            want = str(self.imsi_start + index).zfill(len(v))
            return "imsi.sequence", f"not consecutive: row {index + 1} should be {want}"
        if self._dedupe_imsis:
            if n in self._imsis:
                return "imsi.duplicate", "appears earlier in this file"
            self._imsis.add(n)
        card.imsi = v
        return None

    # --- the whole file ----------------------------------------------------------------------

    def finish(self, truncated: bool, eof: tuple[int, int]) -> None:
        """Whole-file rules; `eof`: (line, column) where the file ends."""
        if not self.h.columns:
            return  # the header is broken: already reported
        if self.count == 0:
            self._issue(*eof, "file", "file.empty", "no rows after the column names")
        q = self.quantity
        if q is None or self.count == q:
            return
        if self.count < q and not truncated:  # (a row cut short was reported as truncated)
            # Cut or at a row boundary alike: the rows Quantity announces are missing.
            self._issue(*eof, "file", "file.truncated",
                        f"the file ends after {self.count} of {q} rows (Quantity): truncated")
        elif self.count > q:
            self._issue(*self.h.at("quantity"), "Quantity", "quantity",
                        f"the file has {self.count} rows, Quantity says {q}")
