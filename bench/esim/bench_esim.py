"""esim benchmarks (issue 5): personalisation from a compiled template against the straightforward
way (SAIP decode -> change fields -> encode) in the same run, and QR PNG generation. One process,
one core. The SAIP codec beside its reference: bench/esim/bench_saip.py.

    .venv/bin/python bench/esim/bench_esim.py [--quick] [--json]

Each figure is the best of several rounds (the machine may be shared); targets from the issue.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from esim.activation_code import ActivationCode, generate_matching_id  # noqa: E402
from esim.build import get_compiled  # noqa: E402
from esim.compiled import KeySlot  # noqa: E402
from esim.fields import locate_fields, set_field  # noqa: E402
from esim.params import SubscriberParams  # noqa: E402
from esim.qr import qr_png  # noqa: E402
from esim.saip import decode, encode  # noqa: E402


def subscribers(n: int, seed: int = 1) -> list[SubscriberParams]:
    rng = random.Random(seed)

    def digits(k: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(k))

    return [SubscriberParams(iccid="8949" + digits(15), imsi="26201" + digits(10),
                             pin1=digits(4), puk1=digits(8), pin2=digits(4), puk2=digits(8),
                             adm1=digits(8)) for _ in range(n)]


def hsm_stand_in(buf: bytearray, slots: Sequence[KeySlot]) -> None:
    """Writes each key slot, as the HSM's patch_keys would after unwrapping (cost not included)."""
    for s in slots:
        buf[s.offset:s.offset + s.length] = b"\x5a" * s.length


def rate(fn: Callable[[], object], count: int, rounds: int) -> float:
    """Best operations per second over `rounds` rounds of `count` calls."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(count):
            fn()
        best = min(best, time.perf_counter() - start)
    return count / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer iterations (smoke test).")
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    parser.add_argument("--template", default="usim-isim-milenage")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    rounds = 2 if args.quick else 5

    compiled = get_compiled(args.template)
    subs = subscribers(int(20000 * scale))

    def fast_batch() -> None:
        for s in subs:
            compiled.personalise(s, hsm_stand_in)

    fast = rate(fast_batch, 1, rounds) * len(subs)

    # The straightforward way: decode the template package, set the fields, encode.
    template_der = compiled.der
    slow_subs = subs[: max(20, int(200 * scale))]

    def slow_batch() -> None:
        for s in slow_subs:
            elements = decode(template_der)
            for f in locate_fields(compiled.template, elements):
                set_field(elements, f, b"\x5a" * f.length if f.encode is None else f.encode(s))
            encode(elements)

    slow = rate(slow_batch, 1, max(2, rounds // 2)) * len(slow_subs)

    codes = [ActivationCode("rsp.example.com", generate_matching_id())
             for _ in range(max(50, int(1000 * scale)))]
    queue = iter(codes * rounds)
    qr_rate = rate(lambda: qr_png(next(queue)), len(codes), rounds)
    # The reference: the pure-Python `qrcode` library (make bench installs the bench extra).
    import qrcode
    from qrcode.image.pure import PyPNGImage

    def reference_png(code: ActivationCode) -> bytes:
        symbol = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8,
                               border=4, image_factory=PyPNGImage)
        symbol.add_data(code.to_uri())
        out = io.BytesIO()
        symbol.make_image().save(out)
        return out.getvalue()

    queue = iter(codes * rounds)
    qr_reference = rate(lambda: reference_png(next(queue)), max(20, len(codes) // 5), rounds)

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    results = [
        ("personalise, compiled template", fast, 20000, "packages/s"),
        ("personalise, decode-change-encode", slow, None, "packages/s"),
        ("QR PNG (LPA:1$…, ECC M)", qr_rate, 500, "images/s"),
        ("QR PNG, qrcode library (reference)", qr_reference, None, "images/s"),
    ]
    ratio = fast / slow
    if args.json:
        print(json.dumps({"cpu": cpu, "nproc": os.cpu_count(), "template": args.template,
                          "package_bytes": len(template_der), "speedup": round(ratio, 1),
                          "qr_speedup": round(qr_rate / qr_reference, 1),
                          "results": [{"name": n, "rate": round(r), "target": t, "unit": u}
                                      for n, r, t, u in results]}, indent=2))
    else:
        print(f"esim benchmarks: {cpu}, nproc {os.cpu_count()}, template {args.template} "
              f"({len(template_der)} B), best of {rounds} rounds, one core")
        print(f"{'measure':36} {'rate':>21}  {'target':>9}  verdict")
        for name, r, target, unit in results:
            verdict = "" if target is None else ("ok" if r >= target else "BELOW TARGET")
            shown = "" if target is None else f">= {target:,}"
            print(f"{name:36} {r:>9,.0f} {unit:<11}  {shown:>9}  {verdict}")
        print(f"compiled template vs decode-change-encode: {ratio:,.0f}x")
        print(f"QR PNG vs the qrcode library: {qr_rate / qr_reference:,.0f}x")
    return 0 if all(t is None or r >= t for _, r, t, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
