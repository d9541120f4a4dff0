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
file cut off mid-line as truncated. A line longer than MAX_LINE bytes is reported and skipped
in bounded memory (it is never read whole). Header problems become `Issue`s at the exact
1-based line and character column of the offending field; rows are checked by
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
from simcore.vendor_import.report import Issue, Report, clip
from simcore.vendor_import.source import Source, source_of

FORMATS = ("out", "csv")
MAX_LINE = 8192  # bytes per line, line end included; a row of every column is under 1 KiB
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
    cols: dict[str, int] = field(default_factory=dict)  # lower-case key -> its value's column
    var_in: dict[str, str] = field(default_factory=dict)  # canonical column -> value
    var_in_lines: dict[str, int] = field(default_factory=dict)
    var_in_cols: dict[str, int] = field(default_factory=dict)
    columns: list[Column] = field(default_factory=list)
    columns_line: int = 0
    width: int = 0  # fields per row, unknown columns included
    delimiter: str = ","  # CSV

    def get(self, key: str) -> str | None:
        return self.fields.get(key.lower())

    def at(self, key: str) -> tuple[int, int]:
        """(line, column) of a header value; (0, 0) when the header has no such key."""
        k = key.lower()
        return self.lines.get(k, 0), self.cols.get(k, 0)

    def where(self, key: str) -> str:
        """`path:line:column` of a header value (just `path` when absent)."""
        line, column = self.at(key)
        return f"{self.path}:{line}:{column}" if line else self.path

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
        return name.split()[0][:128] if name else None

    @property
    def transport_kcv(self) -> str | None:
        v = self.get("transport_key")
        m = _KCV.search(v) if v else None
        return m.group(1).upper() if m else None


OVERLONG = "\x00overlong"  # the text yielded for a line over MAX_LINE (already reported)


@dataclass(slots=True)
class RawRow:
    line: int
    text: str
    fields: list[str]
    ended: bool = True  # False: the file's last line, without a newline

    def column_of(self, index: int, fmt: str, delimiter: str = ",") -> int:
        """1-based character column where field `index` starts (computed only for errors)."""
        starts = token_starts(self.text) if fmt == "out" else csv_starts(self.text, delimiter)
        return starts[index] + 1 if index < len(starts) else len(self.text) + 1


def token_starts(text: str) -> list[int]:
    """0-based starts of the whitespace-separated fields of an .out line."""
    return [m.start() for m in _TOKEN.finditer(text)]


def csv_starts(text: str, delimiter: str) -> list[int]:
    """0-based starts of the fields of a CSV line: each field's first non-blank character (its
    opening quote when quoted; where it would be when empty). Delimiters inside quotes (with
    `""` escapes) do not split."""
    starts: list[int] = []
    i, n = 0, len(text)
    while True:
        k = i
        while k < n and text[k] in " \t":
            k += 1
        starts.append(k if k < n and text[k] != delimiter else i)
        if k < n and text[k] == '"':
            k += 1
            while k < n:
                if text[k] == '"':
                    if k + 1 < n and text[k + 1] == '"':
                        k += 2
                        continue
                    break
                k += 1
        d = text.find(delimiter, k)
        if d < 0:
            return starts
        i = d + 1


