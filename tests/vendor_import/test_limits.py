"""Issue #13 item 5: input limits and exact positions. A huge field is never echoed whole; a
huge line (header or row, .out, CSV, order file) is refused in bounded memory; a file cut at a
row boundary is reported truncated; every issue names the 1-based line and column of the
offending field."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from hsm_sim.soft import SoftHsm
from simcore.vendor_import import ImportOptions, InvalidFile, import_file
from simcore.vendor_import.columns import ColumnMap
from simcore.vendor_import.parse import MAX_LINE, VendorFile
from simcore.vendor_import.report import Report
from simcore.vendor_import.validate import Validator

from .helpers import cards, csv_text, out_text, write

REPO = Path(__file__).resolve().parents[2]
BIG = 50 << 20  # 50 MiB


def check(path: Path, fmt: str = "out") -> Report:
    report = Report(path.name)
    with VendorFile(path, fmt, ColumnMap.builtin(), report) as vf:
        v = Validator(vf.header, report)
        for raw in vf.rows():
            v.row(raw)
        v.finish(vf.truncated, vf.eof())
    return report


def big_file(path: Path, head: str, filler: bytes, tail: str) -> Path:
    """head + 50 MiB of `filler` + tail, written without holding 50 MiB."""
    with open(path, "wb") as f:
        f.write(head.encode())
        block = filler * (1 << 20 // len(filler))
        for _ in range(BIG // len(block)):
            f.write(block)
        f.write(tail.encode())
    return path


@pytest.mark.slow
def test_a_50_mb_row_is_reported_in_one_short_line_and_bounded_memory(tmp_path: Path) -> None:
    text = out_text(cards(3))
    lines = text.splitlines(keepends=True)
    head, tail = "".join(lines[:20]), "".join(lines[21:])  # row 2 (line 21) becomes 50 MiB
    p = big_file(tmp_path / "b.out", head + "8949", b"0", " x\n" + tail)
    tracemalloc.start()
    try:
        report = check(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
    assert [str(i) for i in report.issues] == [
        f"b.out:21:{MAX_LINE + 1}: file: line longer than {MAX_LINE} bytes (skipped) "
        "[line.length]"]
    assert report.bad_rows == 1 and report.total == 1  # counted as a row: no Quantity issue


def test_a_50_mb_header_line_is_refused(engine: Engine, hsm: SoftHsm, tmp_path: Path) -> None:
    text = out_text(cards(2))
    p = big_file(tmp_path / "h.out", "*\nCustomer: ", b"A", "\n" + text)
    with pytest.raises(InvalidFile) as e:
        import_file(engine, hsm, p)
    issue = e.value.report.issues[0]
    assert (issue.line, issue.column, issue.rule) == (2, MAX_LINE + 1, "line.length")
    assert len(str(e.value)) < 200


def test_a_50_mb_csv_header_is_refused(tmp_path: Path) -> None:
    p = big_file(tmp_path / "k.csv", "ICCID,IMSI,KI,", b"X", "\n")
    report = check(p, "csv")
    assert report.issues[0].rule == "line.length"
    assert (report.issues[0].line, report.issues[0].column) == (1, MAX_LINE + 1)


def test_a_long_field_is_shown_clipped(engine: Engine, hsm: SoftHsm, tmp_path: Path) -> None:
    """A field under the line limit but far too long: the issue shows 40 characters and the
    length, on the CLI too."""
    def long_iccid(t: list[list[str]]) -> None:
        t[1][0] = "8" * 6000
    p = write(tmp_path / "b.out", out_text(cards(3), mutate=long_iccid))
    with pytest.raises(InvalidFile) as e:
        import_file(engine, hsm, p)
    msg = str(e.value)
    assert msg == ("b.out:21:1: ICCID '8888888888888888888888888888888888888888'… (6,000 "
                   "characters): 6000 digits, expected 19 or 20 [iccid.length]")


def test_cli_echo_is_bounded(engine: Engine, tmp_path: Path) -> None:
    def long_imsi(t: list[list[str]]) -> None:
        t[0][1] = "x" * 8000
    p = write(tmp_path / "b.out", out_text(cards(2), mutate=long_imsi))
    from tools.cli import app
    r = CliRunner().invoke(app, ["inventory", "import", str(p), "--dry-run"],
                           env={"SIMSMITH_HOME": str(tmp_path / "home"),
                                "SIMSMITH_DATABASE_URL":
                                    engine.url.render_as_string(hide_password=False)})
    assert r.exit_code == 1 and "b.out:20:21: IMSI 'xxxx" in r.stderr
    assert len(r.stderr) < 1000, len(r.stderr)


def test_order_file_line_limit(tmp_path: Path) -> None:
    p = big_file(tmp_path / "o.inp", "*\nQuantity: 1\nProfile: ", b"P", "\n")
    r = subprocess.run([sys.executable, str(REPO / "scripts/vendor_sim.py"), str(p),
                        "--transport-key", "00" * 16, "-o", str(tmp_path / "o.out")],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode != 0
    assert f"o.inp:3:{MAX_LINE + 1}: line longer than {MAX_LINE} bytes" in r.stderr
    assert len(r.stderr) < 500 and not (tmp_path / "o.out").exists()


def test_in_store_issues_at_the_fields_column(engine: Engine, hsm: SoftHsm,
                                              tmp_path: Path) -> None:
    """`IMSI already in store` at the IMSI's column (21), not column 1; CSV too."""
    import_file(engine, hsm, write(tmp_path / "a.out", out_text(cards(3))),
                ImportOptions(batch="first"))
    p = write(tmp_path / "b.out", out_text(cards(3, offset=2), var_in=False))
    with pytest.raises(InvalidFile) as e:
        import_file(engine, hsm, p, ImportOptions(batch="second"))
    got = [(i.line, i.column, i.rule) for i in e.value.report.issues]
    assert got == [(14, 1, "iccid.in_store"), (14, 21, "imsi.in_store")]
    cols = ("IMSI", "ICCID", "KI", "OPC")
    text = csv_text(cards(3, encrypted=False, offset=1), cols, ";").replace(";", " ; ")
    q = write(tmp_path / "c.csv", text)
    with pytest.raises(InvalidFile) as e:
        import_file(engine, hsm, q, ImportOptions(batch="third"))
    got = [(i.line, i.column, i.rule) for i in e.value.report.issues]
    line2 = text.splitlines()[1]
    assert got[:2] == [(2, 1, "imsi.in_store"), (2, line2.index("89") + 1, "iccid.in_store")]


