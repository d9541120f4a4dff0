"""TUAK against the TS 35.233 test sets; Keccak-f[1600] against hashlib's SHA3."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hsm_sim.errors import AuthenticationFailure, BadLength
from hsm_sim.tuak import Tuak, derive_topc, keccak_f1600
from tests.hsm.vectors import cases, h


def _sha3_256(msg: bytes) -> bytes:
    # A one-block SHA3-256 sponge over our permutation (FIPS 202 §4, §6.1), msg < 136 bytes.
    state = bytearray(200)
    block = bytearray(msg + b"\x06" + bytes(135 - len(msg)))
    block[135] |= 0x80
    state[:136] = block
    return keccak_f1600(bytes(state))[:32]


@pytest.mark.parametrize("msg", [b"", b"abc", bytes(range(100))])
def test_permutation_matches_sha3(msg: bytes) -> None:
    assert _sha3_256(msg) == hashlib.sha3_256(msg).digest()


@pytest.mark.parametrize("rec", cases("tuak/ts35233_test_sets.txt"))
def test_ts35233(rec: dict[str, str]) -> None:
    k, rand, sqn, amf = h(rec, "k"), h(rec, "rand"), h(rec, "sqn"), h(rec, "amf")
    it = int(rec["iterations"])
    topc = derive_topc(k, h(rec, "top"), it)
    assert topc == h(rec, "topc")
    t = Tuak(
        k, topc, mac_len=len(h(rec, "f1")), res_len=len(h(rec, "f2")),
        ck_len=len(h(rec, "f3")), ik_len=len(h(rec, "f4")), iterations=it,
    )
    assert t.f1(rand, sqn, amf) == h(rec, "f1")
    assert t.f1star(rand, sqn, amf) == h(rec, "f1star")
    assert t.f2345(rand) == (h(rec, "f2"), h(rec, "f3"), h(rec, "f4"), h(rec, "f5"))
    assert t.f5star(rand) == h(rec, "f5star")
    v = t.vector(rand, int(rec["sqn"], 16), amf)
    assert v.autn[8:] == h(rec, "f1") and v.xres == h(rec, "f2")


@settings(max_examples=20, deadline=None)
@given(
    k=st.sampled_from([bytes(16), bytes(range(32))]),
    rand=st.binary(min_size=16, max_size=16),
    sqn=st.integers(0, (1 << 48) - 1),
)
def test_auts_round_trip(k: bytes, rand: bytes, sqn: int) -> None:
    t = Tuak(k, bytes(32))
    auts = t.auts(rand, sqn)
    assert t.resync(rand, auts) == sqn
    with pytest.raises(AuthenticationFailure):
        t.resync(rand, auts[:-1] + bytes([auts[-1] ^ 1]))


def test_lengths_refused() -> None:
    with pytest.raises(BadLength, match="K must be 16 or 32 bytes"):
        Tuak(bytes(24), bytes(32))
    with pytest.raises(BadLength, match="RES length"):
        Tuak(bytes(16), bytes(32), res_len=2)
    assert "hidden" in repr(Tuak(bytes(16), bytes(32)))


@pytest.mark.parametrize("mac_len", [8, 16, 32])
@pytest.mark.parametrize("res_len", [4, 8, 16, 32])
@pytest.mark.parametrize(("ck_len", "ik_len"), [(16, 16), (16, 32), (32, 16), (32, 32)])
def test_every_allowed_length(mac_len: int, res_len: int, ck_len: int, ik_len: int) -> None:
    rec = cases("tuak/ts35233_test_sets.txt")[1].values[0]
    t = Tuak(h(rec, "k"), h(rec, "topc"), mac_len=mac_len, res_len=res_len, ck_len=ck_len,
             ik_len=ik_len)
    res, ck, ik, ak = t.f2345(h(rec, "rand"))
    assert (len(res), len(ck), len(ik), len(ak)) == (res_len, ck_len, ik_len, 6)
    assert len(t.f1(h(rec, "rand"), h(rec, "sqn"), h(rec, "amf"))) == mac_len
    auts = t.auts(h(rec, "rand"), 77)
    assert len(auts) == 6 + mac_len and t.resync(h(rec, "rand"), auts) == 77
    # the output lengths enter INSTANCE, so a longer RES is not an extension of a shorter one
    if res_len == 8 and ck_len == ik_len == 16:
        assert res == h(rec, "f2")
