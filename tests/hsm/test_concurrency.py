"""One HSM shared by 16 threads, as the API shares it: generate, patch_keys, reveal_code, KCVs,
batch imports and Milenage vectors (TS 35.208 test sets) all run at once and every result is
checked. On the soft backend and on SoftHSM2 (the process's pooled instance, and a one-session
instance opened beside it, which must leave the first one logged in when it closes)."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from hsm_sim.eki import EkiScheme, encrypt_eki
from hsm_sim.hsm import KekPurpose, code_digits
from hsm_sim.kcv import kcv
from hsm_sim.keyref import KeyRef, KeyType
from hsm_sim.soft import SoftHsm
from tests.helpers.hsm import Slot
from tests.hsm.conftest import pkcs11_env
from tests.hsm.vectors import h, load

THREADS = 16
ROUNDS = 4
TK = bytes.fromhex("8899aabbccddeeff0011223344556677")
SETS = load("milenage/ts35208_test_sets.txt")
_n = itertools.count()


@pytest.fixture(params=["soft", "pkcs11", "pkcs11-1-session"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "soft":
        yield SoftHsm.init(tmp_path / "hsm", components=[b"\x11" * 32, b"\x2c" * 32])
    elif request.param == "pkcs11":
        yield request.getfixturevalue("p11hsm")
    else:
        first = request.getfixturevalue("p11hsm")
        env = pkcs11_env()
        from hsm_sim.pkcs11 import Pkcs11Hsm

        one = Pkcs11Hsm(env["SIMSMITH_TEST_PKCS11_MODULE"], env["SIMSMITH_TEST_PKCS11_TOKEN"],
                        env["SIMSMITH_TEST_PKCS11_PIN"], prefix=f"simsmith-test-{os.getpid()}",
                        sessions=1)
        assert one.sessions == 1
        yield one
        one.close()
        # The login is the process's, per token: closing one instance keeps it for the other.
        ref = first.generate("8949000000000000099", KeyType.KI)
        assert len(first.kcv(ref)) == 3


def _read(hsm: Any, ref: KeyRef, length: int) -> bytes:
    buf = bytearray(length)
    hsm.patch_keys(buf, [Slot("key", 0, length)], [ref], owner=ref.owner)
    return bytes(buf)


def _work(hsm: Any, transport: str, start: threading.Barrier, worker: int) -> int:
    start.wait()
    checks = 0
    for r in range(ROUNDS):
        owner = f"8949{worker:03d}{r:03d}{next(_n):09d}"
        ki = hsm.generate(owner, KeyType.KI)
        assert hsm.kcv(ki) == kcv(_read(hsm, ki, 16))

        pin = hsm.generate_code(owner, KeyType.PIN, 4)
        digits = hsm.reveal_code(pin, owner=owner)
        assert digits == code_digits(_read(hsm, pin, 8), pin) and len(digits) == 4

        keys = [os.urandom(16) for _ in range(4)]
        rows = [(f"{owner}{i}", encrypt_eki(EkiScheme.AES128_ECB, TK, keys[2 * i]),
                 encrypt_eki(EkiScheme.AES128_ECB, TK, keys[2 * i + 1])) for i in range(2)]
        refs = hsm.import_batch(rows, transport, EkiScheme.AES128_ECB)
        got = [_read(hsm, ref, 16) for pair in refs for ref in pair if ref is not None]
        assert got == keys

        rec = SETS[(worker + r) % len(SETS)]
        k = hsm.import_clear(owner, KeyType.KI, h(rec, "k"))
        opc = hsm.import_clear(owner, KeyType.OPC, h(rec, "opc"))
        (v,) = hsm.milenage_vectors(k, opc, [int(rec["sqn"], 16)], h(rec, "amf"),
                                    [h(rec, "rand")])
        assert (v.xres, v.ck, v.ik, v.autn[8:]) == (h(rec, "f2"), h(rec, "f3"), h(rec, "f4"),
                                                     h(rec, "f1"))
        checks += 5
    return checks


def test_threads_share_one_hsm(shared: Any) -> None:
    transport = f"conc{next(_n)}"
    shared.kek_add(transport, KekPurpose.TRANSPORT, [TK])
    start = threading.Barrier(THREADS)
    with ThreadPoolExecutor(THREADS) as pool:
        done = list(pool.map(lambda w: _work(shared, transport, start, w), range(THREADS)))
    assert done == [5 * ROUNDS] * THREADS
    if shared.backend == "pkcs11":
        assert len(shared._pool._all) <= shared.sessions  # never more sessions than the pool


@pytest.mark.parametrize("shared", ["pkcs11", "pkcs11-1-session"], indirect=True)
def test_a_milenage_object_is_shared_by_threads(shared: Any) -> None:
    """`milenage(ki, opc)` (an AuC cache entry; the PKCS#11 backend's) used by many threads at
    once: each kernel call holds the session its token key lives in."""
    owner = f"8949{next(_n):015d}"
    rec = SETS[0]
    m = shared.milenage(shared.import_clear(owner, KeyType.KI, h(rec, "k")),
                        shared.import_clear(owner, KeyType.OPC, h(rec, "opc")))
    start = threading.Barrier(THREADS)

    def run(_: int) -> int:
        start.wait()
        for _ in range(20):
            # generate meanwhile, so the key's session is also checked out by other calls
            shared.generate(owner, KeyType.KI)
            v = m.vector(h(rec, "rand"), int(rec["sqn"], 16), h(rec, "amf"))
            assert (v.xres, v.ck, v.ik) == (h(rec, "f2"), h(rec, "f3"), h(rec, "f4"))
        return 20

    with ThreadPoolExecutor(THREADS) as pool:
        assert sum(pool.map(run, range(THREADS))) == 20 * THREADS
