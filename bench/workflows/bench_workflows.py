"""Activations end to end through the durable workflow engine with osmo-hlr live (issue 18
item 6): SQLite and PostgreSQL, 2 worker processes.

What a figure includes: for each activation, the run recorded (start_activation: one
transaction), then in a worker process every step — validate, reserve the SIM (claim with SKIP
LOCKED), assign the MSISDN, keys ready (a read), the HLR (the HSM re-wraps K/OPc for osmo-hlr's
clear target; CTRL: info-aud, create + aud3g + msisdn, one pipelined round each), mark active,
notify (outbox) — each step recorded in its own transaction, with the audit log and outbox
writes the lifecycle makes. Physical SIMs (the eSIM path adds the SM-DP+ order; measured with
--kind esim against the in-process SM-DP+).

Two measures:
- throughput: N runs recorded first, then the 2 worker processes drain them; runs / seconds
  from the workers' start to the last run's finish (read from the runs' finished_at);
- latency at an offered rate (open loop): runs recorded at --rate per second for --seconds,
  each run's latency = finished_at - created_at (as stored), p50 / p99.

    python bench/workflows/bench_workflows.py [--db sqlite|postgresql] [--count 2000]
        [--rate 100] [--seconds 10] [--threads 2] [--kind physical|esim]

PostgreSQL needs SIMSMITH_TEST_PG_URL (scripts/services/postgres.sh). A private osmo-hlr is
started on its own loopback address (never the shared one of scripts/services/osmohlr.sh).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

PASSPHRASE = "bench only"
HLR_CFG = """log stderr
 logging filter all 1
 logging color 0
 logging level main error
 logging level db error
 logging level auc error
 logging level linp error
line vty
 bind {host}
ctrl
 bind {host}
hlr
 gsup
  bind ip {host}
