"""SAIP codec benchmark (issue 14): decode and encode of the GSMA TS.48 profile packages beside the
reference in the same run, at equal depth. One process, one core.

    .venv/bin/python bench/esim/bench_saip.py [--quick] [--json]

Depth, both sides: every profile element of the package decoded into the full ASN.1 value tree
(SEQUENCEs as dicts, SEQUENCE OF as lists, CHOICEs as (name, value), OCTET STRINGs as bytes);
file contents stay OCTET STRINGs on both sides. Encode: that tree back to the package's DER.

Reference: asn1tools (the ASN.1 layer of the open-source SAIP tools, e.g. pySim's saip module)
compiling the same PEDefinitions.asn for DER, calling decode("ProfileElement", …) on each element
and encode("ProfileElement", …, check_types=False) on each value, as those tools do. simsmith:
esim.saip.decode / encode (esim/saip/decoder.py, esim/saip/encoder.py), which also check
every length against its enclosing TLV and the member order.

Rounds are interleaved (simsmith, reference, simsmith, …) and each figure is the best round in CPU
time of this process, so that other jobs on a shared machine weigh on both sides alike. Goals:
encode >= 500 packages/s, decode faster than the reference. Exits 0 either way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import asn1tools  # noqa: E402

from esim.saip import decode, encode  # noqa: E402
from esim.saip.codec import split_tlvs  # noqa: E402

PACKAGES = [ROOT / "tests" / "vectors" / "ts48" / f"{name}.der"
            for name in ("ts48v7_saip23_NoBERTLV", "ts48v7_saip23_BERTLV_SUCI")]
ENCODE_GOAL = 500


def best_rates(fns: dict[str, Callable[[], object]], count: int, rounds: int) -> dict[str, float]:
    """Calls per CPU-second of each function, best of `rounds` interleaved rounds of `count`."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.process_time()
            for _ in range(count):
                fn()
            best[name] = min(best[name], time.process_time() - start)
    return {name: count / max(seconds, 1e-9) for name, seconds in best.items()}


def measure(path: Path, count: int, rounds: int) -> dict[str, object]:
    data = path.read_bytes()
    reference = asn1tools.compile_string(
        resources.files("esim.saip").joinpath("PEDefinitions.asn").read_text(encoding="utf-8"),
        "der")
    spans = list(split_tlvs(data))

    def reference_decode() -> list[object]:
        return [reference.decode("ProfileElement", data[s:e]) for s, e in spans]

    reference_values = reference_decode()

    def reference_encode() -> bytes:
        return b"".join(reference.encode("ProfileElement", v, check_types=False)
                        for v in reference_values)

    elements = decode(data)
    if encode(elements) != data:
        raise SystemExit(f"{path.name}: simsmith's round trip is not byte-exact")
    if len(reference_values) != len(elements):
        raise SystemExit(f"{path.name}: the reference decoded a different number of elements")
    rates = best_rates({"decode": lambda: decode(data), "reference decode": reference_decode,
                        "encode": lambda: encode(elements), "reference encode": reference_encode},
                       count, rounds)
    return {"package": path.name, "bytes": len(data), "elements": len(elements),
            **{k: round(v) for k, v in rates.items()},
            "decode ratio": round(rates["decode"] / rates["reference decode"], 2),
            "encode ratio": round(rates["encode"] / rates["reference encode"], 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer iterations (smoke test).")
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    args = parser.parse_args()
    count, rounds = (10, 2) if args.quick else (60, 7)
    results = [measure(path, count, rounds) for path in PACKAGES]
    for r in results:
        r["decode goal met"] = r["decode ratio"] > 1  # type: ignore[operator]
        r["encode goal met"] = r["encode"] >= ENCODE_GOAL  # type: ignore[operator]
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    if args.json:
        print(json.dumps({"cpu": cpu, "nproc": os.cpu_count(),
                          "python": platform.python_version(),
                          "asn1tools": asn1tools.__version__, "results": results}, indent=2))
        return 0
    print(f"SAIP codec: {cpu}, nproc {os.cpu_count()}, Python {platform.python_version()}, "
          f"reference asn1tools {asn1tools.__version__}; packages per CPU-second, best of "
          f"{rounds} interleaved rounds, one core; depth: every element's full ASN.1 value tree")
    print(f"{'package':30} {'op':7} {'simsmith':>9} {'reference':>10} {'ratio':>6}  goal")
    for r in results:
        for op in ("decode", "encode"):
            goal = ("faster than the reference" if op == "decode"
                    else f">= {ENCODE_GOAL}/s")
            verdict = "met" if r[f"{op} goal met"] else "NOT MET"
            print(f"{r['package']:30} {op:7} {r[op]:>9,} {r['reference ' + op]:>10,} "
                  f"{r[op + ' ratio']:>5}x  {goal}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
