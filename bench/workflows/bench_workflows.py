"""Activations end to end through the API and the durable workflow engine with osmo-hlr live
(issue 18 item 6): SQLite and PostgreSQL, 2 worker processes.

What a figure includes: for each activation, `POST /v1/activations` to `simsmith serve` (one
process, no workflow workers in it: auth by API key, the run recorded in one transaction with
its audit and outbox records, the 202 answered from what it wrote), then in one of 2 worker
processes (`simsmith worker` as it runs: WorkerPool threads polling every --poll seconds when
idle) every step — validate, reserve the SIM (claim with SKIP LOCKED), assign the MSISDN,
keys ready, the HLR (the HSM re-wraps K/OPc for osmo-hlr's clear target; CTRL: info-aud,
then create + aud3g + msisdn pipelined), mark active, notify (outbox) — the store steps
recorded together in the transaction of the peer step before them, with the audit log and
outbox writes the lifecycle makes, and the run's finish. Physical SIMs (--kind esim adds the
in-process SM-DP+ order).

Two measures, each with the load average of the machine before and after:
- throughput, closed loop: --count requests from 32 client connections while the workers run
  what arrives; activations / seconds from the first request sent to the last run finished;
- latency at --rate per second offered for --seconds, open loop (requests sent on schedule
  whatever the answers): latency = request sent -> the run's finished_at as stored, p50 / p99.
For each, CPU seconds per activation by process, read from /proc: the API process, the worker
processes, osmo-hlr and (PostgreSQL) the server backends of the bench database; their sum
converted to what 2 cores could carry at 100 % ("2-core capacity from CPU alone"). The load
generator's own CPU is not counted.

    python bench/workflows/bench_workflows.py [--db sqlite|postgresql|both] [--count 2000]
        [--rate 100] [--seconds 30] [--threads N] [--poll 0.05] [--kind physical|esim]

PostgreSQL needs SIMSMITH_TEST_PG_URL (scripts/services/postgres.sh; `both`, the default, skips
it without). A private osmo-hlr is started on its own loopback address (never the shared one
of scripts/services/osmohlr.sh).
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
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench import throwaway_db  # noqa: E402

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
    """A throwaway database (bench/throwaway_db.py; run_db drops it), migrated."""
    from simcore import db

    url = throwaway_db.create(kind, directory, "bench_wf")
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


def worker_main(url: str, hsm_dir: str, host: str, threads: int, poll: float) -> None:
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
    settings = WorkflowSettings(workflow_poll_seconds=poll, workflow_batch=1,
                                workflow_threads=threads)
    pool = WorkerPool(eng, deps, settings).start()
    signal.signal(signal.SIGTERM, lambda *_: pool.stop(timeout=0))
    pool.wait()
    pool.stop()


def start_workers(url: str, hsm_dir: Path, host: str, threads: int, poll: float, n: int = 2
                  ) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, __file__, "--role", "worker", "--url", url,
                              "--hsm", str(hsm_dir), "--hlr", host, "--threads", str(threads),
                              "--poll", str(poll)], cwd=ROOT) for _ in range(n)]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_api(url: str, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`simsmith serve` (one process, no workflow workers in it: the 2 worker processes run
    the runs), the in-process SM-DP+."""
    port = free_port()
    env = {**os.environ, "SIMSMITH_DATABASE_URL": url, "SIMSMITH_HOME": str(home),
           "SIMSMITH_WORKFLOW_WORKER": "0", "SIMSMITH_WEBHOOKS_ENABLED": "0",
           "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--smdp", "in-process"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, base
        if proc.poll() is not None:
            sys.exit("simsmith serve exited at start")
        time.sleep(0.05)
    proc.kill()
    sys.exit("simsmith serve did not start")


# --- CPU accounting -----------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a live process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


class CpuMeter:
    """CPU seconds by role: the API process, the worker processes, osmo-hlr, and the database
    server's backends serving the bench database (PostgreSQL; SQLite runs inside the others)."""

    def __init__(self, roles: dict[str, list[int]], pg_admin: str | None, database: str | None
                 ) -> None:
        self.roles, self.pg_admin, self.database = roles, pg_admin, database

    def _backends(self) -> list[int]:
        if not self.pg_admin:
            return []
        eng = create_engine(self.pg_admin)
        with eng.connect() as c:
            pids = [int(p) for p in c.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": self.database}
            ).scalars()]
        eng.dispose()
        return pids

    def sample(self) -> dict[str, dict[int, float]]:
        got = {role: {p: cpu_of(p) for p in pids} for role, pids in self.roles.items()}
        got["db server"] = {p: cpu_of(p) for p in self._backends()}
        return got

    @staticmethod
    def spent(a: dict[str, dict[int, float]], b: dict[str, dict[int, float]]
              ) -> dict[str, float]:
        return {role: sum(v - a[role].get(p, 0.0) for p, v in b[role].items()) for role in b}


