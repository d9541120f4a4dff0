"""eSIM packages on the path users run (issue 14): personalisation with the keys written by the
real HSM from wrapped references (soft HSM; SoftHSM2 when its environment is set), beside a
constant-bytes stand-in and the naive decode -> change -> encode way in the same run; then
`simsmith esim build-batch` end to end (a real workspace: SQLite store, dev soft HSM, audit,
envelopes, files written) with 1 and 2 worker processes, beside the naive way writing files.

    .venv/bin/python bench/esim/bench_build.py [--count 20000] [--quick] [--json]

Rates are packages per second of wall-clock time (CLI: the whole command, start-up included)
and, because the machine is shared, per CPU-second of the process (and its workers). The goal:
build-batch >= 20,000 packages/s written to disk with real HSM patching.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from esim.build import get_compiled  # noqa: E402
from esim.fields import locate_fields, set_field  # noqa: E402
from esim.saip import decode, encode  # noqa: E402
from hsm_sim.keyref import KeyType  # noqa: E402
from simcore import key_writers, keys  # noqa: E402

GOAL = 20000


def _sims(hsm: Any, n: int, tag: str) -> list[tuple[Any, keys.SimKeys]]:
    """n subscribers with keys made in the HSM as `inventory generate --with-keys` makes them:
    Ki, OPc, PIN1/PUK1/PIN2/PUK2/ADM1, the six OTA keys."""
    from esim.params import SubscriberParams

    out = []
    for i in range(n):
        iccid = f"89882{tag}{i:013d}"[:19]
        creds = {name: hsm.generate_code(iccid, KeyType(kind), digits)
                 for name, (kind, digits) in keys.CODES.items()}
        creds |= {name: hsm.generate(iccid, KeyType(kind)) for name, kind in
                  keys.OTA_KEYS.items()}
        k = keys.SimKeys(iccid, hsm.generate(iccid, KeyType.KI), hsm.generate(iccid,
                                                                               KeyType.OPC), creds)
        out.append((key_writers.package_params(iccid, f"00101{i:010d}"), k))
        assert isinstance(out[-1][0], SubscriberParams)
    return out


def _timed(fn: Callable[[], int]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process and its children, count)."""
    r0, c0, t0 = (resource.getrusage(resource.RUSAGE_SELF),
                  resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter())
    n = fn()
    t1 = time.perf_counter()
    r1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(b.ru_utime + b.ru_stime - a.ru_utime - a.ru_stime
              for a, b in ((r0, r1), (c0, c1)))
    return t1 - t0, cpu, n


def personalise_rates(hsm: Any, n: int, naive_n: int, template: str) -> dict[str, Any]:
    compiled = get_compiled(template)
    sims = _sims(hsm, n, "10")

    def real() -> int:
        for params, k in sims:
            compiled.personalise(params, key_writers.package_patcher(hsm, k, compiled))
        return len(sims)

    def stand_in() -> int:
        def constant(buf: bytearray, slots: Any) -> None:
            for s in slots:
                buf[s.offset:s.offset + s.length] = b"\x5a" * s.length
        for params, _ in sims:
            compiled.personalise(params, constant)
        return len(sims)

    def naive() -> int:
        # decode the template, set every field, keys and codes through the same HSM call
        for params, k in sims[:naive_n]:
            elements = decode(compiled.der)
            located = locate_fields(compiled.template, elements)
            buf = bytearray(compiled.der)
            key_writers.package_patcher(hsm, k, compiled)(buf, compiled.key_slots())
            for f, offset in zip(located, compiled.offsets, strict=True):
                value = (bytes(buf[offset:offset + f.length]) if f.encode is None
                         or f.param in key_writers.PACKAGE_CODES else f.encode(params))
                set_field(elements, f, value)
            encode(elements)
        return naive_n

    out = {}
    for name, fn in (("real HSM patch_keys", real), ("constant stand-in", stand_in),
                     ("naive decode-change-encode, same HSM", naive)):
        best = min((_timed(fn) for _ in range(3)), key=lambda t: t[1])
        out[name] = {"wall_rate": best[2] / best[0], "cpu_rate": best[2] / best[1]}
    return out


