"""Parsing and validation without a store: every rule, its file:line:column and its masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from simcore.vendor_import.columns import ColumnMap
from simcore.vendor_import.parse import VendorFile
from simcore.vendor_import.report import Report
from simcore.vendor_import.validate import Validator

from .helpers import OUT_COLUMNS, TRANSPORT_KCV, cards, csv_text, iccid, out_text, write


def check(path: Path, fmt: str = "out", columns: ColumnMap | None = None) -> tuple[Report, int]:
    report = Report(path.name)
    with VendorFile(path, fmt, columns or ColumnMap.builtin(), report) as vf:
        v = Validator(vf.header, report)
        valid = 0
        for raw in vf.rows():
            valid += v.row(raw) is not None
        v.finish(vf.truncated, vf.eof())
    return report, valid


def rules(report: Report) -> list[str]:
    return [i.rule for i in report.issues]


def test_valid_out_file_with_header_and_kcv(tmp_path: Path) -> None:
    p = write(tmp_path / "b.out", out_text(cards(5)))
    report = Report(p.name)
    with VendorFile(p, "out", ColumnMap.builtin(), report) as vf:
        h = vf.header
        assert h.quantity == "5" and h.batch == "B-TEST-1"
        assert h.transport_key == "vendor1" and h.transport_kcv == TRANSPORT_KCV
        assert h.var_in == {"ICCID": iccid(0), "IMSI": "001010000000100"}
        assert [c.name for c in h.columns] == list(OUT_COLUMNS)
        assert len(list(vf.rows())) == 5
    assert report.ok


@pytest.mark.parametrize("crlf,bom", [(True, False), (False, True), (True, True)])
def test_crlf_bom_and_trailing_blank_lines_tolerated(tmp_path: Path, crlf: bool, bom: bool
                                                     ) -> None:
    p = write(tmp_path / "b.out", out_text(cards(4)) + "\n\n  \n", crlf=crlf, bom=bom)
    report, valid = check(p)
    assert report.ok, [str(i) for i in report.issues]
    assert valid == 4


def test_trailing_f_on_iccid_is_stripped(tmp_path: Path) -> None:
    def add_f(t: list[list[str]]) -> None:
        for r in t:
            r[0] += "F"
    report, valid = check(write(tmp_path / "b.out", out_text(cards(3), mutate=add_f)))
    assert report.ok and valid == 3


def test_vendor_aliases_and_user_column_map(tmp_path: Path) -> None:
    names = ["ICC", "IMSI", "KI_ENC", "K_OPC_X"]
    p = write(tmp_path / "b.out", out_text(cards(2), ("ICCID", "IMSI", "EKI", "EOPC"),
                                           names=names))
    report, _ = check(p)
    assert rules(report) == ["columns.unknown"]
    assert str(report.issues[0]).startswith("b.out:19:")  # the var_out line
    cfg = tmp_path / "cols.toml"
    cfg.write_text('[aliases]\n"K_OPC_X" = "EOPC"\n')
    report, valid = check(p, columns=ColumnMap.load(cfg))
    assert report.ok and valid == 2


def test_csv_with_pysim_column_names(tmp_path: Path) -> None:
    cols = ("ICCID", "IMSI", "ACC", "PIN1", "PUK1", "PIN2", "PUK2", "KI", "OPC", "ADM1",
            "KIC1", "KID1", "KIK1")
    for sep in (",", ";"):
        p = write(tmp_path / "k.csv", csv_text(cards(3, encrypted=False), cols, sep))
        report, valid = check(p, "csv")
        assert report.ok, [str(i) for i in report.issues]
        assert valid == 3


def _mutated(tmp_path: Path, fn: object, n: int = 4, **kw: object) -> Report:
    p = write(tmp_path / "b.out", out_text(cards(n), mutate=fn, **kw))  # type: ignore[arg-type]
    return check(p)[0]


def test_short_row_and_extra_column(tmp_path: Path) -> None:
    def short(t: list[list[str]]) -> None:
        t[1].pop()
        t[2].append("EXTRA")
    report = _mutated(tmp_path, short)
    assert rules(report) == ["row.short", "row.extra"]
    assert str(report.issues[0]).startswith("b.out:21:")
    line = (tmp_path / "b.out").read_text().splitlines()[21]
    assert report.issues[1].column == line.index("EXTRA") + 1
    assert report.bad_rows == 2


def test_bad_luhn_names_line_column_and_value(tmp_path: Path) -> None:
    def bad(t: list[list[str]]) -> None:
        t[2][0] = t[2][0][:-1] + str((int(t[2][0][-1]) + 1) % 10)
    report = _mutated(tmp_path, bad)
    # Consecutive rule catches it first? No: the body is right, only the check digit is wrong.
    assert rules(report) == ["iccid.luhn"]
    msg = str(report.issues[0])
    assert msg.startswith("b.out:22:1: ICCID '89490000000000010") and "Luhn" in msg


def test_consecutive_iccid_and_imsi(tmp_path: Path) -> None:
    def swap(t: list[list[str]]) -> None:
        t[1][0], t[2][0] = t[2][0], t[1][0]
        t[3][1] = "001010000000999"
    report = _mutated(tmp_path, swap)
    assert rules(report) == ["iccid.sequence", "iccid.sequence", "imsi.sequence"]


def test_duplicates_inside_the_file_without_start_values(tmp_path: Path) -> None:
    def dup(t: list[list[str]]) -> None:
        t[3][0] = t[0][0]
        t[2][1] = t[1][1]
    report = _mutated(tmp_path, dup, var_in=False)
    assert sorted(rules(report)) == ["iccid.duplicate", "imsi.duplicate"]


def test_imsi_plmn_and_length(tmp_path: Path) -> None:
    def plmn(t: list[list[str]]) -> None:
        t[1][1] = "262010000000101"
        t[2][1] = "00101000000010"
    report = _mutated(tmp_path, plmn, var_in=False)
    assert rules(report) == ["imsi.plmn", "imsi.length"]


def test_bad_hex_is_masked(tmp_path: Path) -> None:
    def badhex(t: list[list[str]]) -> None:
        t[0][2] = t[0][2][:-2]
        t[1][3] = "Z" + t[1][3][1:]
        t[2][4] = "12a4"
    report = _mutated(tmp_path, badhex)
    assert rules(report) == ["hex.length", "hex.digits", "code.format"]
    text = " ".join(str(i) for i in report.issues)
    assert "<30 hex digits>" in text and "<32 characters>" in text and "<4 hex digits>" in text
    for c in cards(4):
        for col in ("EKI", "EOPC", "PUK1", "ADM1"):
            assert c.values[col] not in text
        assert c.values["EKI"][:-2] not in text


def test_more_rows_than_quantity(tmp_path: Path) -> None:
    report = _mutated(tmp_path, None, quantity=3)
    assert rules(report) == ["quantity"]
    # at the Quantity value: `Quantity     : 3`
    assert str(report.issues[0]).startswith("b.out:5:16: Quantity: the file has 4 rows, "
                                            "Quantity says 3")


def test_cut_at_a_row_boundary_is_truncated(tmp_path: Path) -> None:
    """A file that ends cleanly after fewer rows than Quantity lost its last rows: truncated,
    at the end of the file (the line after the last)."""
    report = _mutated(tmp_path, None, quantity=5)
    assert rules(report) == ["file.truncated"]
    assert str(report.issues[0]) == ("b.out:24:1: file: the file ends after 4 of 5 rows "
                                     "(Quantity): truncated [file.truncated]")
    text = out_text(cards(6))
    cut = text[: text.index(cards(6)[4].iccid)]  # ends with the newline of row 4
    report, _ = check(write(tmp_path / "c.out", cut))
    assert rules(report) == ["file.truncated"] and report.issues[0].line == 24


def test_truncated_mid_row_and_at_line_end(tmp_path: Path) -> None:
    text = out_text(cards(4))
    p = write(tmp_path / "b.out", text[: len(text) - 40])
    report, _ = check(p)
    assert "file.truncated" in rules(report)
    assert "truncated" in str(report.issues[0])
    p = write(tmp_path / "c.out", text[: len(text) - 20])  # inside the last field
    report, _ = check(p)
    assert rules(report)[0] == "file.truncated"
    p = write(tmp_path / "d.out", text.split("var_out")[0])
    report, _ = check(p)
    assert rules(report) == ["header.var_out"]


def test_unknown_and_missing_columns(tmp_path: Path) -> None:
    p = write(tmp_path / "b.out", out_text(cards(1), ("ICCID", "EOPC"), names=["ICCID", "EOPC"]))
    report, _ = check(p)
    assert rules(report) == ["columns.required", "columns.required"]


def test_reprs_hide_keys() -> None:
    from simcore.export.keys import ExportedSim
    from simcore.vendor_import.validate import CardRow

    ki = bytes(range(16))
    card = CardRow(3, "8949", "00101", ki, ki, None, [("PIN1", "PIN", b"1234\xff\xff\xff\xff")])
    sim = ExportedSim("8949", "00101", None, ki, ki)
    for text in (repr(card), repr(card.as_tuple()[:3]), repr(sim)):
        assert ki.hex() not in text and "1234" not in text and str(ki) not in text


def test_second_vendor_layout(tmp_path: Path) -> None:
    """Another bureau's habits: upper-case VAR_OUT, column names in mixed case and another
    order, tab-separated rows, a comment between rows, the KCV in parentheses."""
    cs = cards(3)
    cols = ("IMSI", "ICCID", "KI", "OPC", "ADM1", "KIC1")
    text = ("* GENERATED BY BUREAU X\nQuantity:3\nTransport_key : 2 (KCV: ABCDEF)\n"
            "Batch: X-9\n*\nVAR_OUT: imsi/Iccid/Ki/OPc/Adm/kic\n")
    rows = ["\t".join(c.values[k] for k in cols) for c in cs]
    text += rows[0] + "\n* checkpoint\n" + "\n".join(rows[1:]) + "\n"
    p = write(tmp_path / "x.out", text)
    report = Report(p.name)
    with VendorFile(p, "out", ColumnMap.builtin(), report) as vf:
        assert (vf.header.transport_key, vf.header.transport_kcv) == ("2", "ABCDEF")
        assert [c.name for c in vf.header.columns] == ["IMSI", "ICCID", "KI", "OPC", "ADM1",
                                                       "KIC1"]
    report, valid = check(p)
    assert report.ok and valid == 3
