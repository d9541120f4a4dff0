"""GSM conversion functions c2/c3 (TS 33.102 §6.8.1.2) against the TS 55.205 test data."""

from __future__ import annotations

import pytest

from hsm_sim.gsm import c2, c3, c4, c5, triplet_from_vector
from hsm_sim.milenage import Milenage
from tests.hsm.vectors import cases, h


@pytest.mark.parametrize("rec", cases("milenage/ts55205_gsm_test_sets.txt"))
def test_sres_and_kc(rec: dict[str, str]) -> None:
    res, ck, ik, _ = Milenage(h(rec, "k"), h(rec, "opc")).f2345(h(rec, "rand"))
    assert c2(res) == h(rec, "sres1")
    assert res[:4] == h(rec, "sres2")
    assert c3(ck, ik) == h(rec, "kc")
    t = triplet_from_vector(h(rec, "rand"), res, ck, ik)
    assert (t.sres, t.kc) == (h(rec, "sres1"), h(rec, "kc"))


def test_c4_c5() -> None:
    kc = bytes.fromhex("0102030405060708")
    assert c4(kc) == kc + kc
    assert c5(kc) == bytes.fromhex("0404040c") + kc + bytes.fromhex("0404040c")
    assert c2(bytes.fromhex("01020304")) == bytes.fromhex("01020304")