# --- load ---------------------------------------------------------------------------------


class Client:
    """POST /v1/activations from a pool of threads, one keep-alive connection each; records
    each run's id and when its request was sent (wall clock, as the store's timestamps)."""

    def __init__(self, base: str, key: str, kind: str, threads: int) -> None:
        import httpx

        self._local = threading.local()
        self._new = lambda: httpx.Client(base_url=base, timeout=30.0,
                                         headers={"Authorization": f"Bearer {key}"})
        self.kind = kind
        self.sent: dict[str, float] = {}
        self.errors = 0
        self.pool = ThreadPoolExecutor(threads)
        self._lock = threading.Lock()

    def post(self, ref: str) -> None:
        c = getattr(self._local, "c", None)
        if c is None:
            c = self._local.c = self._new()
        t = time.time()
        try:
            r = c.post("/v1/activations", json={"subscriber_ref": ref, "kind": self.kind})
            r.raise_for_status()
            wid = r.json()["id"]
        except Exception:
            with self._lock:
                self.errors += 1
            return
        with self._lock:
            self.sent[wid] = t


def finished(url: str, ids: set[str]) -> dict[str, tuple[str, float | None]]:
    from simcore import db
    from simcore.workflows.models import Workflow

    eng = db.make_engine(url)
    with db.read_session(eng) as s:
        rows = s.execute(select(Workflow.id, Workflow.status, Workflow.finished_at)).all()
    eng.dispose()
    return {i: (st, f.timestamp() if f else None) for i, st, f in rows if i in ids}


def wait_finished(url: str, ids: set[str], timeout: float
                  ) -> dict[str, tuple[str, float | None]]:
    deadline = time.monotonic() + timeout
    while True:
        got = finished(url, ids)
        done = sum(1 for st, _ in got.values() if st in ("succeeded", "failed", "stuck"))
        if done >= len(ids) or time.monotonic() > deadline:
            return got
        time.sleep(0.25)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def report_cpu(label: str, spent: dict[str, float], n: int) -> None:
    per = {k: v * 1000 / max(n, 1) for k, v in spent.items()}
    total = sum(per.values())
    parts = ", ".join(f"{k} {v:.2f}" for k, v in per.items())
    print(f"  {label}: CPU per activation (ms): {parts}; total {total:.2f} -> 2-core capacity "
          f"from CPU alone: {2000 / total:,.0f} activations/s" if total else "  (no CPU)")


def run_db(a: argparse.Namespace, dbkind: str) -> None:
    from simcore import apikeys, db

    threads = a.threads or (2 if dbkind == "sqlite" else 4)
    tmp = Path(tempfile.mkdtemp(prefix="bench-wf-"))
    hlr, host = start_osmo_hlr(tmp)
    procs: list[subprocess.Popen[bytes]] = []
    url: str | None = None
    try:
        offered = int(a.rate * a.seconds)
        url = make_store(dbkind, tmp)
        seed(url, tmp / "hsm", a.count + offered + 100, a.kind)
        eng = db.make_engine(url)
        key = apikeys.create(eng, "bench", ["sims:write", "sims:read"], actor="bench")[1]
        eng.dispose()
        api, base = start_api(url, tmp / "home")
        procs = [api]
        workers = start_workers(url, tmp / "hsm", host, threads, a.poll)
        procs += workers
        pg = os.environ.get("SIMSMITH_TEST_PG_URL") if dbkind == "postgresql" else None
        meter = CpuMeter({"API": [api.pid], "workers": [w.pid for w in workers],
                          "osmo-hlr": [hlr.pid]}, pg, make_url(url).database)
        client = Client(base, key, a.kind, 32)
        for i in range(20):  # warm-up: imports, connections, the HSM opened in each worker
            client.post(f"w{i}")
        wait_finished(url, set(client.sent), 120)
        print(f"{dbkind} {a.kind}, 2 worker processes x {threads} threads (poll "
              f"{a.poll * 1000:.0f} ms), one API process, osmo-hlr live:")

        # 1. throughput (skipped with --count 0)
        if a.count:  # --count 0: latency only
            throughput(a, url, client, meter)

        latency(a, url, client, meter, offered)
    finally:
        stop(procs)
        hlr.terminate()
        hlr.wait(10)
        if url is not None:
            throwaway_db.drop(url)
        shutil.rmtree(tmp, ignore_errors=True)


