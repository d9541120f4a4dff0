"""Exporting subscribers into a real osmo-hlr over CTRL: `simcore.export.export_osmo_hlr`.

    .venv/bin/python bench/import/bench_export_osmohlr.py [--count 100000] [--host 127.0.0.3]

Starts its own osmo-hlr (Debian package osmo-hlr) on --host with a fresh SQLite DB in a
temporary directory, imports a --count-row vendor file into a fresh SQLite store (not timed),
then times the export: SIMs read a page at a time, K/OPc exported from the soft HSM for the
insecure target, CTRL commands pipelined per page (create, aud3g, cs-enabled, ps-enabled).
Run twice in a row on the same HLR, the second pass measures the idempotent update path.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_import import TRANSPORT, make_file

from hsm_sim.hsm import KekPurpose
from hsm_sim.soft import SoftHsm
from simcore import db
from simcore.export import export_osmo_hlr
from simcore.export.gsup import GsupClient
from simcore.vendor_import import import_file

CFG = """log stderr
 logging level all error
line vty
 bind {host}
ctrl
 bind {host}
hlr
 gsup
  bind ip {host}
"""


def start_hlr(tmp: Path, host: str) -> subprocess.Popen[bytes]:
    (tmp / "hlr.cfg").write_text(CFG.format(host=host))
    proc = subprocess.Popen([shutil.which("osmo-hlr") or "osmo-hlr", "-c", str(tmp / "hlr.cfg"),
                             "-l", str(tmp / "hlr.db")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            GsupClient(host, 4222, timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    raise SystemExit("osmo-hlr did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--host", default="127.0.0.3")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        eng = db.make_engine(f"sqlite:///{tmp / 'store.db'}")
        db.upgrade(eng)
        hsm = SoftHsm.init(tmp / "hsm", components=[os.urandom(32), os.urandom(32)])
        hsm.kek_add("bench-tk", KekPurpose.TRANSPORT, [TRANSPORT])
        hsm.kek_add("bench-hlr", KekPurpose.EXPORT, insecure_clear=True)
        import_file(eng, hsm, make_file(args.count))
        proc = start_hlr(tmp, args.host)
        try:
            print(f"# osmo-hlr on {args.host}, {os.cpu_count()} cores")
            print("| pass | subscribers | seconds | subscribers/s | created | updated | failed |")
            print("|---|---|---|---|---|---|---|")
            for label in ("first (create)", "second (update)"):
                t = time.perf_counter()
                r = export_osmo_hlr(eng, hsm, target="bench-hlr", host=args.host)
                dt = time.perf_counter() - t
                print(f"| {label} | {r.count:,} | {dt:.2f} | {r.count / dt:,.0f} | {r.created:,} "
                      f"| {r.updated:,} | {r.failed:,} |", flush=True)
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
