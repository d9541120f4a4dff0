"""Home-network keys in the HSM (hsm_sim.suci_keys) on both backends: generate, import under a
transport KEK, de-conceal the TS 33.501 Annex C.4 scheme outputs, bindings and refusals."""

from __future__ import annotations

import os
from typing import Any

import pytest

from hsm_sim.ecies import MacFailure, MalformedSchemeOutput, ProtectionScheme, conceal
from hsm_sim.eki import EkiScheme, encrypt_eki
from hsm_sim.errors import BadLength, HsmLocked, TamperedBlob, WrongKeyType, WrongOwner
from hsm_sim.hsm import KekPurpose
from hsm_sim.keyref import KeyRef, KeyType
from hsm_sim.soft import SoftHsm
from tests.hsm.test_patch_keys import Recorder
from tests.hsm.vectors import cases, h

C4 = {c.values[0]["set"]: c.values[0] for c in cases("suci/ts33501_annex_c4.txt")}
A, B = ProtectionScheme.PROFILE_A, ProtectionScheme.PROFILE_B
SETS = {A: C4["C.4.3.1"], B: C4["C.4.4.1"]}


def transport(hsm: Any) -> tuple[str, bytes]:
    name, key = f"suci-t-{os.urandom(4).hex()}", os.urandom(16)
    hsm.kek_add(name, KekPurpose.TRANSPORT, [key])
    return name, key


def imported(hsm: Any, scheme: ProtectionScheme, key_id: int) -> KeyRef:
    name, tk = transport(hsm)
    rec = SETS[scheme]
    data = encrypt_eki(EkiScheme.AES128_ECB, tk, h(rec, "hn_private"))
    ref, public = hsm.suci_import(key_id, scheme, data, name)
    want = h(rec, "hn_public_compressed") if scheme is B else h(rec, "hn_public")
    assert public == want
    return ref


@pytest.mark.parametrize("scheme", [A, B])
def test_imported_annex_key_deconceals_the_annex_output(hsm: Any, scheme: ProtectionScheme
                                                        ) -> None:
    ref = imported(hsm, scheme, 27)
    assert (ref.key_type, ref.owner) == ({A: KeyType.HN_A, B: KeyType.HN_B}[scheme], "suci-27")
    rec = SETS[scheme]
    assert hsm.suci_deconceal(ref, h(rec, "scheme_output"), key_id=27) == h(rec, "scheme_input")
    # the NAI set (17 octets, two counter blocks) with the same key
    nai = C4["C.4.3.2" if scheme is A else "C.4.4.2"]
    assert hsm.suci_deconceal(ref, h(nai, "scheme_output")) == h(nai, "scheme_input")
    assert KeyRef.from_token(ref.to_token()) == ref
    assert "HNKey" in repr(ref) and rec["hn_private"][:16].lower() not in ref.to_token().lower()


@pytest.mark.parametrize("scheme", [A, B])
def test_generated_key_round_trip(hsm: Any, scheme: ProtectionScheme) -> None:
    ref, public = hsm.suci_generate(3, scheme)
    assert hsm.suci_public(ref) == public
    for _ in range(3):  # the loaded key is reused; each SUCI has its own ephemeral key
        out = conceal(scheme, public, b"\x00\x01\x20\x80\xf6")
        assert hsm.suci_deconceal(ref, out, key_id=3) == b"\x00\x01\x20\x80\xf6"


