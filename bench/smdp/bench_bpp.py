"""SM-DP+ benchmarks (issue 16 item 8): bound profile packages built per CPU-second on one core
(ECKA with a fresh otSK.DP, KDF, DPpb signature, SCP03t segments over the 12 kB GSMA TS.48
profile), and the eUICC's side (verify smdpSign, ECKA, verify and decrypt every segment) timed
separately. One process, one core; software keys (the HSM's cost is its own benchmark).

    .venv/bin/python bench/smdp/bench_bpp.py [--quick] [--json]

Rates are operations per CPU-second of this process (the machine is shared), best of rounds.
Goal from the issue: ≥ 1,500 BPP/s; an open reference implementation builds ~100/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from esim.sgp22 import bpp  # noqa: E402
from esim.sgp22.signatures import software_signer  # noqa: E402

VECTORS = ROOT / "tests" / "vectors" / "sgp22" / "download"
GOAL_BUILD = 1500.0
REFERENCE_BUILD = 100.0


def rate(fn: Callable[[], object], count: int, rounds: int) -> float:
    """Best operations per CPU-second over `rounds` rounds of `count` calls."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(count):
            fn()
        best = min(best, time.process_time() - start)
    return count / best if best > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    count, rounds = (50, 2) if args.quick else (300, 3)

    upp = (VECTORS / "upp.der").read_bytes()
    session = json.loads((VECTORS / "session.json").read_text())
    metadata = bytes.fromhex(session["bsp_decoded"]["storeMetadataRequest"])
    eid = bytes.fromhex(session["eid"])
    tid = bytes.fromhex(session["transactionId"])
    dppb = ec.generate_private_key(ec.SECP256R1())
    signer = software_signer(dppb)
    euicc = ec.generate_private_key(ec.SECP256R1())
    otpk_euicc = euicc.public_key().public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint)

    def build() -> bpp.BuiltBpp:
        return bpp.build_bpp(upp=upp, store_metadata=metadata, transaction_id=tid, eid=eid,
                             otpk_euicc=otpk_euicc, dppb_signer=signer)

    sample = build()

    def open_() -> bpp.OpenedBpp:
        return bpp.open_bpp(sample.der, otsk_euicc=euicc, eid=eid,
                            dppb_public_key=dppb.public_key(), transaction_id=tid)

    assert open_().upp == upp
    results = {
        "bpp_build_per_s": rate(build, count, rounds),
        "bpp_open_per_s": rate(open_, count, rounds),
        "upp_bytes": len(upp),
        "bpp_bytes": len(sample.der),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    build_rate = results["bpp_build_per_s"]
    print(f"BPP build (SM-DP+, {len(upp):,} B UPP): {build_rate:,.0f}/s per CPU-second "
          f"(goal ≥ {GOAL_BUILD:,.0f}: {'met' if build_rate >= GOAL_BUILD else 'NOT met'}; "
          f"the issue quotes ~{REFERENCE_BUILD:,.0f}/s for an open reference implementation, "
          f"{build_rate / REFERENCE_BUILD:.0f}×)")
    print(f"BPP open (eUICC side): {results['bpp_open_per_s']:,.0f}/s per CPU-second")


if __name__ == "__main__":
    main()
