"""The virtual card's Milenage against 3GPP TS 35.208 V17 §4.3 test set 1, and c2/c3."""

from __future__ import annotations

from cards.virtual.milenage_card import Milenage, c2_sres, c3_kc, opc_from_op

K = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
RAND = bytes.fromhex("23553cbe9637a89d218ae64dae47bf35")
OP = bytes.fromhex("cdc202d5123e20f62b6d676ac72cb318")
SQN = bytes.fromhex("ff9bb4d0b607")
AMF = bytes.fromhex("b9b9")


def test_test_set_1() -> None:
    opc = opc_from_op(K, OP)
    assert opc.hex() == "cd63cb71954a9f4e48a5994e37a02baf"
    m = Milenage(K, opc)
    mac_a, mac_s = m.f1(RAND, SQN, AMF)
    assert mac_a.hex() == "4a9ffac354dfafb3"
    assert mac_s.hex() == "01cfaf9ec4e871e9"
    res, ck, ik, ak, ak_s = m.f2345(RAND)
    assert res.hex() == "a54211d5e3ba50bf"
    assert ck.hex() == "b40ba9a3c58b2a05bbf0d987b21bf8cb"
    assert ik.hex() == "f769bcd751044604127672711c6d3441"
    assert ak.hex() == "aa689c648370"
    assert ak_s.hex() == "451e8beca43b"
    assert "465b" not in repr(m)


def test_c2_c3() -> None:
    assert c2_sres(bytes.fromhex("a54211d5e3ba50bf")).hex() == "46f8416a"
    ck = bytes.fromhex("b40ba9a3c58b2a05bbf0d987b21bf8cb")
    ik = bytes.fromhex("f769bcd751044604127672711c6d3441")
    assert c3_kc(ck, ik).hex() == "eae4be823af9a08b"
