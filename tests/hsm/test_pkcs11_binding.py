"""The PKCS#11 backend's v2 blobs on SoftHSM2 (docs/hsm.md "Blob format"): a Ki is a token-key
blob (03 || N || GCM tag || RFC 5649), other keys are values sealed by the token with AES-GCM
(02 || N || ciphertext || tag); owner, type and every byte are bound; v1 blobs written before
still work and `rewrap` turns them into v2; the direct calls (hsm_sim.p11raw) and python-pkcs11
agree on every blob."""

from __future__ import annotations

import os
from typing import Any

import pytest

import hsm_sim.pkcs11 as p11mod
from hsm_sim.binding import V2, V2_TOKEN_KEY, is_v2, wrapped_length
from hsm_sim.errors import TamperedBlob, WrongKeyType
from hsm_sim.keyref import KeyRef, KeyType
from hsm_sim.milenage import Milenage
from hsm_sim.p11raw import RawUnavailable
from tests.hsm.conftest import pkcs11_env
from tests.hsm.vectors import h, load

OWNER = "8949000000000000301"
OTHER = "8949000000000000319"


def v1_ref(hsm: Any, owner: str, key_type: KeyType, key: bytes) -> KeyRef:
    """A ref as the backend wrote them before v2 (RFC 5649 under the derived per-owner KWK)."""
    with hsm._pool.entry(hsm._prepare):
        return hsm._wrap_object_v1(owner, key_type, hsm._session_key(key))  # type: ignore[no-any-return]


def test_v2_blob_forms(p11hsm: Any) -> None:
    ki = p11hsm.import_clear(OWNER, KeyType.KI, bytes(range(16)))
    opc = p11hsm.generate(OWNER, KeyType.OPC)
    pin = p11hsm.generate_code(OWNER, KeyType.PIN, 4)
    assert ki.blob[0] == V2_TOKEN_KEY and len(ki.blob) == 1 + 12 + 16 + 24
    assert opc.blob[0] == V2 and len(opc.blob) == 1 + 12 + 16 + 16
    assert pin.blob[0] == V2 and len(pin.blob) == 1 + 12 + 8 + 16
    assert [wrapped_length(r.blob) for r in (ki, opc, pin)] == [16, 16, 8]
    assert bytes(range(16)).hex() not in ki.blob.hex()


def test_v2_blobs_are_bound_to_owner_type_and_every_byte(p11hsm: Any) -> None:
    ki = p11hsm.generate(OWNER, KeyType.KI)
    opc = p11hsm.generate(OWNER, KeyType.OPC)
    p11hsm.milenage_vectors(ki, opc, [32])
    for ref in (ki, opc):
        for pos in range(len(ref.blob)):
            bad = bytearray(ref.blob)
            bad[pos] ^= 0x01
            forged = KeyRef("pkcs11", ref.key_type, OWNER, "storage", bytes(bad))
            with pytest.raises(TamperedBlob):
                if ref.key_type is KeyType.KI:
                    p11hsm.milenage_vectors(forged, opc, [32])
                else:
                    p11hsm.milenage_vectors(ki, forged, [32])
        with pytest.raises(TamperedBlob, match=OTHER):
            p11hsm.kcv(KeyRef("pkcs11", ref.key_type, OTHER, "storage", ref.blob))
    with pytest.raises(TamperedBlob):  # an OPc blob presented as a Ki, and the other way
        p11hsm.milenage_vectors(KeyRef("pkcs11", KeyType.KI, OWNER, "storage", opc.blob), opc,
                                [32])
    with pytest.raises(TamperedBlob):
        p11hsm.kcv(KeyRef("pkcs11", KeyType.OPC, OWNER, "storage", ki.blob))
    with pytest.raises(TamperedBlob, match="byte 0 is 05"):
        p11hsm.kcv(KeyRef("pkcs11", KeyType.KI, OWNER, "storage", b"\x05" + ki.blob[1:]))
    with pytest.raises(WrongKeyType):
        p11hsm.milenage_vectors(opc, ki, [32])


def test_v1_blobs_still_work_and_rewrap_to_v2(p11hsm: Any) -> None:
    rec = load("milenage/ts35208_test_sets.txt")[2]
    k, o = h(rec, "k"), h(rec, "opc")
    ki1, opc1 = v1_ref(p11hsm, OWNER, KeyType.KI, k), v1_ref(p11hsm, OWNER, KeyType.OPC, o)
    assert not is_v2(ki1.blob) and len(ki1.blob) == 24
    sqn, rand, amf = int(rec["sqn"], 16), h(rec, "rand"), h(rec, "amf")
    (v,) = p11hsm.milenage_vectors(ki1, opc1, [sqn], amf, [rand])
    assert v == Milenage(k, o).vector(rand, sqn, amf)

    ki2, opc2 = p11hsm.rewrap([ki1, opc1])
    assert (ki2.blob[0], opc2.blob[0]) == (V2_TOKEN_KEY, V2)
    assert p11hsm.milenage_vectors(ki2, opc2, [sqn], amf, [rand]) == [v]
    assert p11hsm.rewrap([ki2, opc2]) == [ki2, opc2]
    moved = KeyRef("pkcs11", KeyType.KI, OTHER, "storage", ki1.blob)
    with pytest.raises(TamperedBlob):
        p11hsm.rewrap([moved])


def test_direct_calls_and_python_pkcs11_agree(p11hsm: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A second instance without the direct calls (as for a module that does not export its
    functions) reads what the first wrote, and the other way round, with the same vectors."""
    env = pkcs11_env()

    def unavailable(path: str) -> Any:
        raise RawUnavailable(path)

    monkeypatch.setattr(p11mod, "raw_module", unavailable)
    plain = p11mod.Pkcs11Hsm(env["SIMSMITH_TEST_PKCS11_MODULE"],
                             env["SIMSMITH_TEST_PKCS11_TOKEN"], env["SIMSMITH_TEST_PKCS11_PIN"],
                             prefix=p11hsm._prefix)
    try:
        rand = os.urandom(16)
        a = (p11hsm.generate(OWNER, KeyType.KI), p11hsm.generate(OWNER, KeyType.OPC))
        b = (plain.generate(OTHER, KeyType.KI), plain.generate(OTHER, KeyType.OPC))
        for ki, opc in (a, b):
            assert is_v2(ki.blob) and is_v2(opc.blob)
            fast = p11hsm.milenage_vectors(ki, opc, [64, 96], rands=[rand, rand])
            assert plain.milenage_vectors(ki, opc, [64, 96], rands=[rand, rand]) == fast
            assert plain.kcv(opc) == p11hsm.kcv(opc) and plain.kcv(ki) == p11hsm.kcv(ki)
    finally:
        plain.close()
