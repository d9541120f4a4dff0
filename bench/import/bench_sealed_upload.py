"""What sealing an import's upload at rest costs (simcore.import_uploads, simcore.sealed_file),
on the every-column vendor file of bench_import.py:

    .venv/bin/python bench/import/bench_sealed_upload.py [--rows 1000000] [--e2e 0]

- **seal**: the upload written sealed as it arrives (64 KiB pieces, as the API's body stream
  gives them) — against writing it in clear, as before.
- **SHA-256 pass**: the import's first pass (file_sha256) over the clear file and over the
  sealed one (decrypting as it reads).
- **reader**: parse and validate every row (what the reader process does: VendorFile +
  Validator), from the clear file and from the sealed one.
- **end to end** (`--e2e N`, SQLite, soft HSM): `import_file` of an N-row file, clear and
  sealed, each in a fresh database.

CPU seconds of this process (time.process_time) beside wall seconds; each figure the best of
three (the end-to-end import: one run each).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_import import ALL, BUILD, TRANSPORT, make_file  # noqa: E402

from hsm_sim.hsm import KekPurpose  # noqa: E402
from hsm_sim.soft import SoftHsm  # noqa: E402
from simcore import db  # noqa: E402
from simcore.sealed_file import SealedSource, SealedWriter  # noqa: E402
from simcore.vendor_import import ImportOptions, import_file  # noqa: E402
from simcore.vendor_import.columns import ColumnMap  # noqa: E402
from simcore.vendor_import.parse import VendorFile  # noqa: E402
from simcore.vendor_import.pipeline import validate_rows  # noqa: E402
from simcore.vendor_import.report import Report  # noqa: E402
from simcore.vendor_import.service import file_sha256  # noqa: E402
from simcore.vendor_import.source import FileSource, Source  # noqa: E402
from simcore.vendor_import.validate import Validator  # noqa: E402

PIECE = 1 << 16
KEY = os.urandom(32)


def best(fn: Callable[[], object], runs: int = 3) -> tuple[float, float]:
    out = []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        fn()
        out.append((time.perf_counter() - w, time.process_time() - c))
    return min(out, key=lambda t: t[1])


def write_clear(src: Path, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    with open(src, "rb") as f, open(dst, "wb") as out:
        while piece := f.read(PIECE):
            out.write(piece)


def write_sealed(src: Path, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    with open(src, "rb") as f, SealedWriter(dst, KEY, {"kind": "bench"}) as out:
        while piece := f.read(PIECE):
            out.write(piece)


def read_rows(source: Source) -> int:
    report = Report(source.path.name)
    with VendorFile(source, "out", ColumnMap.builtin(), report) as vf:
        validator = Validator(vf.header, report, dedupe=False)
        n = 0
        for cards, _, _ in validate_rows(vf, validator, 5000):
            n += len(cards)
    return n


def e2e(path: Path, source: Source, tmp: Path, label: str) -> float:
    d = tmp / label
    d.mkdir()
    eng = db.make_engine(f"sqlite:///{d / 'bench.db'}")
    db.upgrade(eng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hsm = SoftHsm.init(d / "hsm", components=[bytes(range(32)), bytes(range(1, 33))])
    hsm.kek_add("bench-tk", KekPurpose.TRANSPORT, [TRANSPORT])
    w = time.perf_counter()
    r = import_file(eng, hsm, source, ImportOptions(actor="bench"))
    took = time.perf_counter() - w
    assert r.status == "imported", r.status
    eng.dispose()
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--e2e", type=int, default=0)
    args = ap.parse_args()
    clear = make_file(args.rows, ALL)
    mb = clear.stat().st_size / 1e6
    tmp = Path(tempfile.mkdtemp(prefix="bench-sealed-", dir=BUILD))
    try:
        sealed = tmp / "upload.sealed"
        copy = tmp / "upload.out"
        print(f"file: {clear.name}, {args.rows:,} rows, {mb:.0f} MB; load "
              f"{os.getloadavg()[0]:.1f}")
        rows = [("write the upload in clear (before)", best(lambda: write_clear(clear, copy))),
                ("write the upload sealed", best(lambda: write_sealed(clear, sealed)))]
        src = SealedSource(clear, sealed, KEY, "bench")
        assert file_sha256(src) == hashlib.sha256(clear.read_bytes()).hexdigest()
        rows += [("SHA-256 pass, clear", best(lambda: file_sha256(FileSource(clear)))),
                 ("SHA-256 pass, sealed", best(lambda: file_sha256(src))),
                 ("parse + validate, clear", best(lambda: read_rows(FileSource(clear)))),
                 ("parse + validate, sealed", best(lambda: read_rows(src)))]
        print(f"{'case':40} {'wall s':>8} {'CPU s':>8} {'MB/s (CPU)':>11}")
        for name, (wall, cpu) in rows:
            print(f"{name:40} {wall:8.2f} {cpu:8.2f} {mb / max(cpu, 1e-9):11.0f}")
        if args.e2e:
            small = make_file(args.e2e, ALL)
            s2 = tmp / "small.sealed"
            write_sealed(small, s2)
            a = e2e(small, FileSource(small), tmp, "clear")
            b = e2e(small, SealedSource(small, s2, KEY, "bench"), tmp, "sealed")
            print(f"import_file end to end, {args.e2e:,} rows, SQLite: clear {a:.2f} s, "
                  f"sealed {b:.2f} s ({(b / a - 1) * 100:+.1f} %)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