def throughput(a: argparse.Namespace, url: str, client: Client, meter: CpuMeter) -> None:
    """Closed loop: --count requests from the client's 32 connections while the workers run
    what arrives; from the first request sent to the last run finished."""
    client.sent.clear()
    before, l0 = meter.sample(), load()
    t0 = time.time()
    list(client.pool.map(client.post, [f"t{i}" for i in range(a.count)]))
    api_s = time.time() - t0
    got = wait_finished(url, set(client.sent), 600)
    after = meter.sample()
    ends = [f for st, f in got.values() if st == "succeeded" and f]
    ok = len(ends)
    print(f"  throughput end to end: {ok / (max(ends) - t0):,.0f} activations/s ({ok} of "
          f"{a.count} succeeded, {client.errors} requests refused; the API took them at "
          f"{a.count / api_s:,.0f}/s), load average {l0} -> {load()}")
    report_cpu("throughput run", CpuMeter.spent(before, after), ok)


def latency(a: argparse.Namespace, url: str, client: Client, meter: CpuMeter, offered: int
            ) -> None:
    """Open loop at --rate for --seconds: each request sent on schedule whatever the others
    are doing; latency = request sent -> the run's finished_at as stored."""
    client.sent.clear()
    before, l0 = meter.sample(), load()
    t0 = time.perf_counter()
    late = 0
    futures = []
    for i in range(offered):
        due = t0 + i / a.rate
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        elif now - due > 0.05:
            late += 1
        futures.append(client.pool.submit(client.post, f"o{i}"))
    for f in futures:
        f.result()
    got = wait_finished(url, set(client.sent), 300)
    after = meter.sample()
    lat = [(f - client.sent[i]) * 1000 for i, (st, f) in got.items()
           if st == "succeeded" and f]
    print(f"  offered {a.rate:.0f}/s for {a.seconds:.0f} s, open loop ({offered} requests, "
          f"{late} sent >50 ms late, {client.errors} refused): {len(lat)} succeeded; "
          f"latency request -> finished p50 {statistics.median(lat):.0f} ms, p99 "
          f"{pct(lat, 99):.0f} ms, max {max(lat):.0f} ms; load average {l0} -> {load()}")
    report_cpu(f"at {a.rate:.0f}/s", CpuMeter.spent(before, after), len(lat))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", default="main")
    ap.add_argument("--url")
    ap.add_argument("--hsm")
    ap.add_argument("--hlr")
    ap.add_argument("--db", default="both", choices=("sqlite", "postgresql", "both"))
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--poll", type=float, default=0.05)
    ap.add_argument("--kind", default="physical", choices=("physical", "esim"))
    a = ap.parse_args()
    if a.role == "worker":
        worker_main(a.url, a.hsm, a.hlr, a.threads or 1, a.poll)
        return
    warnings.simplefilter("ignore")
    dbs = ["sqlite", "postgresql"] if a.db == "both" else [a.db]
    if a.db == "both" and not os.environ.get("SIMSMITH_TEST_PG_URL"):
        print("PostgreSQL skipped: SIMSMITH_TEST_PG_URL not set (scripts/services/postgres.sh)")
        dbs = ["sqlite"]
    for d in dbs:
        run_db(a, d)


if __name__ == "__main__":
    main()
