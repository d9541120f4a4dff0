"""API benchmark: eSIM orders and SIM lookups at N concurrent clients, load from separate
processes, server = `simsmith serve` (in-process SM-DP+) in its own process(es).

Closed loop (Debian's `wrk`): each of the N connections sends its next request when answered,
which measures the most the server does. Open loop (bench/api/loadgen.py): orders offered at a
fixed rate over N connections, latency counted from when each was due, which is what "500
orders/s with p99 <= 50 ms" asks about (closed loop, N / throughput is the mean latency by
Little's law, whatever the server does: 32 / 500/s = 64 ms).

    .venv/bin/python bench/api/bench_api.py --workers 2          # SQLite
    source build/services/postgres.env
    .venv/bin/python bench/api/bench_api.py --db postgresql --workers 2

Prints one Markdown table row per measure (requests/s, p50, p99, errors).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import throwaway_db  # noqa: E402
from simcore import apikeys, db, esim_orders, inventory, ranges  # noqa: E402
from simcore.identifiers import Iccid  # noqa: E402

HERE = Path(__file__).resolve().parent


def seed(url: str, physical: int, esims: int) -> tuple[str, list[str]]:
    eng = db.make_engine(url)
    db.upgrade(eng)
    ranges.add_range(eng, "iccid", Iccid.from_body("8988211000000000000").digits,
                     Iccid.from_body("8988211000009999999").digits, name="i", actor="b")
    ranges.add_range(eng, "imsi", "001010000000000", "001010009999999", name="m",
                     mnc_length=2, actor="b")
    inventory.generate_sims(eng, physical, batch="phys", actor="b")
    inventory.generate_sims(eng, esims, batch="esim", kind="esim", actor="b")
    esim_orders.stock_profiles(eng, actor="b")
    _, key = apikeys.create(eng, "bench", ["admin"], actor="b")
    iccids = [s.iccid for s in inventory.list_sims(eng, kind="physical", limit=physical)]
    eng.dispose()
    return key, iccids


def start_server(url: str, home: Path, workers: int, port: int,
                 extra_env: dict[str, str] | None = None, smdp: str = "in-process"
                 ) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMSMITH_")}
    env.update(SIMSMITH_DATABASE_URL=url, SIMSMITH_HOME=str(home), SIMSMITH_LOG_JSON="1",
               SIMSMITH_LOG_LEVEL="INFO", **(extra_env or {}))
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--smdp", smdp], env=env, stdout=log,
        stderr=subprocess.STDOUT, cwd=ROOT)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("server did not start")


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(script: str, port: int, connections: int, seconds: int, env: dict[str, str]
        ) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency",
         "-s", str(HERE / script), f"http://127.0.0.1:{port}"],
        env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))

    def parse(v: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s)", v)
        assert m, v
        return _ms(m.group(1), m.group(2))

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50": parse(lat["50"]), "p99": parse(lat["99"]),
            "errors": float(errors.group(1)) if errors else 0.0,
            "socket_errors": 1.0 if socket_errors else 0.0}


def loadgen(port: int, rate: float, connections: int, seconds: int, key: str
            ) -> dict[str, float]:
    """Orders offered at `rate`/s over `connections` (bench/api/loadgen.py, its own process)."""
    out = subprocess.run(
        [sys.executable, str(HERE / "loadgen.py"), "--url", f"http://127.0.0.1:{port}",
         "--rate", str(rate), "--connections", str(connections), "--seconds", str(seconds),
         "--method", "POST", "--path", "/v1/esim-profiles", "--key", key,
         "--body", '{"external_ref":"open-{n}"}'], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    ok = sum(v for k, v in r["statuses"].items() if k.startswith("2"))
    return {"rps": r["achieved_rps"], "p50": r["p50_ms"], "p99": r["p99_ms"],
            "errors": float(r["requests"] - ok), "socket_errors": 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--esims", type=int, default=50_000)
    ap.add_argument("--rate", type=float, default=500, help="open-loop order rate (/s)")
    ap.add_argument("--smdp", choices=["in-process", "es2plus"], default="in-process",
                    help="es2plus: orders go over HTTPS/mTLS to simsmith's own ES2+ endpoint "
                    "(what make run does)")
    ap.add_argument("--threads", type=int, help="SIMSMITH_THREADS for the server (default: "
                    "its own choice, api.main.worker_threads)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: scripts/install-system-deps.sh (scripts/apt/api.txt)")
    home = Path(tempfile.mkdtemp(prefix="simsmith-bench-api-"))
    url = throwaway_db.create(args.db, home, "simsmith_bench")
    try:
        key, iccids = seed(url, 10_000, args.esims)
        paths = home / "paths.txt"
        paths.write_text("".join(f"/v1/sims/{i}\n" for i in iccids))
        port = 18000 + os.getpid() % 1000
        extra = {"SIMSMITH_THREADS": str(args.threads)} if args.threads else None
        proc = start_server(url, home, args.workers, port, extra, smdp=args.smdp)
        try:
            env = {"KEY": key, "PATHS_FILE": str(paths)}
            wrk("lookup.lua", port, args.connections, 2, env)  # warm-up
            results = {"SIM lookup (GET /v1/sims/{iccid}), closed loop":
                       wrk("lookup.lua", port, args.connections, args.seconds, env)}
            wrk("order.lua", port, args.connections, 2, env)  # warm-up
            results["eSIM order (POST /v1/esim-profiles, QR data URI), closed loop"] = wrk(
                "order.lua", port, args.connections, args.seconds, env)
            results["eSIM order with an Idempotency-Key, closed loop"] = wrk(
                "order.lua", port, args.connections, args.seconds, env | {"IDEMPOTENCY": "1"})
            results[f"eSIM order, open loop at {args.rate:g}/s"] = loadgen(
                port, args.rate, args.connections, args.seconds, key)
            results["eSIM order, ?qr_data_uri=false, closed loop"] = wrk(
                "order.lua", port, args.connections, args.seconds,
                env | {"ORDER_PATH": "/v1/esim-profiles?qr_data_uri=false"})
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        print(f"\n{args.db}, {args.workers} worker(s), SM-DP+ {args.smdp}, "
              f"{args.connections} connections, "
              f"{args.seconds} s per measure; closed loop = wrk (each connection sends when "
              f"answered), open loop = bench/api/loadgen.py (requests at a fixed rate, latency "
              f"from the scheduled time)\n")
        print("| measure | requests/s | p50 ms | p99 ms | non-2xx |")
        print("|---|---:|---:|---:|---:|")
        for name, r in results.items():
            print(f"| {name} | {r['rps']:,.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
                  f"{r['errors']:.0f} |")
    finally:
        throwaway_db.drop(url)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
