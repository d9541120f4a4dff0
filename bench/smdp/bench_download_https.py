"""Complete profile downloads per second over HTTPS through `simsmith serve` (issue 16 item 8:
goal >= 200/s on 2 cores without a card), the SM-DP+'s CPU and the LPA / eUICC's CPU counted
separately.

The server is the real one: `simsmith serve --workers 2 --es9plus-port P` (api.server; each
worker serves ES9+ over TLS with CERT.DP.TLS of the lab identity it makes at start, sessions in
the store, orders and profile state through simcore.smdp.download_orders with audit and outbox
events, the UPP personalised by the soft HSM, SK.DPauth / SK.DPpb signatures in it), on
SQLite and on PostgreSQL. The store holds `--downloads` eSIMs with keys, each released under its
own matching ID in the SM-DP+'s order book (`es2plus_order`), as ES2+ ConfirmOrder leaves them.

The load is `--clients` separate processes, each an LPA — esim.lpa.download over esim.lpa's
HTTPS ES9+ client (one keep-alive connection, the lab CI trusted) — with a virtual eUICC in the
same process (ES10b over APDUs: its ECDSA, ECKA, every segment checked, the profile installed;
the eUICC forgets it between downloads). Nothing that depends on the server's challenge is made
ahead. After a warm-up of two downloads per client, every client starts at once.

Reported: downloads/s measured (wall time of the run), p50 / p99 latency of a complete download
(four ES9+ calls and the ES10 work between them), the server's CPU per download (utime + stime of
the serve process and its workers from /proc, over the run; less what the same processes spend idle
— the API's pollers — measured for 5 s between the warm-up and the run) and what it means for the
SM-DP+ alone on 2 cores (2 CPU-seconds / its CPU per download), and the clients' CPU per download,
the eUICC's ES10 part apart. On PostgreSQL the backends serving the bench's own database are
counted apart, from /proc over the run (the cluster's shared processes — WAL writer,
checkpointer — are not: the cluster is shared), and in the 2-core figure the goal is read
against: the database server runs on the same 2 cores. On a shared machine the measured rate is what
the SM-DP+ got beside the clients and everyone else; the CPU figures do not depend on that.

    .venv/bin/python bench/smdp/bench_download_https.py [--downloads 400] [--clients 4]
        [--db sqlite,postgresql] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

WARM_UP = 2  # downloads per client before the run (first TLS handshakes, first HSM use)
IDLE_SECONDS = 5.0  # the server's idle CPU is measured over this long before the run
GOAL = 200.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database(kind: str, home: Path) -> tuple[str, Callable[[], None]]:
    """A fresh database URL and how to drop it."""
    if kind == "sqlite":
        return f"sqlite:///{home / 'simsmith.db'}", lambda: None
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = os.environ.get("SIMSMITH_TEST_PG_URL")
    if not admin:
        raise SystemExit("SIMSMITH_TEST_PG_URL is not set (scripts/services/postgres.sh start)")
    name = f"bench_es9_{uuid.uuid4().hex[:8]}"
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with eng.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        eng.dispose()

    return make_url(admin).set(database=name).render_as_string(hide_password=False), drop


def _store(url: str, home: Path, matching_ids: list[str]) -> None:
    """An eSIM with keys released under each of `matching_ids`."""
    from sqlalchemy import insert, update

    from hsm_sim.errors import DevModeWarning
    from hsm_sim.soft import SoftHsm
    from simcore import db, inventory, keys, ranges
    from simcore.models import Sim, utcnow
    from simcore.smdp.models import Es2PlusOrder

    engine = db.make_engine(url)
    db.upgrade(engine)
    ranges.add_range(engine, "iccid", "8988211000000000011", "8988211000000999998",
                     name="i", actor="bench")
    ranges.add_range(engine, "imsi", "001010000000001", "001010000999999", name="m",
                     mnc_length=2, actor="bench")
    n = len(matching_ids)
    inventory.generate_sims(engine, n, batch="e", actor="bench", kind="esim")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DevModeWarning)
        hsm = SoftHsm.dev(home / "hsm")  # the development HSM `simsmith serve` opens
    keys.generate_keys(engine, hsm, actor="bench", batch="e", ota=True)
    iccids = [s.iccid for s in inventory.list_sims(engine, batch="e", limit=n)]
    now = utcnow()
    with db.connection_transaction(engine) as conn:
        conn.execute(update(Sim).where(Sim.iccid.in_(iccids))  # type: ignore[attr-defined]
                     .values(profile_state="released"))
        conn.execute(insert(Es2PlusOrder), [
            {"iccid": iccid, "requester": "bench", "matching_id": matching_id,
             "created_at": now, "updated_at": now}
            for iccid, matching_id in zip(iccids, matching_ids, strict=True)])
    engine.dispose()


class Server:
    """`simsmith serve --workers 2` with its ES9+ listener, in its own process group."""

    def __init__(self, url: str, home: Path, workers: int, threads: int = 0) -> None:
        self.port, self.es9_port = _free_port(), _free_port()
        self.address = f"127.0.0.1:{self.es9_port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIMSMITH_")}
        env.update({"SIMSMITH_DATABASE_URL": url, "SIMSMITH_HOME": str(home),
                    "SIMSMITH_LOG_LEVEL": "WARNING", "SIMSMITH_ES9PLUS_PORT": str(self.es9_port),
                    "SIMSMITH_ES9PLUS_THREADS": str(threads), "PYTHONWARNINGS": "ignore"})
        self.log = (home / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "serve", "--host", "127.0.0.1", "--port",
             str(self.port), "--workers", str(workers), "--smdp", "in-process"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.ca = home / "pki" / "rsp" / "ci.pem"  # the lab CI that issues CERT.DP.TLS
        self._wait(home)

    def _wait(self, home: Path) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: {(home / 'server.log').read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.es9_port), timeout=1):
                    if self.ca.exists():
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit("the server did not start in 180 s")

    def pids(self) -> list[int]:
        """The serve process and every descendant (workers)."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int(_stat(int(entry.name))[1])
                except (OSError, IndexError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def cpu(self) -> float:
        """CPU seconds (utime + stime) of the server's processes so far."""
        total = 0.0
        for pid in self.pids():
            try:
                fields = _stat(pid)
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _pg_backends(url: str) -> dict[int, float]:
    """PostgreSQL's backends serving the database of `url` (the bench's own database, so no
    one else's): pid -> CPU seconds so far."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = os.environ["SIMSMITH_TEST_PG_URL"]
    eng = create_engine(admin)
    try:
        with eng.connect() as c:
            pids = [int(p) for p in c.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :d"),
                {"d": make_url(url).database}).scalars()]
    finally:
        eng.dispose()
    got = {}
    for pid in pids:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        got[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return got


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: [state, ppid, …] (utime at 11, stime at 12)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _client(address: str, ca: str, rsp: str, index: int, first: int, count: int, eid: str,
            barrier: Any, results: Any) -> None:
    """LPA number `index`: WARM_UP downloads, the barrier twice (the server's idle CPU is
    measured between), then `count` downloads from BENCH-<first>;
    puts (latencies, CPU seconds, ES10 CPU seconds, failures) on `results`."""
    from esim.euicc.identity import dev_euicc
    from esim.lpa.download import download
    from esim.lpa.es9_client import HttpEs9
    from esim.lpa.functions import Es10Functions
    from simcore.euicc import EuiccLoopback, es10_session, virtual_euicc

    warnings.simplefilter("ignore")
    card = virtual_euicc(dev_euicc(Path(rsp), eid=eid, state=None))
    es10_cpu = 0.0

    def one(matching_id: str, es9: HttpEs9) -> bool:
        nonlocal es10_cpu
        card.core.state.profiles.clear()  # the eUICC forgets the last profile (same card)
        card.core.state.notifications.clear()
        with es10_session(EuiccLoopback(card)) as es10:
            def timed(*args: Any, **kwargs: Any) -> Any:
                nonlocal es10_cpu
                start = time.process_time()
                try:
                    return es10.call(*args, **kwargs)
                finally:
                    es10_cpu += time.process_time() - start
            result = download(Es10Functions(timed), es9, f"LPA:1${address}${matching_id}")
        return bool(result.success)

    latencies, failures = [], 0
    with HttpEs9(address, ca_bundle=Path(ca)) as es9:
        for i in range(WARM_UP):
            one(f"WARM-{index}-{i}", es9)
        barrier.wait()  # warmed up: the parent measures the server idle
        barrier.wait()  # the run
        es10_cpu = 0.0
        cpu0 = time.process_time()
        for i in range(first, first + count):
            start = time.perf_counter()
            ok = one(f"BENCH-{i}", es9)
            latencies.append(time.perf_counter() - start)
            failures += not ok
        cpu = time.process_time() - cpu0
    results.put((latencies, cpu, es10_cpu, failures))


def run(kind: str, n: int, clients: int, workers: int, threads: int = 0) -> dict[str, Any]:
    from esim.rsp_pki import EUM_EID_PREFIX
    from simcore.identifiers import mod97_check_digits

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        url, drop = _database(kind, home)
        try:
            _store(url, home, [f"BENCH-{i}" for i in range(n)] + [
                f"WARM-{c}-{i}" for c in range(clients) for i in range(WARM_UP)])
            server = Server(url, home, workers, threads)
            try:
                ctx = multiprocessing.get_context("fork")
                barrier = ctx.Barrier(clients + 1)
                results = ctx.Queue()
                share = [n // clients + (i < n % clients) for i in range(clients)]
                procs, first = [], 0
                for i, count in enumerate(share):
                    body = EUM_EID_PREFIX + f"{i + 1:022d}"
                    procs.append(ctx.Process(target=_client, args=(
                        server.address, str(server.ca), str(home / "pki" / "rsp"), i, first, count,
                        body + mod97_check_digits(body), barrier, results)))
                    first += count
                for p in procs:
                    p.start()
                barrier.wait(timeout=600)  # every client warmed up, now idle
                idle0, idle_wall0 = server.cpu(), time.perf_counter()
                time.sleep(IDLE_SECONDS)
                idle_rate = (server.cpu() - idle0) / (time.perf_counter() - idle_wall0)
                pg0 = _pg_backends(url) if kind == "postgresql" else {}
                barrier.wait(timeout=60)
                cpu0, wall0, load0 = server.cpu(), time.perf_counter(), os.getloadavg()[0]
                got = [results.get(timeout=600) for _ in procs]
                wall = time.perf_counter() - wall0
                server_cpu, load1 = server.cpu() - cpu0, os.getloadavg()[0]
                pg1 = _pg_backends(url) if kind == "postgresql" else {}
                # a backend gone before the end takes its CPU with it: a lower bound
                pg_cpu = sum(v - pg0.get(p, 0.0) for p, v in pg1.items())
                for p in procs:
                    p.join()
            finally:
                server.stop()
        finally:
            drop()
    latencies = sorted(x for r in got for x in r[0])
    client_cpu, es10_cpu = sum(r[1] for r in got), sum(r[2] for r in got)
    failures = sum(r[3] for r in got)
    # What the serve processes spend idle (the API's pollers: outbox relay, webhook and ES2+
    # notification senders) is not the downloads' cost: taken out at the idle rate.
    smdp_cpu = server_cpu - idle_rate * wall
    return {
        "db": kind, "downloads": n, "clients": clients, "server_workers": workers,
        "es9plus_threads": threads,
        "failures": failures,
        "downloads_per_s": round(n / wall, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
        "server_cpu_ms_per_download": round(1000 * server_cpu / n, 2),
        "server_idle_cpu_ms_per_s": round(1000 * idle_rate, 2),
        "smdp_cpu_ms_per_download": round(1000 * smdp_cpu / n, 2),
        "smdp_downloads_per_s_on_2_cores": round(2 * n / smdp_cpu, 1),
        "pg_backend_cpu_ms_per_download": round(1000 * pg_cpu / n, 2) if kind == "postgresql"
        else None,
        # what the 2 cores do with everything the SM-DP+ needs on them (PostgreSQL's backends too)
        "downloads_per_s_on_2_cores": round(2 * n / (smdp_cpu + pg_cpu), 1),
        "client_cpu_ms_per_download": round(1000 * client_cpu / n, 2),
        "euicc_es10_cpu_ms_per_download": round(1000 * es10_cpu / n, 2),
        "load_average": [round(load0, 2), round(load1, 2)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--downloads", type=int, default=400)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0,
                        help="SIMSMITH_ES9PLUS_THREADS of the server (0: the listener's thread)")
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [run(kind, args.downloads, args.clients, args.workers, args.threads)
            for kind in args.db.split(",")]
    meta = {"python": platform.python_version(), "cpus": os.cpu_count()}
    if args.json:
        print(json.dumps({"runs": rows, **meta}, indent=2))
        return 0
    print(f"complete ES9+ downloads over HTTPS, `simsmith serve --workers {args.workers}`, "
          f"SIMSMITH_ES9PLUS_THREADS={args.threads}, {args.clients} LPA processes "
          f"({meta['cpus']} CPUs, load average at start / end)")
    for r in rows:
        print(f"  {r['db']:<10} {r['downloads_per_s']:7.1f} downloads/s measured, "
              f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, failures {r['failures']}, "
              f"load {r['load_average'][0]}/{r['load_average'][1]}")
        print(f"             SM-DP+ (server processes) {r['smdp_cpu_ms_per_download']} ms CPU "
              f"per download -> {r['smdp_downloads_per_s_on_2_cores']:.1f}/s on 2 cores; "
              f"{r['server_cpu_ms_per_download']} ms with the idle work "
              f"({r['server_idle_cpu_ms_per_s']} ms/s)")
        if r["pg_backend_cpu_ms_per_download"] is not None:
            print(f"             PostgreSQL's backends of the bench database "
                  f"{r['pg_backend_cpu_ms_per_download']} ms CPU per download")
        # The database server shares the 2 cores: on PostgreSQL the goal counts its backends.
        print(f"             on 2 cores: {r['downloads_per_s_on_2_cores']:.1f}/s (goal >= "
              f"{GOAL:.0f}/s: {'met' if r['downloads_per_s_on_2_cores'] >= GOAL else 'not met'})")
        print(f"             LPA + eUICC (clients) {r['client_cpu_ms_per_download']} ms CPU per "
              f"download, of which the eUICC's ES10 {r['euicc_es10_cpu_ms_per_download']} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