"""


def start_osmo_hlr(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("osmo-hlr")
    if binary is None:
        sys.exit("osmo-hlr not installed (apt package osmo-hlr)")
    for _ in range(50):
        host = f"127.0.{random.randint(10, 250)}.{random.randint(2, 250)}"
        with socket.socket() as s:
            try:
                s.bind((host, 4259))
                break
            except OSError:
                continue
    (directory / "hlr.cfg").write_text(HLR_CFG.format(host=host))
    proc = subprocess.Popen([binary, "-c", str(directory / "hlr.cfg"), "-l",
                             str(directory / "hlr.db")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex((host, 4259)) == 0:
                return proc, host
        time.sleep(0.05)
    proc.kill()
    sys.exit("osmo-hlr did not start")


def make_store(kind: str, directory: Path) -> str:
    from simcore import db

    if kind == "sqlite":
        url = f"sqlite:///{directory / 'bench.db'}"
    else:
        admin = os.environ.get("SIMSMITH_TEST_PG_URL")
        if not admin:
            sys.exit("PostgreSQL: set SIMSMITH_TEST_PG_URL (scripts/services/postgres.sh)")
        name = f"bench_wf_{uuid.uuid4().hex[:8]}"
        eng = create_engine(admin, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        eng.dispose()
        url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    eng = db.make_engine(url)
    db.upgrade(eng)
    eng.dispose()
    return url


def seed(url: str, hsm_dir: Path, count: int, kind: str) -> None:
    from hsm_sim.hsm import KekPurpose
    from hsm_sim.soft import SoftHsm
    from simcore import db, inventory, keys, msisdn_pool, ranges
    from simcore.identifiers import Iccid
    from simcore.smdp.stock import stock_profiles

    eng = db.make_engine(url)
    hsm = SoftHsm.init(hsm_dir, passphrase=PASSPHRASE, scrypt_n=2**10)
    hsm.kek_add("bench-hlr", KekPurpose.EXPORT, insecure_clear=True)
    ranges.add_range(eng, "iccid", Iccid.from_body("8988280000000000000").digits,
                     Iccid.from_body("8988280000009999999").digits, name="i", actor="bench")
    ranges.add_range(eng, "imsi", "001010000000000", "001010009999999", name="m",
                     actor="bench")
    inventory.generate_sims(eng, count, batch="b", actor="bench", kind=kind)
    keys.generate_keys(eng, hsm, actor="bench", batch="b", codes=())
    if kind == "esim":
        stock_profiles(eng, actor="bench")
    last = 447700000000 + count - 1
    msisdn_pool.add_msisdn_range(eng, "+447700000000", f"+{last}", name="n", actor="bench")
    eng.dispose()


def worker_main(url: str, hsm_dir: str, host: str, threads: int) -> None:
    """A worker process: `threads` workers until SIGTERM (as `simsmith worker` runs them)."""
    from hsm_sim.soft import SoftHsm
    from simcore import db
    from simcore.ports.osmo_hlr import OsmoHlr
    from simcore.smdp.in_process import InProcessSmdp
    from simcore.workflows.runtime import WorkerPool, WorkflowSettings
    from simcore.workflows.steps import Deps

    warnings.simplefilter("ignore")
    eng = db.make_engine(url)
    hsm = SoftHsm.open(Path(hsm_dir), passphrase=PASSPHRASE)
    deps = Deps(eng, OsmoHlr(hsm, "bench-hlr", host), InProcessSmdp(eng, "smdp.bench.test"),
                hsm)
    settings = WorkflowSettings(workflow_poll_seconds=0.005, workflow_batch=1,
                                workflow_threads=threads)
    pool = WorkerPool(eng, deps, settings).start()
    signal.signal(signal.SIGTERM, lambda *_: pool.stop(timeout=0))
    pool.wait()
    pool.stop()


def start_workers(url: str, hsm_dir: Path, host: str, threads: int, n: int = 2
                  ) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, __file__, "--role", "worker", "--url", url,
                              "--hsm", str(hsm_dir), "--hlr", host, "--threads", str(threads)],
                             cwd=ROOT) for _ in range(n)]


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def runs(url: str) -> list[tuple[str, float | None, float | None]]:
    from simcore import db
    from simcore.workflows.models import Workflow

    eng = db.make_engine(url)
    with db.read_session(eng) as s:
        rows = s.execute(select(Workflow.status, Workflow.created_at, Workflow.finished_at)
                         ).all()
    eng.dispose()
    return [(st, c.timestamp(), f.timestamp() if f else None) for st, c, f in rows]


def wait_done(url: str, n: int, timeout: float) -> list[tuple[str, float | None, float | None]]:
    deadline = time.monotonic() + timeout
    while True:
        got = runs(url)
        if sum(1 for st, _, _ in got if st in ("succeeded", "failed", "stuck")) >= n:
            return got
        if time.monotonic() > deadline:
            return got
        time.sleep(0.25)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", default="main")
    ap.add_argument("--url")
    ap.add_argument("--hsm")
    ap.add_argument("--hlr")
    ap.add_argument("--db", default="sqlite", choices=("sqlite", "postgresql"))
    ap.add_argument("--count", type=int, default=1500)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--kind", default="physical", choices=("physical", "esim"))
    a = ap.parse_args()
    if a.role == "worker":
        worker_main(a.url, a.hsm, a.hlr, a.threads or 1)
        return
    from simcore import db
    from simcore.workflows.service import start_activation

    warnings.simplefilter("ignore")
    threads = a.threads or (2 if a.db == "sqlite" else 4)
    tmp = Path(tempfile.mkdtemp(prefix="bench-wf-"))
    hlr, host = start_osmo_hlr(tmp)
    try:
        offered = int(a.rate * a.seconds)
        url = make_store(a.db, tmp)
        seed(url, tmp / "hsm", a.count + offered + 10, a.kind)
        eng = db.make_engine(url)
        # 1. throughput: record N runs, then let 2 worker processes drain them.
        t0 = time.perf_counter()
        for i in range(a.count):
            start_activation(eng, {"subscriber_ref": f"t{i}", "kind": a.kind}, actor="bench")
        record_s = time.perf_counter() - t0
        started = time.time()
        procs = start_workers(url, tmp / "hsm", host, threads)
        got = wait_done(url, a.count, 600)
        stop_workers(procs)
        done = [f for st, _, f in got if st == "succeeded" and f]
        failed = sum(1 for st, _, _ in got if st != "succeeded")
        # the workers' start-up (imports, HSM open) is left out: from the first finish on
        first = min(done)
        tput = (len(done) - 1) / (max(done) - first) if len(done) > 1 else 0.0
        print(f"{a.db} {a.kind}: recording {a.count} runs: {a.count / record_s:,.0f}/s; "
              f"throughput with 2 worker processes x {threads} threads: {tput:,.0f} "
              f"activations/s ({len(done)} succeeded, {failed} not; {max(done) - started:.1f} s "
              "from the workers' launch)")
        # 2. latency at an offered rate, open loop: runs recorded on schedule.
        procs = start_workers(url, tmp / "hsm", host, threads)
        time.sleep(3)  # the workers' start-up
        before = {c for _, c, _ in runs(url)}
        t0 = time.perf_counter()
        late = 0
        for i in range(offered):
            due = t0 + i / a.rate
            now = time.perf_counter()
            if now < due:
                time.sleep(due - now)
            elif now - due > 0.05:
                late += 1
            start_activation(eng, {"subscriber_ref": f"o{i}", "kind": a.kind}, actor="bench")
        got = wait_done(url, a.count + offered, 300)
        stop_workers(procs)
        lat = [(f - c) * 1000 for st, c, f in got if c not in before and st == "succeeded" and f]
        print(f"{a.db} {a.kind}: offered {a.rate:.0f}/s for {a.seconds:.0f} s ({offered} runs, "
              f"{late} recorded >50 ms late): {len(lat)} succeeded; latency created → finished "
              f"p50 {statistics.median(lat):.0f} ms, p99 {pct(lat, 99):.0f} ms, "
              f"max {max(lat):.0f} ms")
        eng.dispose()
    finally:
        hlr.terminate()
        hlr.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
