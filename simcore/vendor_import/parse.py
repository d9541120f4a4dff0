"""Streaming readers for SIM vendor output files (".out") and card-key CSVs.

The ".out" layout (design §4; the classic personalisation-bureau output file):

    *                                   `*` lines: section markers and comments
    * HEADER DESCRIPTION
    Customer     : ACME Mobile          `Key: value` header pairs (Quantity, Type, Profile,
    Quantity     : 1000                  Batch, Transport_key — a key name, optionally
    Batch        : B0001                 followed by `KCV=XXXXXX` or `KCV: XXXXXX`)
    Transport_key: VENDOR1 KCV=1A2B3C
    * INPUT VARIABLES
    Var_In_List:                        input variables: start values, e.g. ICCID, IMSI
    ICCID: 8949000000000000001
    IMSI : 001010000000001
    * OUTPUT VARIABLES
    var_out: ICCID/IMSI/KI/OPC/PIN1     the column names, slash-separated
    8949000000000000001 001010000000001 0123… 4567… 1234    one whitespace-separated row per card

CSV: a header row of column names (pySim's card-key CSV names are built in), then one row per
card; `,` or `;` separated; fields may be quoted but may not span lines.

Both readers stream line by line (a million-row file is never held in memory), tolerate a UTF-8
BOM, CRLF line ends and trailing blank lines, hash the bytes they read (SHA-256) and report a
file cut off mid-line as truncated. Header problems become `Issue`s; rows are checked by
simcore.vendor_import.validate.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from simcore.vendor_import.columns import ColumnMap
from simcore.vendor_import.report import Issue, Report

FORMATS = ("out", "csv")
_PAIR = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_ .-]*?)\s*:\s*(.*?)\s*$")
_VAR_OUT = re.compile(r"^\s*var_out\s*:\s*(.*?)\s*$", re.IGNORECASE)
_VAR_IN = re.compile(r"^\s*var_in_list\s*:?\s*(.*?)\s*$", re.IGNORECASE)
_KCV = re.compile(r"\bKCV\s*[=:]?\s*([0-9A-Fa-f]{6})\b", re.IGNORECASE)
_TOKEN = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class Column:
    source: str  # as the file names it
    name: str  # canonical (columns.SPECS)
    index: int


@dataclass
class Header:
    """What precedes the rows: header pairs, input variables, the columns."""

    path: str
    fmt: str
    fields: dict[str, str] = field(default_factory=dict)  # lower-case key -> value
    lines: dict[str, int] = field(default_factory=dict)  # lower-case key -> line
    var_in: dict[str, str] = field(default_factory=dict)  # canonical column -> value
    var_in_lines: dict[str, int] = field(default_factory=dict)
    columns: list[Column] = field(default_factory=list)
    columns_line: int = 0
    width: int = 0  # fields per row, unknown columns included

    def get(self, key: str) -> str | None:
        return self.fields.get(key.lower())

    @property
    def quantity(self) -> str | None:
        return self.get("quantity")

    @property
    def batch(self) -> str | None:
        return self.get("batch")

    @property
    def transport_key(self) -> str | None:
        """The transport key's name as the file states it (without its KCV)."""
        v = self.get("transport_key")
        if not v:
            return None
        name = _KCV.sub("", v).strip(" ,;()")
        return name.split()[0] if name else None

    @property
    def transport_kcv(self) -> str | None:
        v = self.get("transport_key")
        m = _KCV.search(v) if v else None
        return m.group(1).upper() if m else None


@dataclass(slots=True)
class RawRow:
    line: int
    text: str
    fields: list[str]
    ended: bool = True  # False: the file's last line, without a newline

    def column_of(self, index: int, fmt: str) -> int:
        """1-based character column where field `index` starts (computed only for errors)."""
        if fmt == "out":
            for i, m in enumerate(_TOKEN.finditer(self.text)):
                if i == index:
                    return m.start() + 1
            return len(self.text) + 1
        pos = 0
        for f in self.fields[:index]:
            pos += len(f) + 1
        return min(pos, len(self.text)) + 1


