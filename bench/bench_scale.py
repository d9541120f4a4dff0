"""Inventory queries as the store grows: p50/p99 at 10k, 1M and 10M SIMs, half of them sold.

    .venv/bin/python bench/bench_scale.py [--db postgresql,sqlite] [--sizes 10000,1000000]
                                          [--samples 400] [--mixed]

For each database and size, a fresh store is filled with `inventory.generate_sims` (COPY on
PostgreSQL, executemany on SQLite), then the lowest half of the ICCIDs is marked sold (active,
with an MSISDN and a subscriber), as allocation leaves a store, and the planner statistics are
refreshed (ANALYZE). Then each operation runs `--samples` times on random subjects through the
same service functions the API and CLI call:
- lookups by ICCID, IMSI and MSISDN (`get_sim`, `find_sim`);
- the first page (100) of in-stock SIMs, of SIMs of one kind, and a page after a random
  in-stock cursor (`list_sims`);
- `inventory summary` (SIM counts by kind and state, batches, ranges, MSISDN pool);
- allocate then activate one SIM (a write transaction each, audit and outbox included).
With `--mixed` (SQLite) the lookups run again while another process allocates without pause,
which is what made SQLite's lookup tail grow with the store (issue #14).

Each figure is printed with its ratio to the smallest size; the goal is p99 within 1.5x of 10k.
The script exits 0 whether or not a goal is met.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import throwaway_db
from simcore import db, inventory, ranges
from simcore.identifiers import Iccid

FIRST_ICCID = Iccid.from_body("8988211000000000000").digits
LAST_ICCID = Iccid.from_body("8988211099999999999").digits
IMSIS = ("001010000000000", "001019999999999")
GOAL = 1.5


def fill(url: str, n: int) -> tuple[Engine, float]:
    eng = db.make_engine(url)
    db.upgrade(eng)
    ranges.add_range(eng, "iccid", FIRST_ICCID, LAST_ICCID, name="i", actor="bench")
    ranges.add_range(eng, "imsi", *IMSIS, name="m", actor="bench")
    t = time.perf_counter()
    left = n
    k = 0
    while left:  # physical and eSIM batches, as a real store holds both
        step = min(left, max(n // 4, 1))
        inventory.generate_sims(eng, step, batch=f"b{k}", actor="bench",
                                kind="physical" if k % 2 == 0 else "esim")
        left -= step
        k += 1
    with db.transaction(eng) as s:  # the lowest half sold, as allocation in ICCID order does
        s.execute(text(
            "UPDATE sim SET state = 'active', msisdn = '44' || substr(imsi, 6), "
            "subscriber_ref = 'cust-' || substr(imsi, 6) WHERE iccid IN "
            "(SELECT iccid FROM sim ORDER BY iccid LIMIT :half)"), {"half": n // 2})
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("ANALYZE"))
    return eng, time.perf_counter() - t


def timed(fn: Callable[[], object], samples: int) -> tuple[float, float]:
    out = []
    for _ in range(samples):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    out.sort()
    return statistics.median(out) * 1e3, out[min(len(out) - 1, int(len(out) * 0.99))] * 1e3


def subjects(eng: Engine, k: int = 2000) -> tuple[list[str], list[str], list[str], list[str]]:
    with eng.connect() as c:
        n = int(c.execute(text("SELECT count(*) FROM sim")).scalar_one())
        rnd = random.Random(7)
        # Random rows by offset into the ICCID order (a few hundred, read once, not timed).
        offs = sorted(rnd.randrange(n) for _ in range(min(k, 300)))
        iccids, imsis = [], []
        for o in offs:
            row = c.execute(text("SELECT iccid, imsi FROM sim ORDER BY iccid LIMIT 1 OFFSET :o"),
                            {"o": o}).one()
            iccids.append(row[0])
            imsis.append(row[1])
        sold = [r[0] for r in c.execute(text(
            "SELECT msisdn FROM sim WHERE msisdn IS NOT NULL ORDER BY iccid LIMIT 300"))]
        stock = [r[0] for r in c.execute(text(
            "SELECT iccid FROM sim WHERE state = 'in_stock' ORDER BY iccid LIMIT 300 OFFSET 1000"))]
    return iccids, imsis, sold, stock


def _allocator(url: str, stop_at: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    eng = db.make_engine(url, pool_size=2)
    done = 0
    while time.time() < stop_at:
        inventory.allocate(eng, f"mixed-{os.getpid()}-{done}", actor="bench")
        done += 1
    out.put(done)


def measure(url: str, eng: Engine, samples: int, mixed: bool) -> dict[str, tuple[float, float]]:
    iccids, imsis, msisdns, stock = subjects(eng)
    rnd = random.Random(11)
    ops: dict[str, Callable[[], object]] = {
        "lookup by ICCID": lambda: inventory.get_sim(eng, rnd.choice(iccids)),
        "lookup by IMSI": lambda: inventory.find_sim(eng, imsi=rnd.choice(imsis)),
        "lookup by MSISDN": lambda: inventory.find_sim(eng, msisdn=rnd.choice(msisdns)),
        "in-stock list, first page": lambda: inventory.list_sims(eng, state="in_stock"),
        "list by kind, first page": lambda: inventory.list_sims(eng, kind="esim"),
        "in-stock page after a cursor": lambda: inventory.list_sims(
            eng, state="in_stock", after=rnd.choice(stock)),
        "inventory summary": lambda: inventory.summary(eng),
    }
    res = {name: timed(fn, samples) for name, fn in ops.items()}
    counter = iter(range(10**9))

    def alloc_activate() -> None:
        sim = inventory.allocate(eng, f"bench-{next(counter)}", actor="bench")
        inventory.activate(eng, sim.iccid, actor="bench")

    res["allocate + activate"] = timed(alloc_activate, max(samples // 4, 50))
    if mixed:
        ctx = mp.get_context("spawn")
        q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        stop_at = time.time() + 600
        p = ctx.Process(target=_allocator, args=(url, stop_at, q))
        p.start()
        time.sleep(2.0)  # the allocator is importing and connecting
        try:
            res["lookup by ICCID, allocations running"] = timed(ops["lookup by ICCID"], samples)
            res["lookup by IMSI, allocations running"] = timed(ops["lookup by IMSI"], samples)
        finally:
            p.terminate()
            p.join()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default="postgresql,sqlite")
    ap.add_argument("--sizes", default="10000,1000000")
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--mixed", action="store_true", help="also lookups beside an allocator")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    print(f"# scale: {os.cpu_count()} CPUs, sizes {sizes}, {args.samples} samples, "
          f"half of each store sold; times in ms (p50 / p99)")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.db.split(","):
            if kind == "postgresql" and not os.environ.get("SIMSMITH_TEST_PG_URL"):
                print("postgresql: skipped (SIMSMITH_TEST_PG_URL not set)")
                continue
            table: dict[int, dict[str, tuple[float, float]]] = {}
            for n in sizes:
                url = throwaway_db.create(kind, Path(tmp), "scale")
                eng, fill_s = fill(url, n)
                print(f"{kind} {n:>10,}: filled in {fill_s:.1f} s", flush=True)
                table[n] = measure(url, eng, args.samples, args.mixed and kind == "sqlite")
                eng.dispose()
                throwaway_db.drop(url)
            base = table[sizes[0]]
            print(f"\n{kind}: {'operation':<40}" + "".join(f"{n:>22,}" for n in sizes)
                  + f"   p99 ratio {sizes[-1]:,}/{sizes[0]:,}   goal <= {GOAL}x")
            for op in base:
                cells = "".join(f"{table[n][op][0]:>10.2f} /{table[n][op][1]:>9.2f}"
                                for n in sizes)
                ratio = table[sizes[-1]][op][1] / base[op][1]
                print(f"{kind}: {op:<40}{cells}   {ratio:>8.2f}x   "
                      f"{'met' if ratio <= GOAL else 'NOT met'}")
            print()


if __name__ == "__main__":
    main()
