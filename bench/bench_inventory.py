"""Inventory hot paths: generating SIM records and concurrent allocation.

    .venv/bin/python bench/bench_inventory.py [--db sqlite,postgresql] [--generate 1000000]
                                              [--allocations 20000]

- generate: `simcore.inventory.generate_sims` (range cursor, Luhn digits, one bulk insert:
  executemany on SQLite, COPY on PostgreSQL) beside the naive way measured in the same run (one
  ORM object per SIM, each ICCID/IMSI validated, `session.add` each, one commit).
- allocate: 32 concurrent allocators (4 processes x 8 threads, as 4 API workers would run),
  each `inventory.allocate` a full transaction with audit and outbox records; on PostgreSQL
  beside the same allocation with plain `FOR UPDATE` instead of `SKIP LOCKED`.
PostgreSQL comes from SIMSMITH_TEST_PG_URL (scripts/bench.sh starts a throwaway cluster).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import throwaway_db
from simcore import db, inventory, ranges
from simcore.identifiers import Iccid, Imsi
from simcore.models import Batch, Sim

ICCIDS = (Iccid.from_body("8988211000000000000").digits,
          Iccid.from_body("8988211099999999999").digits)
IMSIS = ("001010000000000", "001019999999999")


def prepared(url: str) -> Engine:
    eng = db.make_engine(url)
    db.upgrade(eng)
    ranges.add_range(eng, "iccid", *ICCIDS, name="i", actor="bench")
    ranges.add_range(eng, "imsi", *IMSIS, name="m", actor="bench")
    return eng


def bench_generate(url: str, n: int) -> float:
    eng = prepared(url)
    t = time.perf_counter()
    inventory.generate_sims(eng, n, batch="bench", actor="bench")
    dt = time.perf_counter() - t
    eng.dispose()
    return dt


def bench_generate_naive(url: str, n: int) -> float:
    eng = prepared(url)
    t = time.perf_counter()
    with db.transaction(eng) as s:
        b = Batch(name="naive", source="generated", row_count=n)
        s.add(b)
        s.flush()
        for i in range(n):
            iccid = Iccid.from_body(str(int(ICCIDS[0][:-1]) + i))
            imsi = Imsi.parse(str(int(IMSIS[0]) + i).zfill(15))
            s.add(Sim(iccid=iccid.digits, imsi=imsi.digits, state="in_stock", batch_id=b.id))
    dt = time.perf_counter() - t
    eng.dispose()
    return dt


def _alloc_proc(url: str, threads: int, per_thread: int, skip_locked: bool, start_at: float,
                out: mp.Queue) -> None:  # type: ignore[type-arg]
    eng = db.make_engine(url, pool_size=threads)
    if not skip_locked:
        # The naive pick: every allocator queues on the same first in-stock row.
        from sqlalchemy.sql import Select

        original = Select.with_for_update

        def plain(self, **kw):  # type: ignore[no-untyped-def]
            kw.pop("skip_locked", None)
            return original(self, **kw)

        Select.with_for_update = plain  # type: ignore[method-assign]
    errors = 0
    done = 0
    lock = threading.Lock()

    def work(k: int) -> None:
        nonlocal errors, done
        for i in range(per_thread):
            try:
                inventory.allocate(eng, f"{os.getpid()}-{k}-{i}", actor="bench")
                with lock:
                    done += 1
            except Exception:
                with lock:
                    errors += 1

    while time.time() < start_at:
        time.sleep(0.001)
    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for x in ts:
        x.start()
    for x in ts:
        x.join()
    out.put((done, errors))


def bench_allocate(url: str, total: int, skip_locked: bool = True, procs: int = 4,
                   threads: int = 8) -> tuple[float, int, int]:
    eng = prepared(url)
    inventory.generate_sims(eng, total + 1000, batch="stock", actor="bench")
    eng.dispose()
    per_thread = total // (procs * threads)
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    start_at = time.time() + 3.0  # let every process import and connect first
    ps = [ctx.Process(target=_alloc_proc, args=(url, threads, per_thread, skip_locked, start_at,
                                                q)) for _ in range(procs)]
    for p in ps:
        p.start()
    results = [q.get() for _ in ps]
    dt = time.time() - start_at
    for p in ps:
        p.join()
    done = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    eng = db.make_engine(url)
    with eng.connect() as c:
        allocated = c.execute(text("SELECT count(*), count(DISTINCT subscriber_ref) FROM sim "
                                   "WHERE state = 'allocated'")).one()
    eng.dispose()
    assert allocated[0] == allocated[1] == done, (allocated, done)
    return dt, done, errors


def machine() -> str:
    cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"],
                         capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} cores, {cpu or platform.processor()}, "
            f"Python {platform.python_version()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--generate", type=int, default=1_000_000)
    ap.add_argument("--naive", type=int, default=50_000, help="SIMs for the naive generator")
    ap.add_argument("--allocations", type=int, default=20_000)
    ap.add_argument("--procs", type=int, default=4, help="allocator processes (x --threads = 32)")
    ap.add_argument("--threads", type=int, default=8, help="allocator threads per process")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    n = args.procs * args.threads
    print("| database | operation | count | seconds | per second | vs naive |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.db.split(","):
            if kind == "postgresql" and not os.environ.get("SIMSMITH_TEST_PG_URL"):
                print(f"| {kind} | skipped: SIMSMITH_TEST_PG_URL not set | | | | |")
                continue
            with throwaway_db.database(kind, Path(tmp)) as url:
                naive = bench_generate_naive(url, args.naive)
            naive_rate = args.naive / naive
            print(f"| {kind} | generate, naive ORM | {args.naive:,} | {naive:.2f} | "
                  f"{naive_rate:,.0f} | 1.0x |")
            with throwaway_db.database(kind, Path(tmp)) as url:
                fast = bench_generate(url, args.generate)
            rate = args.generate / fast
            print(f"| {kind} | generate | {args.generate:,} | {fast:.2f} | {rate:,.0f} | "
                  f"{rate / naive_rate:.1f}x |")
            with throwaway_db.database(kind, Path(tmp)) as url:
                dt, done, errors = bench_allocate(url, args.allocations, procs=args.procs,
                                                  threads=args.threads)
            arate = done / dt
            if kind == "postgresql":
                with throwaway_db.database(kind, Path(tmp)) as url:
                    ndt, ndone, nerr = bench_allocate(url, args.allocations, skip_locked=False,
                                                      procs=args.procs, threads=args.threads)
                nrate = ndone / ndt
                print(f"| {kind} | allocate, {n} concurrent, plain FOR UPDATE | {ndone:,} | "
                      f"{ndt:.2f} | {nrate:,.0f} | 1.0x |")
                errors += nerr
                print(f"| {kind} | allocate, {n} concurrent, SKIP LOCKED | {done:,} | {dt:.2f} | "
                      f"{arate:,.0f} | {arate / nrate:.1f}x |")
            else:
                print(f"| {kind} | allocate, {n} concurrent | {done:,} | {dt:.2f} | "
                      f"{arate:,.0f} | |")
            if errors:
                print(f"  ({errors} allocation errors)")


if __name__ == "__main__":
    main()
