"""Issue 14: an import's memory does not grow with the file. Duplicates inside the file are
found against the store (its own earlier chunks are there), not in sets of every ICCID and
IMSI; a chunk's keys, refs and rows are dropped before the next. Measured with tracemalloc
(Python allocations of this process, the inline reader) — no timing."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hsm_sim.soft import SoftHsm
from simcore.vendor_import import ImportOptions, InvalidFile, import_file

from .helpers import cards, out_text, write


@pytest.mark.slow
def test_memory_does_not_grow_with_the_row_count(engine: Engine, hsm: SoftHsm,
                                                 tmp_path: Path) -> None:
    """Python memory held at each chunk boundary (tracemalloc, sampled from the progress
    callback) stays level over 40 chunks; the peak of an 8x longer file is the small one's."""
    # No Var_In_List start values: the file itself proves nothing about duplicates, so every
    # ICCID and IMSI must be checked — in the store, not in sets that grow with the file.
    n = 20_000
    p = write(tmp_path / "big.out", out_text(cards(n), var_in=False))
    small = write(tmp_path / "small.out", out_text(cards(n // 8, offset=n), var_in=False))
    held: list[int] = []
    peaks = []
    tracemalloc.start()
    try:
        for path, name in ((small, "small"), (p, "big")):
            tracemalloc.reset_peak()
            held.clear()
            r = import_file(engine, hsm, path, ImportOptions(worker=False, chunk=500, batch=name),
                            lambda done, total: held.append(tracemalloc.get_traced_memory()[0]))
            assert r.status == "imported"
            peaks.append(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()
    assert len(held) >= 40
    # Sets of every ICCID and IMSI would add ~140 bytes a row: 2.5 MB over this file.
    growth = max(held[2:]) - held[2]
    assert growth < 400_000, (held[2], max(held[2:]), growth)
    assert peaks[1] < peaks[0] * 1.25 + 400_000, peaks


@pytest.mark.slow
@pytest.mark.parametrize("worker", [False, True])
def test_a_value_repeated_in_another_chunk_is_a_duplicate(engine: Engine, hsm: SoftHsm,
                                                          tmp_path: Path, worker: bool) -> None:
    """Rows 2 and 7 (chunks 1 and 4 with chunk=2) share an IMSI; rows 3 and 4 (one chunk)
    share an ICCID: each reported at its later row, at the field's column, nothing written."""
    def dup(t: list[list[str]]) -> None:
        t[6][1] = t[1][1]
        t[3][0] = t[2][0]
    p = write(tmp_path / "d.out", out_text(cards(8), mutate=dup, var_in=False))
    with pytest.raises(InvalidFile) as e:
        import_file(engine, hsm, p, ImportOptions(worker=worker, chunk=2))
    issues = e.value.report.issues
    rows = out_text(cards(8), var_in=False).splitlines()
    first_row = len(rows) - 8 + 1  # 1-based line of the first card
    assert [(i.rule, i.line, i.column) for i in issues] == [
        ("iccid.duplicate", first_row + 3, 1),
        ("imsi.duplicate", first_row + 6, 21)]
    assert all("appears earlier in this file" in str(i) for i in issues)
    dry = import_file(engine, hsm, p, ImportOptions(worker=worker, chunk=2, dry_run=True))
    assert sorted(i.rule for i in dry.report.issues) == ["iccid.duplicate", "imsi.duplicate"]
