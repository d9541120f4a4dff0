"""The PKCS#11 backend on SoftHSM2: the same published vectors as the soft backend, binding,
export, and blob compatibility with the soft backend's derivation."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from cryptography.hazmat.primitives import keywrap

from hsm_sim.eki import EkiScheme, encrypt_eki
from hsm_sim.errors import (
    DuplicateKey,
    ExportRefused,
    HsmError,
    TamperedBlob,
    WrongKeyType,
    WrongOwner,
    WrongPurpose,
)
from hsm_sim.hsm import Hsm, KekPurpose, vectors
from hsm_sim.kcv import kcv, legacy_kcv
from hsm_sim.keyref import KeyRef, KeyType
from hsm_sim.milenage import Milenage
from tests.hsm.vectors import cases, h

TK = bytes.fromhex("00112233445566778899aabbccddeeff")
EK = bytes.fromhex("0f0e0d0c0b0a09080706050403020100")
_n = itertools.count()


def _name(base: str) -> str:
    return f"{base}{next(_n)}"


@pytest.fixture(scope="module")
def keks(p11hsm: Any) -> dict[str, str]:
    names = {"transport": _name("vendor"), "export": _name("hss"), "clear": _name("osmo")}
    p11hsm.kek_add(names["transport"], KekPurpose.TRANSPORT, [TK])
    p11hsm.kek_add(names["export"], KekPurpose.EXPORT, [EK])
    p11hsm.kek_add(names["clear"], KekPurpose.EXPORT, insecure_clear=True)
    return names


def test_is_an_hsm(p11hsm: Any) -> None:
    assert isinstance(p11hsm, Hsm)


@pytest.mark.parametrize("rec", cases("milenage/ts35208_test_sets.txt"))
def test_published_vectors_in_the_token(p11hsm: Any, rec: dict[str, str]) -> None:
    owner = "8949000000000000001"
    ki = p11hsm.import_clear(owner, KeyType.KI, h(rec, "k"))
    op = p11hsm.import_clear("operator", KeyType.OP, h(rec, "op"))
    opc = p11hsm.derive_opc(ki, op)
    assert p11hsm.kcv(opc) == kcv(h(rec, "opc"))
    sqn = int(rec["sqn"], 16)
    (v,) = p11hsm.milenage_vectors(ki, opc, [sqn], h(rec, "amf"), [h(rec, "rand")])
    assert (v.xres, v.ck, v.ik, v.autn[8:]) == (h(rec, "f2"), h(rec, "f3"), h(rec, "f4"),
                                                 h(rec, "f1"))
    m = p11hsm.milenage(ki, opc)
    names = ("f1", "f1star", "f2", "f3", "f4", "f5", "f5star")
    assert m.all_functions(h(rec, "rand"), h(rec, "sqn"), h(rec, "amf")) == {
        n: h(rec, n) for n in names
    }
    auts = Milenage(h(rec, "k"), h(rec, "opc")).auts(h(rec, "rand"), sqn)
    assert p11hsm.milenage_resync(ki, opc, h(rec, "rand"), auts) == sqn


def test_kek_list_and_misuse(p11hsm: Any, keks: dict[str, str]) -> None:
    info = {k.name: k for k in p11hsm.kek_list()}
    t = info[keks["transport"]]
    assert (t.purpose, t.kcv, t.legacy_kcv) == (KekPurpose.TRANSPORT, kcv(TK).hex(),
                                                legacy_kcv(TK).hex())
    assert info[keks["clear"]].insecure_clear and "storage" in info
    with pytest.raises(DuplicateKey):
        p11hsm.kek_add(keks["transport"], KekPurpose.TRANSPORT, [TK])
    with pytest.raises(WrongPurpose):
        p11hsm.import_encrypted("1", KeyType.KI, bytes(16), keks["export"], EkiScheme.AES128_ECB)


def test_generate_import_and_binding(p11hsm: Any, keks: dict[str, str]) -> None:
    a, b = "8949000000000000100", "8949000000000000118"
    ki = p11hsm.generate(a, KeyType.KI)
    opc = p11hsm.import_encrypted(a, KeyType.OPC, encrypt_eki(EkiScheme.AES128_CBC, TK,
                                                             bytes(range(16))),
                                  keks["transport"], EkiScheme.AES128_CBC)
    assert p11hsm.kcv(opc) == kcv(bytes(range(16)))
    vs = vectors(p11hsm, ki, opc, count=2, sqn=32)
    k, o = p11hsm.export([ki, opc], keks["clear"], "clear")
    for i, v in enumerate(vs):
        assert Milenage(k, o).check_autn(v.rand, v.autn)[0] == 32 + (i << 5)
    other = p11hsm.generate(b, KeyType.OPC)
    with pytest.raises(WrongOwner):
        p11hsm.milenage_vectors(ki, other, [1])
    with pytest.raises(WrongKeyType):
        p11hsm.milenage_vectors(opc, ki, [1])
    with pytest.raises(TamperedBlob):
        p11hsm.kcv(KeyRef(ki.backend, ki.key_type, b, ki.kek, ki.blob))
    with pytest.raises(TamperedBlob):
        p11hsm.milenage_vectors(KeyRef(ki.backend, KeyType.KI, a, ki.kek, opc.blob), opc, [1])


def test_batch_and_export(p11hsm: Any, keks: dict[str, str]) -> None:
    rows = [(f"89490000000000002{i:02d}", encrypt_eki(EkiScheme.AES128_ECB, TK, bytes([i]) * 16),
             encrypt_eki(EkiScheme.AES128_ECB, TK, bytes([i + 50]) * 16)) for i in range(5)]
    refs = p11hsm.import_batch(rows, keks["transport"], EkiScheme.AES128_ECB)
    for i, (ki, opc) in enumerate(refs):
        assert p11hsm.kcv(ki) == kcv(bytes([i]) * 16)
        assert opc is not None and p11hsm.kcv(opc) == kcv(bytes([i + 50]) * 16)
    (w,) = p11hsm.export([refs[0][0]], keks["export"])
    assert keywrap.aes_key_unwrap_with_padding(EK, w) == bytes(16)
    with pytest.raises(ExportRefused):
        p11hsm.export([refs[0][0]], keks["export"], "clear")
    with pytest.raises(ExportRefused):
        p11hsm.export([refs[0][0]], keks["clear"])
    with pytest.raises(HsmError):
        p11hsm.import_encrypted("1", KeyType.KI, bytes(16), keks["transport"],
                                EkiScheme.TDES2_ECB)


def test_soft_keyref_refused(p11hsm: Any) -> None:
    soft = KeyRef("soft", KeyType.KI, "1", "storage", bytes(24))
    with pytest.raises(WrongKeyType, match="soft backend"):
        p11hsm.kcv(soft)
    assert "token" in repr(p11hsm)
