"""One Pkcs11Hsm shared by 1..16 threads on SoftHSM2, as the API shares it: import_batch rows/s
(EKI + EOPC, AES-128 ECB: decrypt, wrap under the derived KWK) and milenage_vectors/s (Ki and OPc
unwrapped per call). Errors are counted, not hidden: a run with errors prints them.

Usage (SoftHSM2 environment from scripts/services/softhsm.sh):
  .venv/bin/python bench/hsm/bench_pkcs11_threads.py [--quick] [--threads 1,4,16] [--sessions N]
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hsm_sim.eki import EkiScheme, encrypt_eki
from hsm_sim.hsm import KekPurpose
from hsm_sim.keyref import KeyType

QUICK = "--quick" in sys.argv
ROWS = 2_000 if QUICK else 8_000
VECTORS = 1_000 if QUICK else 4_000
CHUNK = 250


def _threads() -> list[int]:
    if "--threads" in sys.argv:
        return [int(x) for x in sys.argv[sys.argv.index("--threads") + 1].split(",")]
    return [1, 2, 4, 16]


def _sessions() -> int | None:
    if "--sessions" in sys.argv:
        return int(sys.argv[sys.argv.index("--sessions") + 1])
    return None


def main() -> None:
    env = ("SOFTHSM2_CONF", "SIMSMITH_TEST_PKCS11_MODULE", "SIMSMITH_TEST_PKCS11_TOKEN",
           "SIMSMITH_TEST_PKCS11_PIN")
    if not all(os.environ.get(v) for v in env):
        print("skipped: run scripts/services/softhsm.sh start and source "
              "build/services/softhsm.env (make bench does)", file=sys.stderr)
        return
    from hsm_sim.pkcs11 import DEFAULT_SESSIONS, Pkcs11Hsm

    hsm = Pkcs11Hsm(os.environ["SIMSMITH_TEST_PKCS11_MODULE"],
                    os.environ["SIMSMITH_TEST_PKCS11_TOKEN"],
                    os.environ["SIMSMITH_TEST_PKCS11_PIN"], prefix=f"bench-{os.getpid()}",
                    sessions=_sessions() or DEFAULT_SESSIONS)
    tk = os.urandom(16)
    hsm.kek_add("vendor", KekPurpose.TRANSPORT, [tk])
    clear = os.urandom(32 * ROWS)
    enc = encrypt_eki(EkiScheme.AES128_ECB, tk, clear)
    rows = [(str(8949000000000000000 + i), enc[32 * i: 32 * i + 16], enc[32 * i + 16: 32 * i + 32])
            for i in range(ROWS)]
    chunks = [rows[i: i + CHUNK] for i in range(0, ROWS, CHUNK)]
    subs = [(hsm.import_clear(f"{i}", KeyType.KI, os.urandom(16)),
             hsm.import_clear(f"{i}", KeyType.OPC, os.urandom(16))) for i in range(200)]
    print(f"sessions: {getattr(hsm, 'sessions', 1)}, cores: {os.cpu_count()}")
    print(f"{'what':44} {'threads':>7} {'per second':>12} {'errors':>7}")
    for n in _threads():
        errors: Counter[str] = Counter()

        def batch(chunk: list[tuple[str, bytes, bytes]], errors: Counter[str] = errors) -> int:
            try:
                return len(hsm.import_batch(chunk, "vendor", EkiScheme.AES128_ECB))
            except Exception as e:  # counted and printed
                errors[type(e).__name__] += 1
                return 0

        def vectors(i: int, errors: Counter[str] = errors) -> int:
            ki, opc = subs[i % len(subs)]
            try:
                return len(hsm.milenage_vectors(ki, opc, [32], b"\x80\x00", [os.urandom(16)]))
            except Exception as e:  # counted and printed
                errors[type(e).__name__] += 1
                return 0

        with ThreadPoolExecutor(n) as pool:
            t = time.perf_counter()
            done = sum(pool.map(batch, chunks))
            rows_s = done / (time.perf_counter() - t)
            t = time.perf_counter()
            done_v = sum(pool.map(vectors, range(VECTORS)))
            vec_s = done_v / (time.perf_counter() - t)
        err = ", ".join(f"{k} x{v}" for k, v in errors.items()) or "0"
        print(f"{'import_batch rows (EKI + EOPC, AES-128 ECB)':44} {n:7} {rows_s:12,.0f} {err:>7}")
        print(f"{'milenage_vectors (unwrap Ki + OPc per call)':44} {n:7} {vec_s:12,.0f}")
    hsm.close()


if __name__ == "__main__":
    main()