@pytest.mark.parametrize("name,text,fmt,want", [
    ("empty", "", "csv", (1, 1, "header.columns")),
    ("blank", "\n\n", "csv", (3, 1, "header.columns")),
    ("no var_out", "*\nQuantity: 4\nBatch: B", "out", (3, 9, "header.var_out")),
    ("no quantity", "*\nvar_out: ICCID/IMSI/KI\n", "out", (2, 1, "header.quantity")),
    ("bad quantity", "Quantity:  four\nvar_out: ICCID/IMSI/KI\n8949", "out",
     (1, 12, "header.quantity")),
    ("no rows", "Quantity: 2\nvar_out: ICCID/IMSI/KI\n", "out", (3, 1, "file.empty")),
    ("bad start", "Quantity: 1\nVar_In_List:\nICCID:  123\nvar_out: ICCID/IMSI/KI\n", "out",
     (3, 9, "iccid.start")),
    ("start on var_in line", "Quantity: 1\nVar_In_List: ICCID: 12\nvar_out: ICCID/IMSI/KI\n",
     "out", (2, 21, "iccid.start")),
    ("header syntax", "Quantity: 1\n  what is this\nvar_out: ICCID/IMSI/KI\n", "out",
     (2, 3, "header.syntax")),
    ("unknown column", "Quantity: 1\nvar_out: ICCID/ IMSI /FOO/KI\n", "out",
     (2, 23, "columns.unknown")),
    ("required column", "Quantity: 1\nvar_out:  ICCID/KI\n", "out", (2, 11, "columns.required")),
    ("csv column", 'ICCID, "IMSI",KI,"FO,O"\n', "csv", (1, 18, "columns.unknown")),
    ("encoding", "Quantity: 1\nCustomer: ab\xff\nvar_out: ICCID/IMSI/KI\n", "out",
     (2, 13, "encoding")),
])
def test_every_position_is_exact(tmp_path: Path, name: str, text: str, fmt: str,
                                 want: tuple[int, int, str]) -> None:
    p = tmp_path / f"f.{fmt}"
    p.write_bytes(text.encode("latin-1") if name == "encoding" else text.encode())
    report = check(p, fmt)
    assert (report.issues[0].line, report.issues[0].column, report.issues[0].rule) == want, \
        [str(i) for i in report.issues]
    assert all(i.line >= 1 and i.column >= 1 for i in report.issues), \
        [str(i) for i in report.issues]