def cli_rates(count: int, quick: bool) -> dict[str, Any]:
    """`simsmith esim build-batch` in a fresh workspace, encrypted and clear, 1 and 2 workers."""
    home = Path(tempfile.mkdtemp(prefix="simsmith-bench-esim-"))
    env = dict(os.environ, SIMSMITH_HOME=str(home), SIMSMITH_HSM_PASSPHRASE="bench only",
               SIMSMITH_DATABASE_URL="", PYTHONPATH=str(ROOT), SIMSMITH_HSM_BACKEND="soft")
    env.pop("SIMSMITH_DATABASE_URL")
    cli = [sys.executable, "-m", "tools.cli"]

    def run(*args: str) -> str:
        return subprocess.run([*cli, *args], env=env, check=True, capture_output=True,
                              text=True, cwd=ROOT).stdout

    run("init")
    run("hsm", "init", "--dev-passphrase", "bench only")
    run("range", "add", "iccid", "89882800000000000007", "89882800000999999995", "--name", "i")
    run("range", "add", "imsi", "001010000000000", "001010009999999", "--name", "m",
        "--mnc-length", "2")
    run("inventory", "generate", "-n", str(count), "--batch", "b", "--kind", "esim",
        "--with-keys")
    run("hsm", "kek", "add", "smdp-a", "--purpose", "export", "--component", bytes(range(16)).hex())
    run("hsm", "kek", "add", "lab", "--purpose", "export", "--insecure-clear")
    out: dict[str, Any] = {}
    try:
        for label, extra in (("encrypted, 2 workers", ["--target", "smdp-a", "--workers", "2"]),
                             ("encrypted, 1 worker", ["--target", "smdp-a", "--workers", "1"]),
                             ("clear, 2 workers", ["--target", "lab", "--clear",
                                                   "--workers", "2"])):
            rounds = []
            for _ in range(1 if quick else 2):
                shutil.rmtree(home / "out", ignore_errors=True)

                batch_seconds: list[float] = []

                def once(extra: list[str] = extra, into: list[float] = batch_seconds) -> int:
                    info = json.loads(run("esim", "build-batch", "-t", "usim-isim-milenage",
                                          "--batch", "b", "-o", str(home / "out"), *extra,
                                          "--json"))
                    into.append(float(info["seconds"]))
                    return int(info["packages"])
                rounds.append((*_timed(once), batch_seconds[0]))
            best = min(rounds, key=lambda t: t[0])
            # whole command (start-up included), per CPU-second, and the batch's own work
            out[label] = {"wall_rate": best[2] / best[0], "cpu_rate": best[2] / best[1],
                          "batch_rate": best[2] / best[3]}
        # start-up alone (imports, HSM open, store check): one SIM
        run("inventory", "generate", "-n", "1", "--batch", "one", "--kind", "esim",
            "--with-keys")
        wall, _, _ = _timed(lambda: len(run("esim", "build-batch", "-t", "usim-isim-milenage",
                                            "--batch", "one", "-o", str(home / "one"),
                                            "--target", "smdp-a", "--json")))
        out["start-up (one package)"] = {"seconds": wall}
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return out


def naive_files(hsm: Any, n: int, template: str) -> dict[str, Any]:
    """The reference for the CLI: decode -> change -> encode per subscriber, file written."""
    compiled = get_compiled(template)
    sims = _sims(hsm, n, "20")
    d = Path(tempfile.mkdtemp(prefix="simsmith-bench-naive-"))

    def run() -> int:
        for params, k in sims:
            elements = decode(compiled.der)
            located = locate_fields(compiled.template, elements)
            buf = bytearray(compiled.der)
            key_writers.package_patcher(hsm, k, compiled)(buf, compiled.key_slots())
            for f, offset in zip(located, compiled.offsets, strict=True):
                value = (bytes(buf[offset:offset + f.length]) if f.encode is None
                         or f.param in key_writers.PACKAGE_CODES else f.encode(params))
                set_field(elements, f, value)
            fd = os.open(d / f"{params.iccid}.der", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, encode(elements))
            os.close(fd)
        return n

    try:
        wall, cpu, _ = _timed(run)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return {"wall_rate": n / wall, "cpu_rate": n / cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000, help="SIMs in the CLI's batch.")
    parser.add_argument("--quick", action="store_true", help="Small counts (smoke test).")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--template", default="usim-isim-milenage")
    args = parser.parse_args()
    count = 2000 if args.quick else args.count
    n = 500 if args.quick else 5000

    from hsm_sim.errors import DevModeWarning
    from hsm_sim.soft import SoftHsm

    tmp = Path(tempfile.mkdtemp(prefix="simsmith-bench-hsm-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DevModeWarning)
        soft = SoftHsm.init(tmp / "hsm", passphrase="bench", scrypt_n=2**10)
    results: dict[str, Any] = {"soft HSM": personalise_rates(soft, n, max(20, n // 50),
                                                               args.template)}
    module = os.environ.get("SIMSMITH_TEST_PKCS11_MODULE")
    if module and os.environ.get("SIMSMITH_TEST_PKCS11_PIN"):
        from hsm_sim.pkcs11 import Pkcs11Hsm

        p11 = Pkcs11Hsm(module, os.environ["SIMSMITH_TEST_PKCS11_TOKEN"],
                        os.environ["SIMSMITH_TEST_PKCS11_PIN"],
                        prefix=f"simsmith-bench-{os.getpid()}")
        try:
            results["SoftHSM2"] = personalise_rates(p11, max(50, n // 10), 20, args.template)
        finally:
            p11.close()
    results["naive, files written (reference for the CLI)"] = naive_files(
        soft, max(20, n // 50), args.template)
    results["simsmith esim build-batch"] = cli_rates(count, args.quick)
    shutil.rmtree(tmp, ignore_errors=True)
    cli = results["simsmith esim build-batch"]["encrypted, 2 workers"]["batch_rate"]
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    if args.json:
        print(json.dumps({"cpu": cpu, "nproc": os.cpu_count(), "load": os.getloadavg(),
                          "count": count, "results": results, "goal": GOAL,
                          "goal_met": cli >= GOAL}, indent=2))
    else:
        print(f"eSIM packages through the real HSM and the CLI: {cpu}, nproc {os.cpu_count()}, "
              f"load {os.getloadavg()[0]:.1f}, batch of {count:,}")
        for group, rows in results.items():
            if "wall_rate" in rows:
                rows = {"": rows}
            for name, r in rows.items():
                if "seconds" in r:
                    print(f"  {group:45} {name:38} {r['seconds']:8.2f} s")
                    continue
                batch = (f" {r['batch_rate']:9,.0f}/s batch work" if "batch_rate" in r
                         else "")
                print(f"  {group:45} {name:38} {r['wall_rate']:9,.0f}/s wall "
                      f"{r['cpu_rate']:9,.0f}/CPU-s{batch}")
        print(f"goal: build-batch >= {GOAL:,} packages/s: "
              f"{'met' if cli >= GOAL else 'NOT MET'} ({cli:,.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
