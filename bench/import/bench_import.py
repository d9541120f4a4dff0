"""Importing a vendor output file end to end, with every column real vendor files carry, beside
references measured in the same run.

    .venv/bin/python bench/import/bench_import.py [--rows 1000000] [--db sqlite,postgresql]

Cases (each in a fresh process, so its peak memory is its own):

- **all columns**: `simcore.vendor_import.import_file` on a .out file of ICCID/IMSI/EKI/EOPC/
  PIN1/PUK1/PIN2/PUK2/ADM1/ACC/KIC1/KID1/KIK1 (what `scripts/vendor_sim.py` writes, plus OTA
  keys): hash, KCV, every row parsed and validated, Ki/OPc unwrapped from the transport key and
  re-wrapped, 5 codes and 3 OTA keys wrapped, 1 SIM + 8 credential rows inserted per card, in
  one transaction, commit. The reader process (files >= 8 MiB) runs on the second core.
- **EKI+EOPC only** (reference): the same import of a 4-column file — what the benchmark
  measured before.
- **store floor** (reference): the same SIM and credential rows, with tokens of the real length,
  inserted by one executemany each into the same schema in one transaction — no file, no
  validation, no HSM: what any importer storing these rows in this schema pays.

Peak memory: ru_maxrss of the importing process and of the reader process (KB -> MB).
Files are generated once into build/bench/ (not timed). PostgreSQL from SIMSMITH_TEST_PG_URL.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import throwaway_db  # noqa: E402
from hsm_sim.hsm import KekPurpose  # noqa: E402
from hsm_sim.kcv import kcv  # noqa: E402
from hsm_sim.soft import SoftHsm  # noqa: E402
from simcore import db  # noqa: E402
from simcore.identifiers import luhn_check_digit  # noqa: E402
from simcore.vendor_import import import_file  # noqa: E402

TRANSPORT = bytes(range(16))
BUILD = ROOT / "build" / "bench"
ALL = "ICCID/IMSI/EKI/EOPC/PIN1/PUK1/PIN2/PUK2/ADM1/ACC/KIC1/KID1/KIK1"
KEYS = "ICCID/IMSI/EKI/EOPC"
GOAL_SECONDS, GOAL_MB = 30.0, 150.0
BODY0, IMSI0 = 894900100000000000, 1010000000000


def make_file(rows: int, columns: str) -> Path:
    tag = "all" if columns == ALL else "keys"
    path = BUILD / f"vendor-{tag}-{rows}.out"
    if path.exists():
        return path
    BUILD.mkdir(parents=True, exist_ok=True)
    enc = Cipher(algorithms.AES(TRANSPORT), modes.ECB()).encryptor()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        f.write(f"*\n* HEADER DESCRIPTION\n*\nCustomer: Bench Mobile\nQuantity: {rows}\n"
                f"Type: sysmoISIM-SJA2\nProfile: P1\nBatch: BENCH-{tag}-{rows}\n"
                f"Transport_key: bench-tk KCV={kcv(TRANSPORT).hex().upper()}\n*\n"
                f"Var_In_List:\nICCID: {BODY0}{luhn_check_digit(str(BODY0))}\n"
                f"IMSI: {IMSI0:015d}\n*\nvar_out: {columns}\n")
        step = 50_000
        for start in range(0, rows, step):
            n = min(step, rows - start)
            keys = enc.update(os.urandom(32 * n)).hex().upper()
            ota = os.urandom(48 * n).hex().upper() if columns == ALL else ""
            out = []
            for i in range(n):
                j = start + i
                b = str(BODY0 + j)
                k = keys[64 * i : 64 * i + 64]
                row = f"{b}{luhn_check_digit(b)} {IMSI0 + j:015d} {k[:32]} {k[32:]}"
                if columns == ALL:
                    o = ota[96 * i : 96 * i + 96]
                    row += (f" {j % 10000:04d} {(j * 7919) % 10**8:08d} {(j * 31) % 10000:04d}"
                            f" {(j * 104729) % 10**8:08d} {(j * 15485863) % 10**8:08d}"
                            f" {1 << (j % 10):04X} {o[:32]} {o[32:64]} {o[64:]}")
                out.append(row + "\n")
            f.write("".join(out))
    tmp.replace(path)
    return path


def _token(kind: str, owner: str, n: int) -> str:
    return f"kr1.soft.{kind}.{owner}.storage." + base64.urlsafe_b64encode(
        os.urandom(n)).rstrip(b"=").decode()


def floor(rows: int, path: str) -> float:
    """The store floor: the rows an all-column import writes, by plain executemany (SQLite)."""
    names = ["PIN1", "PUK1", "PIN2", "PUK2", "ADM1", "ota-kvn01-kid01", "ota-kvn01-kid02",
             "ota-kvn01-kid03"]
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA foreign_keys=ON")
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO batch (name, source, kind, status, row_count, created_at) "
                "VALUES ('floor', 'import', 'physical', 'in_progress', 0, "
                "'2026-01-01 00:00:00.000000')")
    bid = con.execute("SELECT id FROM batch WHERE name = 'floor'").fetchone()[0]
    now = "2026-01-01 00:00:00.000000"
    t = time.perf_counter()
    for start in range(0, rows, 5000):
        ids = [f"{BODY0 + j}{luhn_check_digit(str(BODY0 + j))}"
               for j in range(start, min(rows, start + 5000))]
        con.executemany(
            "INSERT INTO sim (iccid, imsi, kind, batch_id, state, ki_ref, opc_ref, "
            "auth_algorithm, acc, version, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [(i, f"{IMSI0 + start + n:015d}", "physical", bid, "in_stock",
              _token("KI", i, 33), _token("OPC", i, 33), "milenage", "0001", 1, now, now)
             for n, i in enumerate(ids)])
        con.executemany("INSERT INTO sim_credential (iccid, name, ref) VALUES (?,?,?)",
                        [(i, name, _token("PIN", i, 37)) for i in ids for name in names])
    con.execute("COMMIT")
    return time.perf_counter() - t


def one(kind: str, case: str, rows: int) -> dict[str, float]:
    """One case in this (fresh) process."""
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        url = throwaway_db.create(kind, tmp, "bench_import")
        eng = db.make_engine(url)
        db.upgrade(eng)
        try:
            if case == "floor":
                eng.dispose()
                seconds = floor(rows, str(make_url(url).database))
            else:
                path = make_file(rows, ALL if case == "all" else KEYS)
                hsm = SoftHsm.init(tmp / "hsm", components=[os.urandom(32), os.urandom(32)])
                hsm.kek_add("bench-tk", KekPurpose.TRANSPORT, [TRANSPORT])
                t = time.perf_counter()
                r = import_file(eng, hsm, path)
                seconds = time.perf_counter() - t
                assert r.imported == rows, r.as_dict()
        finally:
            eng.dispose()
            throwaway_db.drop(url)
    return {"seconds": seconds,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "reader_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--one", nargs=2, metavar=("DB", "CASE"), help=argparse.SUPPRESS)
    args, _ = ap.parse_known_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.rows)))
        return
    for cols in (ALL, KEYS):
        make_file(args.rows, cols)
    size = make_file(args.rows, ALL).stat().st_size / 1e6
    print(f"# {platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}, SQLite "
          f"{sqlite3.sqlite_version}; all-column file {size:.0f} MB")
    print("| case | database | rows | seconds | rows/s | peak MB (importer / reader) | goal |")
    print("|---|---|---|---|---|---|---|")
    for kind in args.db.split(","):
        for case in ("all", "keys", "floor"):
            if case == "floor" and kind != "sqlite":
                continue
            out = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--one",
                                  kind, case], capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                print(f"| {case} | {kind} | failed: {out.stderr.strip()[-300:]} |")
                continue
            m = json.loads(out.stdout.strip().splitlines()[-1])
            goal = ""
            if case == "all" and kind == "sqlite":
                per_m = m["seconds"] * 1_000_000 / args.rows
                ok_t = "met" if per_m <= GOAL_SECONDS else "NOT met"
                ok_m = "met" if max(m["rss_mb"], m["reader_rss_mb"]) <= GOAL_MB else "NOT met"
                goal = (f"<= {GOAL_SECONDS:.0f} s per 1M: {ok_t} ({per_m:.1f} s); "
                        f"<= {GOAL_MB:.0f} MB: {ok_m}")
            label = {"all": "import, every column", "keys": "import, EKI+EOPC only (ref.)",
                     "floor": "store floor: same rows, executemany only (ref.)"}[case]
            mem = (f"{m['rss_mb']:.0f} / {m['reader_rss_mb']:.0f}" if case != "floor"
                   else f"{m['rss_mb']:.0f}")
            print(f"| {label} | {kind} | {args.rows:,} | {m['seconds']:.2f} | "
                  f"{args.rows / m['seconds']:,.0f} | {mem} | {goal} |", flush=True)


if __name__ == "__main__":
    main()
