"""Importing a vendor output file end to end: `simcore.vendor_import.import_file` on a
1,000,000-row .out file with encrypted Ki and OPc (EKI/EOPC, AES-128-ECB under a transport key).

    .venv/bin/python bench/import/bench_import.py [--rows 1000000] [--db sqlite,postgresql]

End to end = hash the file, read and validate every row (Luhn, consecutive ICCID/IMSI, PLMN,
duplicates in the file and against the store, hex lengths), unwrap and re-wrap every key inside
the soft HSM, bulk-insert SIMs (executemany / COPY) in one transaction, one audit event, commit.
The file is generated once into build/bench/ (not timed). PostgreSQL from SIMSMITH_TEST_PG_URL.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hsm_sim.hsm import KekPurpose
from hsm_sim.kcv import kcv
from hsm_sim.soft import SoftHsm
from simcore import db
from simcore.identifiers import luhn_check_digit
from simcore.vendor_import import import_file

TRANSPORT = bytes(range(16))
BUILD = Path(__file__).resolve().parents[2] / "build" / "bench"


def make_file(rows: int) -> Path:
    path = BUILD / f"vendor-{rows}.out"
    if path.exists():
        return path
    BUILD.mkdir(parents=True, exist_ok=True)
    enc = Cipher(algorithms.AES(TRANSPORT), modes.ECB()).encryptor()
    body0, imsi0 = 894900100000000000, 1010000000000
    with open(path, "w") as f:
        f.write(f"*\n* HEADER DESCRIPTION\n*\nCustomer: Bench Mobile\nQuantity: {rows}\n"
                f"Type: USIM\nProfile: P1\nBatch: BENCH-{rows}\n"
                f"Transport_key: bench-tk KCV={kcv(TRANSPORT).hex().upper()}\n*\n"
                f"Var_In_List:\nICCID: {body0}{luhn_check_digit(str(body0))}\n"
                f"IMSI: {imsi0:015d}\n*\nvar_out: ICCID/IMSI/EKI/EOPC\n")
        step = 100_000
        for start in range(0, rows, step):
            n = min(step, rows - start)
            keys = enc.update(os.urandom(32 * n)).hex().upper()
            out = []
            for i in range(n):
                b = str(body0 + start + i)
                k = keys[64 * i : 64 * i + 64]
                out.append(f"{b}{luhn_check_digit(b)} {imsi0 + start + i:015d} {k[:32]} {k[32:]}\n")
            f.write("".join(out))
    return path


def fresh_url(kind: str, tmp: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}", None
    admin = os.environ.get("SIMSMITH_TEST_PG_URL")
    if not admin:
        raise SystemExit("SIMSMITH_TEST_PG_URL is not set (scripts/services/postgres.sh start)")
    name = f"bench_import_{uuid.uuid4().hex[:8]}"
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return make_url(admin).set(database=name).render_as_string(hide_password=False), name


def drop(name: str) -> None:
    eng = create_engine(os.environ["SIMSMITH_TEST_PG_URL"], isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db", default="sqlite,postgresql")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    path = make_file(args.rows)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; file {path.name} {path.stat().st_size / 1e6:.0f} MB")
    print("| database | rows | seconds | rows/s |")
    print("|---|---|---|---|")
    for kind in args.db.split(","):
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            url, name = fresh_url(kind, tmp)
            eng = db.make_engine(url)
            db.upgrade(eng)
            hsm = SoftHsm.init(tmp / "hsm", components=[os.urandom(32), os.urandom(32)])
            hsm.kek_add("bench-tk", KekPurpose.TRANSPORT, [TRANSPORT])
            t = time.perf_counter()
            r = import_file(eng, hsm, path)
            dt = time.perf_counter() - t
            assert r.imported == args.rows, r.as_dict()
            print(f"| {kind} | {args.rows:,} | {dt:.2f} | {args.rows / dt:,.0f} |", flush=True)
            eng.dispose()
            if name:
                drop(name)


if __name__ == "__main__":
    main()
