"""SUCI de-concealment per second on one core, through the HSM, beside a straightforward
implementation measured in the same run (issue 20 item 6).

Each de-concealment is TS 33.501 C.3.3 on a fresh scheme output (a new ephemeral key per SUCI,
as UEs send them): ECDH with the home-network private key, X9.63 KDF, MAC check, AES-CTR.

  soft HSM     SoftHsm.suci_deconceal(ref, scheme output): the private key is a wrapped KeyRef
               (as stored in `suci_key`), loaded once into the HSM's memory and reused; audit
               sink called per SUCI (NullAudit here: the store's audit event is the service's)
  SoftHSM2     Pkcs11Hsm.suci_deconceal: ECDH1_DERIVE in the token per SUCI (session private key
               object loaded once per session), Z read back, KDF/AES/HMAC in the host
  + parse      Suci.parse of the string form, then the soft HSM row: what the API route adds
               before its audit write
  reference    straightforward: the private key parsed from its bytes for every SUCI (what a
               UDM reading its configured hex key per request does), then `cryptography`'s
               X25519 / ECDH, X963KDF, AES-CTR and HMAC objects

Rates are per second of this process's CPU time (best of interleaved rounds, one thread = one
core), so other work on a shared machine slows them less than wall time; wall rates beside.
Goal: >= 10,000/s for Profile A through the soft HSM on one core. Exits 0 whether goals are met.
Usage: .venv/bin/python bench/suci/bench_deconceal.py [--quick]
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from hsm_sim.ecies import ProtectionScheme, conceal
from hsm_sim.eki import EkiScheme, encrypt_eki
from hsm_sim.hsm import KekPurpose
from hsm_sim.soft import SoftHsm
from simcore.suci import Suci

QUICK = "--quick" in sys.argv
N = 1_000 if QUICK else 3_000  # SUCIs per round
ROUNDS = 3 if QUICK else 7
A, B = ProtectionScheme.PROFILE_A, ProtectionScheme.PROFILE_B
MSIN = bytes.fromhex("00012080f6")
GOAL_A = 10_000


def reference(scheme: ProtectionScheme, private: bytes, output: bytes) -> bytes:
    """Straightforward C.3.3: key from bytes, ECDH, X9.63 KDF, HMAC check, AES-CTR."""
    n = 32 if scheme is A else 33
    r, c, t = output[:n], output[n:-8], output[-8:]
    if scheme is A:
        z = x25519.X25519PrivateKey.from_private_bytes(private).exchange(
            x25519.X25519PublicKey.from_public_bytes(r))
    else:
        key = ec.derive_private_key(int.from_bytes(private, "big"), ec.SECP256R1())
        z = key.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), r))
    k = X963KDF(hashes.SHA256(), 64, r).derive(z)
    mac = hmac.HMAC(k[32:], hashes.SHA256())
    mac.update(c)
    if mac.finalize()[:8] != t:
        raise ValueError("MAC")
    return Cipher(algorithms.AES(k[:16]), modes.CTR(k[16:32])).decryptor().update(c)


def measure(fn: Callable[[bytes], Any], outputs: list[bytes]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for o in outputs:
        fn(o)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return len(outputs) / max(cpu, 1e-9), len(outputs) / max(wall, 1e-9)


def pkcs11_hsm() -> Any | None:
    env = ("SIMSMITH_TEST_PKCS11_MODULE", "SIMSMITH_TEST_PKCS11_TOKEN", "SIMSMITH_TEST_PKCS11_PIN")
    if not all(os.environ.get(v) for v in env):
        return None
    from hsm_sim.pkcs11 import Pkcs11Hsm

    module, token, pin = (os.environ[v] for v in env)
    return Pkcs11Hsm(module, token, pin, prefix=f"simsmith-bench-{os.getpid()}", sessions=1)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
          f"Python {platform.python_version()}; one thread")
    rows: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as d:
        soft = SoftHsm.init(Path(d) / "hsm", components=[os.urandom(32), os.urandom(32)])
        p11 = pkcs11_hsm()
        tk = os.urandom(16)
        soft.kek_add("vendor", KekPurpose.TRANSPORT, [tk])
        if p11 is not None:
            p11.kek_add(f"bench-{os.getpid()}", KekPurpose.TRANSPORT, [tk])
        cases = []
        for scheme, key_id in ((A, 1), (B, 2)):
            private = (x25519.X25519PrivateKey.generate().private_bytes_raw() if scheme is A
                       else ec.generate_private_key(ec.SECP256R1()).private_numbers()
                       .private_value.to_bytes(32, "big"))
            data = encrypt_eki(EkiScheme.AES128_ECB, tk, private)
            ref, public = soft.suci_import(key_id, scheme, data, "vendor")
            p11ref = (p11.suci_import(key_id, scheme, data, f"bench-{os.getpid()}")[0]
                      if p11 is not None else None)
            outputs = [conceal(scheme, public, MSIN) for _ in range(N)]
            texts = [f"suci-0-001-01-0-{int(scheme)}-{key_id}-{o.hex()}" for o in outputs]
            assert soft.suci_deconceal(ref, outputs[0]) == MSIN
            assert reference(scheme, private, outputs[0]) == MSIN
            cases.append((scheme, ref, p11ref, private, outputs, texts))
        p11_n = max(N // 10, 100)
        for _ in range(ROUNDS):  # interleaved: every row sees the same machine load
            for scheme, ref, p11ref, private, outputs, texts in cases:
                tag = scheme.label
                rows.setdefault(f"{tag}: soft HSM", []).append(measure(
                    lambda o, ref=ref: soft.suci_deconceal(ref, o), outputs))
                rows.setdefault(f"{tag}: soft HSM + Suci.parse", []).append(measure(
                    lambda t, ref=ref: soft.suci_deconceal(ref, Suci.parse(t).scheme_output),
                    texts))  # type: ignore[arg-type]
                rows.setdefault(f"{tag}: reference (key parsed per SUCI)", []).append(measure(
                    lambda o, s=scheme, p=private: reference(s, p, o), outputs))
                if p11 is not None and p11ref is not None:
                    rows.setdefault(f"{tag}: SoftHSM2", []).append(measure(
                        lambda o, r=p11ref: p11.suci_deconceal(r, o), outputs[:p11_n]))
        if p11 is not None:
            p11.close()
    print(f"{'de-concealments per second (one core)':44} {'CPU':>10} {'wall':>10}")
    best = {k: (max(c for c, _ in v), max(w for _, w in v)) for k, v in rows.items()}
    for k, (c, w) in best.items():
        print(f"{k:44} {c:10,.0f} {w:10,.0f}")
    for tag in (A.label, B.label):
        ratio = best[f"{tag}: soft HSM"][0] / best[f"{tag}: reference (key parsed per SUCI)"][0]
        print(f"{tag}: soft HSM / reference = {ratio:.2f}x")
    a = best[f"{A.label}: soft HSM"][0]
    print(f"goal Profile A through the HSM >= {GOAL_A:,}/s on one core: "
          f"{'met' if a >= GOAL_A else 'NOT met'} ({a:,.0f}/s)")
    if not any("SoftHSM2" in k for k in best):
        print("SoftHSM2 rows skipped: SIMSMITH_TEST_PKCS11_* not set")


if __name__ == "__main__":
    main()
