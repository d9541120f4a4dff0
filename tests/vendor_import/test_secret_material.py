"""Inbound key material (issue 15 item 2): a parsed row of a clear-Ki CSV with every secret
column — Ki, OPc, PIN1/2, PUK1/2, ADM1, KIC1/KID1/KIK1 — shows none of them in its repr or str,
in the tuple that travels between processes, or in log records (structlog and stdlib
logging) that carry it."""

from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path

import pytest
import structlog

from simcore.vendor_import.columns import ColumnMap
from simcore.vendor_import.parse import VendorFile
from simcore.vendor_import.report import Report
from simcore.vendor_import.secret import Secret
from simcore.vendor_import.validate import CardRow, Validator

from .helpers import cards, csv_text, write

COLUMNS = ("ICCID", "IMSI", "KI", "OPC", "PIN1", "PUK1", "PIN2", "PUK2", "ADM1", "ACC", "KIC1",
           "KID1", "KIK1")
SECRET_COLUMNS = ("KI", "OPC", "PIN1", "PUK1", "PIN2", "PUK2", "ADM1", "KIC1", "KID1", "KIK1")


def _parsed(tmp_path: Path) -> tuple[list[CardRow], list[dict[str, str]]]:
    cs = cards(3, encrypted=False)
    for j, c in enumerate(cs):  # codes that cannot be mistaken for ICCID/IMSI digits
        c.values.update(PIN1=f"97{31 + j}", PIN2=f"86{42 + j}", PUK1=f"7531{9024 + j}",
                        PUK2=f"6420{8135 + j}", ADM1=f"5319{7046 + j}")
    p = write(tmp_path / "keys.csv", csv_text(cs, COLUMNS))
    report = Report(p.name)
    rows: list[CardRow] = []
    with VendorFile(p, "csv", ColumnMap.builtin(), report) as vf:
        v = Validator(vf.header, report)
        for raw in vf.rows():
            row = v.row(raw)
            assert row is not None
            rows.append(row)
    assert report.ok and len(rows) == 3
    return rows, [c.values for c in cs]


def _forbidden(values: dict[str, str]) -> list[str]:
    out = []
    for col in SECRET_COLUMNS:
        v = values[col]
        out += [v, v.lower(), v.upper()]
        raw = bytes.fromhex(v) if col in ("KI", "OPC", "KIC1", "KID1", "KIK1") else (
            v.encode().ljust(8, b"\xff"))
        out += [repr(raw), raw.hex()]
    return out


def _assert_clean(text: str, values: dict[str, str]) -> None:
    for bad in _forbidden(values):
        assert bad not in text, f"{bad!r} shown"


def test_repr_and_str_of_a_parsed_row_hide_every_secret(tmp_path: Path) -> None:
    rows, values = _parsed(tmp_path)
    for row, v in zip(rows, values, strict=True):
        card = row.as_tuple()
        for text in (repr(row), str(row), repr(card), str(card), f"{card}", f"{row.ki}",
                     f"{card!s} {card!r}", repr(row.credentials), str(list(card[6]))):
            _assert_clean(text, v)
        assert row.iccid in repr(row)  # the row is still recognisable
        # The values are there for the HSM, unchanged, and survive the pipe to the importer.
        assert row.ki.reveal() == bytes.fromhex(v["KI"])
        assert dict((n, s.reveal()) for n, _, s in card[6])["PUK1"] == v["PUK1"].encode()
        again = pickle.loads(pickle.dumps(card))
        assert again[3].reveal() == row.ki.reveal() and isinstance(again[6][0][2], Secret)


def test_log_records_of_a_parsed_row_hide_every_secret(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    rows, values = _parsed(tmp_path)
    out = io.StringIO()
    structlog.configure(processors=[structlog.processors.JSONRenderer(default=repr)],
                        logger_factory=structlog.PrintLoggerFactory(file=out))
    try:
        log = structlog.get_logger("t")
        for row in rows:
            log.warning("row", row=row, card=row.as_tuple(), ki=row.ki,
                        credentials=row.credentials)
    finally:
        structlog.reset_defaults()
        from simcore.log import configure
        configure("WARNING")
    std = logging.getLogger("simsmith.test")
    with caplog.at_level(logging.INFO):
        for row in rows:
            std.info("row %s card %r", row, row.as_tuple())
            std.info("creds", extra={"credentials": row.credentials})
    text = out.getvalue() + caplog.text + " ".join(
        f"{r.getMessage()} {getattr(r, 'credentials', '')}" for r in caplog.records)
    assert text.count("<secret: 16 bytes>") >= 6
    for v in values:
        _assert_clean(text, v)
