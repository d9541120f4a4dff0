"""Milenage throughput: hsm_sim beside a straightforward reference, measured in the same run.

Rows (one core, one process):
  reference     6 separate AES calls (TEMP, OUT1..OUT5), a fresh cipher object for each, bytes XOR
  soft          hsm_sim.milenage: one encryptor per K, TEMP then OUT1..OUT4 in one ECB call;
                `vector()` (standard constants, no object) and the `Milenage` class
  soft via HSM  SoftHsm.milenage_vectors from KeyRefs (Ki/OPc unwrapped on every call)
  SoftHSM2      Pkcs11Hsm: Ki as a non-extractable token key, C_Encrypt for TEMP then the blocks
Each as "distinct" (one vector per subscriber) and "5/sub" (five vectors per subscriber).
Usage: .venv/bin/python bench/hsm/bench_milenage.py [--quick]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hsm_sim.keyref import KeyType
from hsm_sim.milenage import Milenage, derive_opc, vector
from hsm_sim.soft import SoftHsm

QUICK = "--quick" in sys.argv
N = 20_000 if QUICK else 100_000
AMF = b"\x80\x00"
C = [bytes(15) + bytes([v]) for v in (0, 1, 2, 4, 8)]
R = [8, 0, 4, 8, 12]  # r1..r5 in bytes


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _rot(x: bytes, r: int) -> bytes:
    return x[r:] + x[:r]


def reference_vector(k: bytes, opc: bytes, rand: bytes, sqn: bytes, amf: bytes) -> tuple:
    """Straight from the TS 35.206 figure: six E_K calls, each with a fresh cipher."""

    def e(block: bytes) -> bytes:
        return Cipher(algorithms.AES(k), modes.ECB()).encryptor().update(block)

    temp = e(_xor(rand, opc))
    in1 = sqn + amf + sqn + amf
    out1 = _xor(e(_xor(temp, _rot(_xor(in1, opc), R[0]))), opc)
    outs = [_xor(e(_xor(_rot(_xor(temp, opc), R[i]), C[i])), opc) for i in range(1, 5)]
    ak = outs[0][:6]
    autn = _xor(sqn, ak) + amf + out1[:8]
    return rand, outs[0][8:], outs[1], outs[2], autn, out1[8:], outs[3][:6]


def rate(fn: Callable[[], int], repeat: int = 3) -> float:
    best = 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        n = fn()
        best = max(best, n / (time.perf_counter() - t))
    return best


def main() -> None:
    subs = [(os.urandom(16), os.urandom(16)) for _ in range(N)]
    rands = [os.urandom(16) for _ in range(N)]
    sqn = 0x20
    sqn_b = sqn.to_bytes(6, "big")
    # same outputs before measuring anything
    k, opc = subs[0]
    v = Milenage(k, opc).vector(rands[0], sqn, AMF)
    ref = reference_vector(k, opc, rands[0], sqn_b, AMF)
    assert (v.xres, v.ck, v.ik, v.autn) == ref[1:5], "reference and hsm_sim disagree"
    assert vector(k, opc, rands[0], sqn, AMF) == v

    def ref_distinct() -> int:
        for (k, o), r in zip(subs, rands, strict=True):
            reference_vector(k, o, r, sqn_b, AMF)
        return N

    def ref_5() -> int:
        for k, o in subs[: N // 5]:
            for r in rands[:5]:
                reference_vector(k, o, r, sqn_b, AMF)
        return N // 5 * 5

    def soft_distinct() -> int:
        for (k, o), r in zip(subs, rands, strict=True):
            vector(k, o, r, sqn, AMF)
        return N

    def soft_distinct_obj() -> int:
        for (k, o), r in zip(subs, rands, strict=True):
            Milenage(k, o).vector(r, sqn, AMF)
        return N

    def soft_5() -> int:
        for k, o in subs[: N // 5]:
            m = Milenage(k, o)
            for r in rands[:5]:
                m.vector(r, sqn, AMF)
        return N // 5 * 5

    rows: list[tuple[str, str, float]] = []
    r_d, r_5 = rate(ref_distinct), rate(ref_5)
    s_d, s_5 = rate(soft_distinct), rate(soft_5)
    rows += [("reference (6 AES calls, fresh cipher)", "distinct", r_d),
             ("reference (6 AES calls, fresh cipher)", "5/sub", r_5),
             ("soft (milenage.vector)", "distinct", s_d),
             ("soft (Milenage(k, opc).vector)", "distinct", rate(soft_distinct_obj)),
             ("soft (Milenage(k, opc).vector)", "5/sub", s_5)]

    with tempfile.TemporaryDirectory() as d:
        hsm = SoftHsm.init(Path(d) / "hsm", components=[os.urandom(32), os.urandom(32)])
        m = N // 10
        refs = [(hsm.import_clear(f"{i}", KeyType.KI, k), hsm.import_clear(f"{i}", KeyType.OPC, o))
                for i, (k, o) in enumerate(subs[:m])]

        def via_hsm() -> int:
            for (ki, opc_ref), r in zip(refs, rands, strict=False):
                hsm.milenage_vectors(ki, opc_ref, [sqn], AMF, [r])
            return m

        def via_hsm_5() -> int:
            for ki, opc_ref in refs[: m // 5]:
                hsm.milenage_vectors(ki, opc_ref, [sqn] * 5, AMF, rands[:5])
            return m // 5 * 5

        rows += [("soft via SoftHsm (KeyRefs unwrapped per call)", "distinct", rate(via_hsm)),
                 ("soft via SoftHsm (KeyRefs unwrapped per call)", "5/sub", rate(via_hsm_5))]

        def opc_rate() -> int:
            for k, o in subs:
                derive_opc(k, o)
            return N

        rows.append(("OPc derivations (derive_opc)", "-", rate(opc_rate)))

    rows += pkcs11_rows(subs, rands, sqn)
    print(f"{'what':48} {'mode':9} {'per second':>12}")
    for what, mode, r in rows:
        print(f"{what:48} {mode:9} {r:12,.0f}")
    print(f"ratio soft/reference: distinct {s_d / r_d:.1f}x, 5/sub {s_5 / r_5:.1f}x")
    target = "met" if s_d >= 120_000 and s_d / r_d >= 3 else "NOT met"
    print(f"target (>= 120,000/s distinct and >= 3x reference): {target}")


def pkcs11_rows(subs: list[tuple[bytes, bytes]], rands: list[bytes], sqn: int) -> list:
    env = ("SOFTHSM2_CONF", "SIMSMITH_TEST_PKCS11_MODULE", "SIMSMITH_TEST_PKCS11_TOKEN",
           "SIMSMITH_TEST_PKCS11_PIN")
    if not all(os.environ.get(v) for v in env):
        print("SoftHSM2 rows skipped: run scripts/services/softhsm.sh start and source "
              "build/services/softhsm.env (make bench does)", file=sys.stderr)
        return []
    from pkcs11 import Mechanism

    from hsm_sim.pkcs11 import Pkcs11Hsm

    hsm = Pkcs11Hsm(os.environ["SIMSMITH_TEST_PKCS11_MODULE"],
                    os.environ["SIMSMITH_TEST_PKCS11_TOKEN"],
                    os.environ["SIMSMITH_TEST_PKCS11_PIN"], prefix=f"bench-{os.getpid()}")
    m = 2_000 if QUICK else 5_000
    refs = [(hsm.import_clear(f"{i}", KeyType.KI, k), hsm.import_clear(f"{i}", KeyType.OPC, o))
            for i, (k, o) in enumerate(subs[: m // 5])]
    mil = [hsm.milenage(ki, o) for ki, o in refs]

    def token_5() -> int:
        for mm in mil:
            for r in rands[:5]:
                mm.vector(r, sqn, AMF)
        return len(mil) * 5

    def token_distinct() -> int:
        for (ki, o), r in zip(refs, rands, strict=False):
            hsm.milenage_vectors(ki, o, [sqn], AMF, [r])
        return len(refs)

    key = mil[0]._enc._key  # the token key inside the first instance's kernel

    def token_reference() -> int:
        # 6 separate C_Encrypt calls per vector, same token key.
        n = m // 5
        blk = bytes(16)
        for _ in range(n):
            for _ in range(6):
                key.encrypt(blk, mechanism=Mechanism.AES_ECB)
        return n

    out = [("SoftHSM2: reference (6 C_Encrypt per vector)", "5/sub", rate(token_reference)),
           ("SoftHSM2: TEMP + 4 blocks in 1 C_Encrypt", "5/sub", rate(token_5)),
           ("SoftHSM2: incl. unwrap of Ki and OPc", "distinct", rate(token_distinct))]
    hsm.close()
    return out


if __name__ == "__main__":
    main()