class VendorFile:
    """An open vendor file: `header` read at once, `rows()` streamed, `sha256` at the end."""

    def __init__(self, path: Path, fmt: str, columns: ColumnMap, report: Report) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}")
        self.path = Path(path)
        self.fmt = fmt
        self.map = columns
        self.report = report
        self.header = Header(report.path, fmt)
        self._f: BinaryIO = open(self.path, "rb")  # noqa: SIM115 (closed by close())
        self._hash = hashlib.sha256()
        self._lineno = 0
        self._pending: tuple[int, str] | None = None
        self.truncated = False
        self.delimiter = ","
        self._read_header()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> VendorFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def _issue(self, line: int, column: int, fld: str, rule: str, message: str,
               shown: str | None = None) -> None:
        self.report.add(Issue(self.report.path, line, column, fld, rule, message, shown))

    def _lines(self) -> Iterator[tuple[int, str, bool]]:
        """(line number, text without its line end, whether it ended with a newline)."""
        update = self._hash.update
        for raw in self._f:
            update(raw)
            self._lineno += 1
            if self._lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            ended = raw.endswith(b"\n")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                self._issue(self._lineno, e.start + 1, "file", "encoding", "not UTF-8 text")
                text = raw.decode("utf-8", "replace")
            yield self._lineno, text.rstrip("\r\n"), ended

    # --- header ------------------------------------------------------------------------------

    def _read_header(self) -> None:
        self._it = self._lines()
        if self.fmt == "csv":
            self._read_csv_header()
        else:
            self._read_out_header()

    def _set_columns(self, line: int, names: list[str], starts: list[int]) -> None:
        self.header.columns_line = line
        self.header.width = len(names)
        seen: dict[str, int] = {}
        for i, (name, start) in enumerate(zip(names, starts, strict=True)):
            canonical = self.map.canonical(name)
            if not name.strip():
                self._issue(line, start, "columns", "columns.empty", f"column {i + 1} has no name")
            elif canonical is None:
                self._issue(line, start, "columns", "columns.unknown",
                            f"unknown column {name.strip()!r} (add an alias in a column map file)")
            elif canonical in seen:
                self._issue(line, start, "columns", "columns.duplicate",
                            f"{name.strip()!r} is column {canonical} again")
            else:
                seen[canonical] = i
                self.header.columns.append(Column(name.strip(), canonical, i))
        for required in ("ICCID", "IMSI"):
            if required not in seen:
                self._issue(line, 1, "columns", "columns.required", f"no {required} column")
        if not any(k in seen for k in ("KI", "EKI")):
            self._issue(line, 1, "columns", "columns.required", "no KI or EKI column")

    def _read_out_header(self) -> None:
        var_in = False
        for line, text, _ in self._it:
            s = text.strip()
            if not s:
                continue
            if s.startswith("*"):
                var_in = False
                continue
            m = _VAR_OUT.match(text)
            if m:
                names = m.group(1).split("/")
                base = text.index(m.group(1)) if m.group(1) else len(text)
                starts, pos = [], base
                for n in names:
                    starts.append(pos + 1)
                    pos += len(n) + 1
                self._set_columns(line, names, starts)
                return
            m = _VAR_IN.match(text)
            if m:
                var_in = True
                if not m.group(1):
                    continue
                text = m.group(1)
            m = _PAIR.match(text)
            if m is None:
                self._issue(line, 1, "header", "header.syntax",
                            "expected `Key: value`, a `*` line or `var_out:`")
                continue
            key, value = m.group(1).strip(), m.group(2)
            if var_in:
                canonical = self.map.canonical(key) or key.upper()
                self.header.var_in[canonical] = value
                self.header.var_in_lines[canonical] = line
            else:
                self.header.fields[key.lower()] = value
                self.header.lines[key.lower()] = line
        self._issue(self._lineno, 0, "header", "header.var_out",
                    "the file ends before its `var_out:` line (truncated, or not an .out file)")
        self.truncated = True

    def _read_csv_header(self) -> None:
        for line, text, _ in self._it:
            if not text.strip():
                continue
            self.delimiter = ";" if text.count(";") > text.count(",") else ","
            names = self._split(text)
            starts, pos = [], 0
            for n in names:
                starts.append(pos + 1)
                pos += len(n) + 1
            self._set_columns(line, names, starts)
            return
        self._issue(self._lineno, 0, "header", "header.columns", "the file is empty")

    def _split(self, text: str) -> list[str]:
        if '"' not in text:
            return [f.strip() for f in text.split(self.delimiter)]
        return [f.strip() for f in next(csv.reader([text], delimiter=self.delimiter))]

    # --- rows --------------------------------------------------------------------------------

    def rows(self) -> Iterator[RawRow]:
        """Every data row. A last line without its newline and with too few fields marks the
        file truncated (the validator reports it as such)."""
        width = self.header.width
        split = str.split if self.fmt == "out" else self._split
        for line, text, ended in self._it:
            if not text.strip():
                continue
            if self.fmt == "out" and text.lstrip().startswith("*"):
                continue
            fields = split(text)
            if not ended and len(fields) < width:
                self.truncated = True
            yield RawRow(line, text, fields, ended)
        self._f.close()