@pytest.mark.parametrize("scheme", [A, B])
def test_refusals(hsm: Any, scheme: ProtectionScheme) -> None:
    ref = imported(hsm, scheme, 9)
    rec = SETS[scheme]
    out = bytearray(h(rec, "scheme_output"))
    out[-1] ^= 1
    with pytest.raises(MacFailure, match="MAC tag"):
        hsm.suci_deconceal(ref, bytes(out))
    with pytest.raises(MalformedSchemeOutput, match="too short"):
        hsm.suci_deconceal(ref, h(rec, "scheme_output")[:40])
    with pytest.raises(WrongOwner, match="suci-9 used for key id 10"):
        hsm.suci_deconceal(ref, h(rec, "scheme_output"), key_id=10)
    moved = KeyRef(ref.backend, ref.key_type, "suci-10", ref.kek, ref.blob)
    with pytest.raises(TamperedBlob):
        hsm.suci_deconceal(moved, h(rec, "scheme_output"))
    other = KeyType.HN_B if scheme is A else KeyType.HN_A
    with pytest.raises(TamperedBlob):
        hsm.suci_public(KeyRef(ref.backend, other, ref.owner, ref.kek, ref.blob))
    with pytest.raises(WrongKeyType, match="home-network key"):
        hsm.suci_deconceal(KeyRef(ref.backend, KeyType.OPC, ref.owner, ref.kek, ref.blob), b"")
    with pytest.raises(BadLength, match="0 to 255"):
        hsm.suci_generate(256, scheme)


def test_bad_ephemeral_keys(hsm: Any) -> None:
    a, b = imported(hsm, A, 11), imported(hsm, B, 12)
    with pytest.raises(MalformedSchemeOutput, match="low-order"):
        hsm.suci_deconceal(a, bytes(32) + b"\x01" + bytes(8))
    eb = C4["C.4.4.1"]
    uncompressed = bytes.fromhex(
        "049AAB8376597021E855679A9778EA0B67396E68C66DF32C0F41E9ACCA2DA9B9D1D1F44EA1C87AA7478B95"
        "4537BDE79951E748A43294A4F4CF86EAFF1789C9C81F")
    with pytest.raises(MalformedSchemeOutput, match="compressed secp256r1"):
        hsm.suci_deconceal(b, uncompressed + h(eb, "ciphertext") + h(eb, "mac_tag"))
    with pytest.raises(MalformedSchemeOutput, match="compressed secp256r1"):
        hsm.suci_deconceal(b, b"\x02" + b"\xff" * 32 + h(eb, "ciphertext") + h(eb, "mac_tag"))


def test_clear_export_to_an_insecure_target_gives_the_imported_key(hsm: Any) -> None:
    ref = imported(hsm, B, 13)
    target = f"suci-x-{os.urandom(4).hex()}"
    hsm.kek_add(target, KekPurpose.EXPORT, insecure_clear=True)
    (clear,) = hsm.export([ref], target, "clear")
    assert clear == h(SETS[B], "hn_private")


def test_audit_records_key_ids_only(tmp_path: Any) -> None:
    rec = Recorder()
    hsm = SoftHsm.init(tmp_path / "hsm", components=[b"\x11" * 32, b"\x2c" * 32], audit=rec)
    ref = imported(hsm, A, 27)
    hsm.suci_deconceal(ref, h(SETS[A], "scheme_output"))
    with pytest.raises(MacFailure):
        hsm.suci_deconceal(ref, h(SETS[A], "scheme_output")[:-1] + b"\x00")
    suci = [r for r in rec.records if r[0].startswith("suci.")]
    assert suci == [
        ("suci.key_import", "suci-27",
         {"scheme": "Profile A", "transport": suci[0][2]["transport"]}),
        ("suci.deconceal", "suci-27", {"result": "ok"}),
        ("suci.deconceal", "suci-27", {"result": "MacFailure"}),
    ]
    text = repr(rec.records)
    assert SETS[A]["hn_private"] not in text and "00012080f6" not in text


def test_a_closed_soft_hsm_does_not_deconceal_with_a_loaded_key(tmp_path: Any) -> None:
    hsm = SoftHsm.init(tmp_path / "hsm", components=[b"\x11" * 32, b"\x2c" * 32])
    ref = imported(hsm, A, 5)
    assert hsm.suci_deconceal(ref, h(SETS[A], "scheme_output")) == h(SETS[A], "scheme_input")
    hsm.close()
    with pytest.raises(HsmLocked):
        hsm.suci_deconceal(ref, h(SETS[A], "scheme_output"))
