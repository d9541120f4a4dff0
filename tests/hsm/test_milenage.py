"""Milenage against every test set of TS 35.207 and TS 35.208, plus AUTN/AUTS procedures."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from hsm_sim.errors import AuthenticationFailure, BadLength
from hsm_sim.milenage import (
    STANDARD,
    Constants,
    Milenage,
    derive_opc,
    sqn_after_resync,
    vector,
)
from tests.hsm.vectors import cases, h

ALL_SETS = cases("milenage/ts35207_test_sets.txt") + cases("milenage/ts35208_test_sets.txt")


@pytest.mark.parametrize("rec", cases("milenage/ts35207_kernel.txt"))
def test_kernel_is_aes128(rec: dict[str, str]) -> None:
    enc = Cipher(algorithms.AES(h(rec, "k")), modes.ECB()).encryptor()
    assert enc.update(h(rec, "plaintext")) == h(rec, "ciphertext")


@pytest.mark.parametrize("kernel", cases("milenage/ts35207_kernel.txt"))
def test_kernel_data_is_temp_of_the_implementors_sets(kernel: dict[str, str]) -> None:
    # TS 35.207's kernel inputs are RAND xor OPc of its test sets; the outputs are TEMP.
    rec = next(r.values[0] for r in cases("milenage/ts35207_test_sets.txt")
               if r.values[0]["set"] == kernel["set"])
    assert rec["k"] == kernel["k"]
    x = int(rec["rand"], 16) ^ int(rec["opc"], 16)
    assert f"{x:032x}" == kernel["plaintext"]
    m = Milenage(h(rec, "k"), h(rec, "opc"))
    assert m._temp(h(rec, "rand")).to_bytes(16, "big") == h(kernel, "ciphertext")


@pytest.mark.parametrize("rec", ALL_SETS)
def test_every_function(rec: dict[str, str]) -> None:
    k, rand, sqn, amf = h(rec, "k"), h(rec, "rand"), h(rec, "sqn"), h(rec, "amf")
    opc = derive_opc(k, h(rec, "op"))
    assert opc == h(rec, "opc")
    m = Milenage(k, opc)
    assert m.f1(rand, sqn, amf) == h(rec, "f1")
    assert m.f1star(rand, sqn, amf) == h(rec, "f1star")
    res, ck, ik, ak = m.f2345(rand)
    assert (res, ck, ik, ak) == (h(rec, "f2"), h(rec, "f3"), h(rec, "f4"), h(rec, "f5"))
    assert m.f5star(rand) == h(rec, "f5star")
    names = ("f1", "f1star", "f2", "f3", "f4", "f5", "f5star")
    assert m.all_functions(rand, sqn, amf) == {n: h(rec, n) for n in names}
    assert Milenage.from_op(k, h(rec, "op")).f1(rand, sqn, amf) == h(rec, "f1")


@pytest.mark.parametrize("rec", ALL_SETS)
def test_vector_autn_and_usim_check(rec: dict[str, str]) -> None:
    k, opc, rand, amf = h(rec, "k"), h(rec, "opc"), h(rec, "rand"), h(rec, "amf")
    sqn = int(rec["sqn"], 16)
    m = Milenage(k, opc)
    v = m.vector(rand, sqn, amf)
    ak = int(rec["f5"], 16)
    assert v.autn == (sqn ^ ak).to_bytes(6, "big") + amf + h(rec, "f1")
    assert (v.rand, v.xres, v.ck, v.ik) == (rand, h(rec, "f2"), h(rec, "f3"), h(rec, "f4"))
    assert m.check_autn(rand, v.autn) == (sqn, v.xres, v.ck, v.ik)
    assert vector(k, opc, rand, sqn, amf) == v
    bad = bytearray(v.autn)
    bad[-1] ^= 1
    with pytest.raises(AuthenticationFailure, match="MAC-A"):
        m.check_autn(rand, bytes(bad))


@pytest.mark.parametrize("rec", ALL_SETS)
def test_auts_matches_f1star_and_f5star(rec: dict[str, str]) -> None:
    k, opc, rand = h(rec, "k"), h(rec, "opc"), h(rec, "rand")
    sqn = int(rec["sqn"], 16)
    m = Milenage(k, opc)
    auts = m.auts(rand, sqn)
    ak_star = int(rec["f5star"], 16)
    assert auts[:6] == (sqn ^ ak_star).to_bytes(6, "big")
    assert auts[6:] == m.f1star(rand, h(rec, "sqn"), b"\x00\x00")
    assert m.resync(rand, auts) == sqn


def test_resync_refuses_bad_mac_s() -> None:
    m = Milenage(bytes(range(16)), bytes(16))
    auts = bytearray(m.auts(bytes(16), 0x20))
    auts[13] ^= 0x80
    with pytest.raises(AuthenticationFailure, match="MAC-S"):
        m.resync(bytes(16), bytes(auts))


@given(
    k=st.binary(min_size=16, max_size=16),
    opc=st.binary(min_size=16, max_size=16),
    rand=st.binary(min_size=16, max_size=16),
    sqn=st.integers(0, (1 << 48) - 1),
)
def test_auts_round_trip(k: bytes, opc: bytes, rand: bytes, sqn: int) -> None:
    m = Milenage(k, opc)
    assert m.resync(rand, m.auts(rand, sqn)) == sqn


@given(
    k=st.binary(min_size=16, max_size=16),
    opc=st.binary(min_size=16, max_size=16),
    rand=st.binary(min_size=16, max_size=16),
    sqn=st.integers(0, (1 << 48) - 1),
    amf=st.binary(min_size=2, max_size=2),
)
def test_fast_vector_equals_the_functions(
    k: bytes, opc: bytes, rand: bytes, sqn: int, amf: bytes
) -> None:
    m = Milenage(k, opc)
    v = m.vector(rand, sqn, amf)
    assert vector(k, opc, rand, sqn, amf) == v
    s = sqn.to_bytes(6, "big")
    res, ck, ik, ak = m.f2345(rand)
    assert v.autn[8:] == m.f1(rand, s, amf)
    assert (v.xres, v.ck, v.ik) == (res, ck, ik)
    assert v.autn[:6] == bytes(a ^ b for a, b in zip(s, ak, strict=True))


def test_custom_constants_change_every_output() -> None:
    k, opc, rand = bytes(range(16)), bytes(16), bytes(16)
    std = Milenage(k, opc).all_functions(rand, bytes(6), bytes(2))
    other = Constants(c=(1, 2, 3, 5, 9), r=(8, 16, 24, 40, 120))
    custom = Milenage(k, opc, other).all_functions(rand, bytes(6), bytes(2))
    assert all(std[n] != custom[n] for n in std)
    assert Milenage(k, opc, STANDARD).all_functions(rand, bytes(6), bytes(2)) == std


def test_bad_constants_and_lengths() -> None:
    with pytest.raises(BadLength, match=r"r1\.\.r5"):
        Constants(r=(64, 0, 32, 64, 128))
    with pytest.raises(BadLength, match="K must be 16 bytes, got 15"):
        Milenage(bytes(15), bytes(16))
    m = Milenage(bytes(16), bytes(16))
    with pytest.raises(BadLength, match="RAND"):
        m.f2345(bytes(15))
    with pytest.raises(BadLength, match="SQN"):
        m.vector(bytes(16), 1 << 48, bytes(2))
    with pytest.raises(BadLength, match="AUTS"):
        m.resync(bytes(16), bytes(13))
    with pytest.raises(BadLength, match="OPc must be 16 bytes"):
        vector(bytes(16), bytes(8), bytes(16), 0, bytes(2))
    with pytest.raises(BadLength, match="SQN"):
        vector(bytes(16), bytes(16), bytes(16), -1, bytes(2))


def test_sqn_after_resync_steps_seq_and_keeps_ind() -> None:
    assert sqn_after_resync(0x20 | 3, ind_bits=5, ind=7) == (2 << 5) | 7
    assert sqn_after_resync(0, ind_bits=5) == 1 << 5


def test_repr_hides_keys() -> None:
    k = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
    r = repr(Milenage(k, bytes(16)))
    assert "465b" not in r and "hidden" in r
