"""Where rows come from: read and validated in this process, or — for big files — in a second
process, so reading and validating one chunk overlaps the HSM and the database working on the
previous one (two cores: ~1.6x faster on a million rows; docs/benchmarks.md).

Both yield `(cards, rows_seen, issues_so_far)` per chunk and leave the file's whole-file checks
(Quantity, truncation) and its SHA-256 in `Outcome`. The worker sends chunks as plain tuples
(`validate.Card`) over a pipe; a worker that dies makes the import fail, never succeed partly.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from simcore.errors import SimsmithError
from simcore.sealed_file import SealedFileError
from simcore.vendor_import.columns import ColumnMap
from simcore.vendor_import.parse import VendorFile
from simcore.vendor_import.report import Report
from simcore.vendor_import.source import Source
from simcore.vendor_import.validate import Card, Validator

Chunk = tuple[list[Card], int, int]


class WorkerFailed(SimsmithError):
    """The process reading the file stopped without finishing."""


@dataclass
class Outcome:
    sha256: str = ""
    rows: int = 0
    report: Report | None = None  # the worker's issues (inline: already in the caller's report)
    extra: dict[str, Any] = field(default_factory=dict)


def validate_rows(vf: VendorFile, validator: Validator, chunk: int) -> Iterator[Chunk]:
    out: list[Card] = []
    check = validator.row
    for raw in vf.rows():
        card = check(raw)
        if card is not None:
            out.append(card.as_tuple())
            if len(out) >= chunk:
                yield out, validator.count, validator.report.total
                out = []
    validator.finish(vf.truncated, vf.eof())
    yield out, validator.count, validator.report.total


def inline(vf: VendorFile, validator: Validator, chunk: int, outcome: Outcome
           ) -> Iterator[Chunk]:
    yield from validate_rows(vf, validator, chunk)
    outcome.sha256, outcome.rows = vf.sha256, validator.count


def _work(conn: Connection, source: Source, fmt: str, aliases: Mapping[str, str], chunk: int,
          name: str, dedupe: bool) -> None:
    try:
        report = Report(name)
        with VendorFile(source, fmt, ColumnMap(dict(aliases)), report) as vf:
            validator = Validator(vf.header, report, dedupe=dedupe)
            for cards, seen, issues in validate_rows(vf, validator, chunk):
                conn.send(("rows", cards, seen, issues))
            conn.send(("end", vf.sha256, validator.count, report))
    except SealedFileError as e:  # typed across the pipe: the job names the damaged offset
        conn.send(("sealed", e.what, e.offset, e.reason))
    except BaseException as e:
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def in_worker(source: Source, fmt: str, columns: ColumnMap, chunk: int, name: str,
              outcome: Outcome, *, dedupe: bool = True) -> Iterator[Chunk]:
    """`dedupe`: as `Validator`'s (False: the caller checks duplicates against the store)."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_work, args=(child, source, fmt, dict(columns.aliases), chunk,
                                           name, dedupe), daemon=True)
    proc.start()
    child.close()
    try:
        while True:
            try:
                msg = parent.recv()
            except EOFError:
                raise WorkerFailed(f"{name}: the reading process stopped (exit code "
                                   f"{proc.exitcode})") from None
            if msg[0] == "rows":
                yield msg[1], msg[2], msg[3]
            elif msg[0] == "end":
                outcome.sha256, outcome.rows, outcome.report = msg[1], msg[2], msg[3]
                yield [], msg[2], msg[3].total
                return
            elif msg[0] == "sealed":
                raise SealedFileError(msg[1], msg[2], msg[3])
            else:
                raise WorkerFailed(f"{name}: reading failed: {msg[1]}")
    finally:
        parent.close()
        proc.join(5)
        if proc.is_alive():
            proc.kill()
