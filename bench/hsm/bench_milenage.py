"""Milenage through the HSM boundary, beside naive references measured in the same run.

What users run is `Hsm.milenage_vectors(ki_ref, opc_ref, sqns, amf, rands)` with Ki and OPc as
wrapped KeyRefs (as stored in the database): every call unwraps both inside the HSM. Rows:

  soft HSM      SoftHsm.milenage_vectors from KeyRefs (v2 blobs, docs/hsm.md "Blob format")
  SoftHSM2      Pkcs11Hsm.milenage_vectors from KeyRefs: Ki unwrapped into a non-extractable
                session key in the token, used, destroyed, per call
  reference     naive 6-AES: TS 35.206's six E_K calls (TEMP, OUT1..OUT5), each a fresh
                cryptography AES-ECB cipher object, bytes XOR — clear keys, no unwrap
  reference     naive PKCS#11 loop: six C_Encrypt(CKM_AES_ECB) calls per vector through
                python-pkcs11 with the key already in the token — no unwrap
  context       clear-key rows (milenage.vector, one encryptor with six update() calls): not the
                user path, shown to say where the time goes

"distinct" = a new subscriber for every vector (one call per vector); "5/sub" = one call making
five vectors per subscriber. Rates are vectors per second of this process's CPU time (best of
interleaved rounds), so other work on a shared machine slows the figures less than wall time;
wall-time rates are printed beside them. Goals (issue #14): soft >= 5x the naive 6-AES reference
and >= 100,000/s; SoftHSM2 distinct >= 1x the naive PKCS#11 loop. Exits 0 whether goals are met
or not. Usage: .venv/bin/python bench/hsm/bench_milenage.py [--quick]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hsm_sim.keyref import KeyType
from hsm_sim.milenage import Milenage, vector
from hsm_sim.soft import SoftHsm

QUICK = "--quick" in sys.argv
N = 4_000 if QUICK else 10_000  # vectors per round (soft)
ROUNDS = 5 if QUICK else 9
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


class Race:
    """Interleaved rounds of several workloads; the best CPU-time and wall-time rate of each."""

    def __init__(self) -> None:
        self.fns: dict[str, Callable[[], int]] = {}
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}

    def add(self, name: str, fn: Callable[[], int]) -> None:
        self.fns[name] = fn
        self.cpu[name] = self.wall[name] = 0.0

    def run(self, rounds: int) -> None:
        for _ in range(rounds):
            for name, fn in self.fns.items():
                c, w = time.process_time(), time.perf_counter()
                n = fn()
                c, w = time.process_time() - c, time.perf_counter() - w
                self.cpu[name] = max(self.cpu[name], n / max(c, 1e-9))
                self.wall[name] = max(self.wall[name], n / w)


def line(what: str, mode: str, race: Race, name: str) -> None:
    print(f"  {what:58} {mode:9} {race.cpu[name]:12,.0f} {race.wall[name]:12,.0f}")


def verdict(label: str, value: float, ref_name: str, ref: float, factor: float,
            floor: float | None = None) -> str:
    ratio = value / ref
    ok = ratio >= factor and (floor is None or value >= floor)
    goal = f">= {factor:g}x {ref_name}" + (f" and >= {floor:,.0f}/s" if floor else "")
    return (f"  {label}: {value:,.0f}/s = {ratio:.2f}x {ref_name} ({ref:,.0f}/s); goal {goal}: "
            f"{'met' if ok else 'NOT met'}")


def soft_section() -> None:
    subs = [(os.urandom(16), os.urandom(16)) for _ in range(N)]
    rands = [os.urandom(16) for _ in range(N)]
    sqn = 0x20
    sqn_b = sqn.to_bytes(6, "big")
    k, opc = subs[0]
    v = Milenage(k, opc).vector(rands[0], sqn, AMF)
    ref = reference_vector(k, opc, rands[0], sqn_b, AMF)
    assert (v.xres, v.ck, v.ik, v.autn) == ref[1:5], "reference and hsm_sim disagree"

    with tempfile.TemporaryDirectory() as d:
        hsm = SoftHsm.init(Path(d) / "hsm", components=[os.urandom(32), os.urandom(32)])
        owners = [str(8949000000000000000 + i) for i in range(N)]
        refs = [(hsm.import_clear(o, KeyType.KI, k), hsm.import_clear(o, KeyType.OPC, c))
                for o, (k, c) in zip(owners, subs, strict=True)]
        (hv,) = hsm.milenage_vectors(refs[0][0], refs[0][1], [sqn], AMF, [rands[0]])
        assert hv == v, "SoftHsm and the clear-key Milenage disagree"
        five = rands[:5]
        sqn5 = [sqn + (i << 5) for i in range(5)]

        def ref_distinct() -> int:
            for (k, o), r in zip(subs, rands, strict=True):
                reference_vector(k, o, r, sqn_b, AMF)
            return N

        def ref_one_encryptor() -> int:
            for (k, o), r in zip(subs, rands, strict=True):
                enc = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
                x = _xor(r, o)
                for _ in range(6):
                    x = enc.update(x)
            return N

        def clear_distinct() -> int:
            for (k, o), r in zip(subs, rands, strict=True):
                vector(k, o, r, sqn, AMF)
            return N

        def hsm_distinct() -> int:
            mv = hsm.milenage_vectors
            for (ki, oc), r in zip(refs, rands, strict=True):
                mv(ki, oc, [sqn], AMF, [r])
            return N

        def hsm_5() -> int:
            mv = hsm.milenage_vectors
            for ki, oc in refs[: N // 5]:
                mv(ki, oc, sqn5, AMF, five)
            return N // 5 * 5

        race = Race()
        race.add("ref", ref_distinct)
        race.add("ref1", ref_one_encryptor)
        race.add("clear", clear_distinct)
        race.add("hsm", hsm_distinct)
        race.add("hsm5", hsm_5)
        race.run(ROUNDS)

    print("soft HSM (hsm_sim.soft), one process, one core; vectors/s")
    print(f"  {'what':58} {'mode':9} {'CPU time':>12} {'wall':>12}")
    line("SoftHsm.milenage_vectors, Ki/OPc KeyRefs (v2 blobs)", "distinct", race, "hsm")
    line("SoftHsm.milenage_vectors, Ki/OPc KeyRefs (v2 blobs)", "5/sub", race, "hsm5")
    line("reference: naive 6-AES (fresh AES-ECB cipher per call)", "distinct", race, "ref")
    line("context: one AES-ECB encryptor, six update() calls", "distinct", race, "ref1")
    line("context: milenage.vector with clear K/OPc (no HSM)", "distinct", race, "clear")
    ref = race.cpu["ref"]
    print(verdict("soft distinct", race.cpu["hsm"], "naive 6-AES", ref, 5, 100_000))
    print(verdict("soft 5/sub", race.cpu["hsm5"], "naive 6-AES", ref, 5))


def pkcs11_section() -> None:
    env = ("SOFTHSM2_CONF", "SIMSMITH_TEST_PKCS11_MODULE", "SIMSMITH_TEST_PKCS11_TOKEN",
           "SIMSMITH_TEST_PKCS11_PIN")
    if not all(os.environ.get(v) for v in env):
        print("SoftHSM2 rows skipped: run scripts/services/softhsm.sh start and source "
              "build/services/softhsm.env (make bench does)")
        return
    from pkcs11 import Attribute, Mechanism, ObjectClass
    from pkcs11 import KeyType as P11KeyType

    from hsm_sim.pkcs11 import Pkcs11Hsm

    hsm = Pkcs11Hsm(os.environ["SIMSMITH_TEST_PKCS11_MODULE"],
                    os.environ["SIMSMITH_TEST_PKCS11_TOKEN"],
                    os.environ["SIMSMITH_TEST_PKCS11_PIN"], prefix=f"bench-{os.getpid()}",
                    sessions=1)
    try:
        m = 400 if QUICK else 600  # vectors per round: short rounds, many of them
        subs = [(os.urandom(16), os.urandom(16)) for _ in range(m)]
        rands = [os.urandom(16) for _ in range(m)]
        sqn = 0x20
        refs = [(hsm.import_clear(str(8949000000000000000 + i), KeyType.KI, k),
                 hsm.import_clear(str(8949000000000000000 + i), KeyType.OPC, o))
                for i, (k, o) in enumerate(subs)]
        (hv,) = hsm.milenage_vectors(refs[0][0], refs[0][1], [sqn], AMF, [rands[0]])
        assert hv == vector(subs[0][0], subs[0][1], rands[0], sqn, AMF), "SoftHSM2 disagrees"
        five = rands[:5]
        sqn5 = [sqn + (i << 5) for i in range(5)]
        with hsm._pool.entry(hsm._prepare) as entry:  # the naive loop's key, in the token
            key = entry.session.create_object({
                Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: P11KeyType.AES,
                Attribute.VALUE: subs[0][0], Attribute.TOKEN: False, Attribute.ENCRYPT: True,
                Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False})
            session_lock = entry.lock

        def naive_loop() -> int:
            # Six C_Encrypt per vector with the key already in the token (TS 35.206's figure).
            blk = bytes(16)
            enc = key.encrypt
            with session_lock:
                for _ in range(m):
                    for _ in range(6):
                        enc(blk, mechanism=Mechanism.AES_ECB)
            return m

        def hsm_distinct() -> int:
            mv = hsm.milenage_vectors
            for (ki, oc), r in zip(refs, rands, strict=True):
                mv(ki, oc, [sqn], AMF, [r])
            return m

        def hsm_5() -> int:
            mv = hsm.milenage_vectors
            for ki, oc in refs[: m // 5]:
                mv(ki, oc, sqn5, AMF, five)
            return m // 5 * 5

        race = Race()
        race.add("naive", naive_loop)
        race.add("hsm", hsm_distinct)
        race.add("hsm5", hsm_5)
        race.run(ROUNDS + 6)
        print("SoftHSM2 (hsm_sim.pkcs11, one session), one process; vectors/s")
        print(f"  {'what':58} {'mode':9} {'CPU time':>12} {'wall':>12}")
        line("Pkcs11Hsm.milenage_vectors, Ki/OPc KeyRefs", "distinct", race, "hsm")
        line("Pkcs11Hsm.milenage_vectors, Ki/OPc KeyRefs", "5/sub", race, "hsm5")
        line("reference: naive PKCS#11 loop (6 C_Encrypt, key in token)", "-", race, "naive")
        ref = race.cpu["naive"]
        print(verdict("SoftHSM2 distinct", race.cpu["hsm"], "naive PKCS#11 loop", ref, 1))
        print(verdict("SoftHSM2 5/sub", race.cpu["hsm5"], "naive PKCS#11 loop", ref, 1))
    finally:
        hsm.close()


def main() -> Any:
    print(f"Milenage through Hsm.milenage_vectors ({'quick' if QUICK else 'full'} run, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")
    soft_section()
    pkcs11_section()
    return 0


if __name__ == "__main__":
    main()