class VendorFile:
    """An open vendor file: `header` read at once, `rows()` streamed, `sha256` at the end."""

    def __init__(self, file: Path | Source, fmt: str, columns: ColumnMap, report: Report) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}")
        self.source = source_of(file)
        self.path = self.source.path
        self.fmt = fmt
        self.map = columns
        self.report = report
        self.header = Header(report.path, fmt)
        self._f: BinaryIO = self.source.open()
        self._hash = hashlib.sha256()
        self._lineno = 0
        try:
            self._start()
        except BaseException:
            self._f.close()
            raise

    def _start(self) -> None:
        self._last_len = 0  # characters of the last line read, without its end
        self._last_ended = True
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

    def eof(self) -> tuple[int, int]:
        """(line, column) of the end of the file: where a missing line would have started."""
        if self._last_ended:
            return self._lineno + 1, 1
        return self._lineno, self._last_len + 1

    def _lines(self) -> Iterator[tuple[int, str, bool]]:
        """(line number, text without its line end, whether it ended with a newline). A line
        longer than MAX_LINE is reported, skipped in bounded memory and yielded as None text."""
        update = self._hash.update
        readline = self._f.readline
        while raw := readline(MAX_LINE + 1):
            update(raw)
            self._lineno += 1
            if self._lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            ended = raw.endswith(b"\n")
            if not ended and len(raw) > MAX_LINE:
                ended = self._skip_line(raw)
                self._last_len, self._last_ended = MAX_LINE, ended
                yield self._lineno, OVERLONG, ended
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                column = len(raw[: e.start].decode("utf-8", "replace")) + 1
                self._issue(self._lineno, column, "file", "encoding", "not UTF-8 text")
                text = raw.decode("utf-8", "replace")
            text = text.rstrip("\r\n")
            self._last_len, self._last_ended = len(text), ended
            yield self._lineno, text, ended

    def _skip_line(self, head: bytes) -> bool:
        """Report an overlong line and read past it (hashing what it reads); whether it ended."""
        column = len(head[:MAX_LINE].decode("utf-8", "replace")) + 1
        self._issue(self._lineno, column, "file", "line.length",
                    f"line longer than {MAX_LINE} bytes (skipped)")
        while more := self._f.readline(1 << 16):
            self._hash.update(more)
            if more.endswith(b"\n"):
                return True
        return False

    # --- header ------------------------------------------------------------------------------

    def _read_header(self) -> None:
        self._it = self._lines()
        if self.fmt == "csv":
            self._read_csv_header()
        else:
            self._read_out_header()

    def _set_columns(self, line: int, names: list[str], starts: list[int]) -> None:
        """`starts`: 1-based column of each name."""
        self.header.columns_line = line
        self.header.width = len(names)
        seen: dict[str, int] = {}
        for i, (name, start) in enumerate(zip(names, starts, strict=True)):
            canonical = self.map.canonical(name)
            if not name.strip():
                self._issue(line, start, "columns", "columns.empty", f"column {i + 1} has no name")
            elif canonical is None:
                self._issue(line, start, "columns", "columns.unknown",
                            f"unknown column {clip(name.strip())} (add an alias in a column map "
                            "file)")
            elif canonical in seen:
                self._issue(line, start, "columns", "columns.duplicate",
                            f"{clip(name.strip())} is column {canonical} again")
            else:
                seen[canonical] = i
                self.header.columns.append(Column(name.strip(), canonical, i))
        first = starts[0] if starts else 1
        for required in ("ICCID", "IMSI"):
            if required not in seen:
                self._issue(line, first, "columns", "columns.required", f"no {required} column")
        if not any(k in seen for k in ("KI", "EKI")):
            self._issue(line, first, "columns", "columns.required", "no KI or EKI column")

    def _read_out_header(self) -> None:
        var_in = False
        for line, text, _ in self._it:
            if text is OVERLONG:
                continue  # reported
            s = text.strip()
            if not s:
                continue
            if s.startswith("*"):
                var_in = False
                continue
            m = _VAR_OUT.match(text)
            if m:
                names, starts, pos = [], [], m.start(1)
                for n in m.group(1).split("/"):
                    lead = len(n) - len(n.lstrip())
                    names.append(n)
                    starts.append(pos + lead + 1)
                    pos += len(n) + 1
                self._set_columns(line, names, starts)
                return
            base = 0
            m = _VAR_IN.match(text)
            if m:
                var_in = True
                if not m.group(1):
                    continue
                base, text = m.start(1), m.group(1)
            m = _PAIR.match(text)
            if m is None:
                self._issue(line, base + len(text) - len(text.lstrip()) + 1, "header",
                            "header.syntax", "expected `Key: value`, a `*` line or `var_out:`")
                continue
            key, value = m.group(1).strip(), m.group(2)
            column = base + (m.start(2) if value else len(text.rstrip())) + 1
            if var_in:
                canonical = self.map.canonical(key) or key.upper()
                self.header.var_in[canonical] = value
                self.header.var_in_lines[canonical] = line
                self.header.var_in_cols[canonical] = column
            else:
                self.header.fields[key.lower()] = value
                self.header.lines[key.lower()] = line
                self.header.cols[key.lower()] = column
        line, column = self.eof()
        self._issue(line, column, "header", "header.var_out",
                    "the file ends before its `var_out:` line (truncated, or not an .out file)")
        self.truncated = True

    def _read_csv_header(self) -> None:
        for line, text, _ in self._it:
            if text is OVERLONG or not text.strip():
                continue
            self.delimiter = ";" if text.count(";") > text.count(",") else ","
            self.header.delimiter = self.delimiter
            names = self._split(text)
            starts = [c + 1 for c in csv_starts(text, self.delimiter)]
            if len(starts) != len(names):  # a malformed quote: fall back to plain splitting
                starts, pos = [], 0
                for n in text.split(self.delimiter):
                    starts.append(pos + 1)
                    pos += len(n) + 1
                starts = (starts + [len(text) + 1] * len(names))[: len(names)]
            self._set_columns(line, names, starts)
            return
        line, column = self.eof()
        self._issue(line, column, "header", "header.columns", "the file is empty")

    def _split(self, text: str) -> list[str]:
        if '"' not in text:
            return [f.strip() for f in text.split(self.delimiter)]
        return [f.strip() for f in next(csv.reader([text], delimiter=self.delimiter,
                                                   skipinitialspace=True))]

    # --- rows --------------------------------------------------------------------------------

    def rows(self) -> Iterator[RawRow]:
        """Every data row. A last line without its newline and with too few fields marks the
        file truncated (the validator reports it as such)."""
        width = self.header.width
        split = str.split if self.fmt == "out" else self._split
        for line, text, ended in self._it:
            if text is OVERLONG:
                yield RawRow(line, text, [], ended)  # reported; a bad row
                continue
            if not text.strip():
                continue
            if self.fmt == "out" and text.lstrip().startswith("*"):
                continue
            fields = split(text)
            if not ended and len(fields) < width:
                self.truncated = True
            yield RawRow(line, text, fields, ended)
        self._f.close()

    def columns_at(self, wanted: dict[int, list[int]]) -> dict[tuple[int, int], int]:
        """{(line, field index): 1-based column} for the rows asked for, read again from the
        file (used only to place issues found after the row was parsed, e.g. against the
        store). One bounded pass up to the last line wanted."""
        out: dict[tuple[int, int], int] = {}
        if not wanted:
            return out
        last = max(wanted)
        with self.source.open() as f:
            lineno = 0
            while lineno < last and (raw := f.readline(MAX_LINE + 1)):
                lineno += 1
                if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
                    while (more := f.readline(1 << 16)) and not more.endswith(b"\n"):
                        pass
                    continue
                if lineno not in wanted:
                    continue
                if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                row = RawRow(lineno, text, [])
                for index in wanted[lineno]:
                    out[(lineno, index)] = row.column_of(index, self.fmt, self.delimiter)
        return out
