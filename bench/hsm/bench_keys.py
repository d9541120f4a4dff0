"""Key handling throughput of the soft backend: wraps, unwraps, batch EKI import, KeyRef tokens.

The import issue needs ~1,000,000 rows with EKI + EOPC unwrapped from the vendor transport key and
re-wrapped under the storage KEK; `import_batch` rows/s and the projected time for 1M are printed.
Usage: .venv/bin/python bench/hsm/bench_keys.py [--quick]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hsm_sim.binding import Binder
from hsm_sim.eki import EkiScheme, encrypt_eki
from hsm_sim.hsm import KekPurpose
from hsm_sim.keyref import KeyRef, KeyType
from hsm_sim.soft import SoftHsm

QUICK = "--quick" in sys.argv
N = 50_000 if QUICK else 200_000


def timed(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def main() -> None:
    owners = [str(8949000000000000000 + i) for i in range(N)]
    keys = [os.urandom(16) for _ in range(N)]
    b = Binder(os.urandom(32))
    blobs: list[bytes] = []
    wraps = timed(lambda: blobs.extend(b.wrap(KeyType.KI, o, k)
                                       for o, k in zip(owners, keys, strict=True)), N)
    unwraps = timed(lambda: [b.unwrap(KeyType.KI, o, x)
                             for o, x in zip(owners, blobs, strict=True)], N)
    refs = [KeyRef("soft", KeyType.KI, o, "storage", x) for o, x in zip(owners, blobs, strict=True)]
    tokens: list[str] = []
    enc = timed(lambda: tokens.extend(r.to_token() for r in refs), N)
    dec = timed(lambda: [KeyRef.from_token(t) for t in tokens], N)
    with tempfile.TemporaryDirectory() as d:
        hsm = SoftHsm.init(Path(d) / "hsm", components=[os.urandom(32), os.urandom(32)])
        tk = os.urandom(16)
        hsm.kek_add("vendor", KekPurpose.TRANSPORT, [tk])
        clear = os.urandom(32 * N)
        encd = encrypt_eki(EkiScheme.AES128_ECB, tk, clear)
        rows = [(owners[i], encd[32 * i : 32 * i + 16], encd[32 * i + 16 : 32 * i + 32])
                for i in range(N)]
        batch = timed(lambda: hsm.import_batch(rows, "vendor", EkiScheme.AES128_ECB), N)
    print(f"{'what':52} {'per second':>12}")
    for what, r in (("v2 wrap, AES-256-GCM, owner+type as AAD (Binder.wrap)", wraps),
                    ("v2 unwrap (Binder.unwrap)", unwraps),
                    ("KeyRef.to_token", enc), ("KeyRef.from_token", dec),
                    ("import_batch rows (EKI + EOPC, AES-128 ECB)", batch)):
        print(f"{what:52} {r:12,.0f}")
    print(f"projected import_batch of 1,000,000 rows: {1_000_000 / batch:.1f} s")


if __name__ == "__main__":
    main()
