"""Key binding (hsm_sim.binding, docs/hsm.md "Blob format"): v2 blobs are AES-256-GCM with
owner and key type as associated data, rebuilt here from the documented construction; v1 (RFC 5649)
blobs written before still work and `rewrap` turns them into v2; owner, type, KEK and every byte
are bound."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, keywrap
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from hsm_sim import milenage
from hsm_sim.binding import Binder, is_v2, wrapped_length
from hsm_sim.errors import TamperedBlob
from hsm_sim.keyref import KeyRef, KeyType
from hsm_sim.soft import SoftHsm
from tests.helpers.hsm import Recorder
from tests.hsm.vectors import cases, h, load

C1 = bytes.fromhex("11" * 32)
C2 = bytes.fromhex("2c" * 16 + "53" * 16)
ICCID = "8949000000000000012"
OTHER = "8949000000000000020"


def storage_kek() -> bytes:
    """The default storage KEK of an HSM made from C1 and C2, per docs/hsm.md's hierarchy."""
    master = bytes(a ^ b for a, b in zip(C1, C2, strict=True))
    return HKDF(hashes.SHA256(), 32, None, b"simsmith/storage-kek/v1/storage").derive(master)


def v1_blob(key_type: KeyType, owner: str, key: bytes) -> bytes:
    """A blob as simsmith wrote them before v2: RFC 5649 under AES-ECB_KEK(SHA-256(binding))."""
    b = hashlib.sha256(b"simsmith/keyref/v1\x00" + key_type.value.encode() + b"\x00"
                       + owner.encode()).digest()
    kwk = Cipher(algorithms.AES(storage_kek()), modes.ECB()).encryptor().update(b)
    return keywrap.aes_key_wrap_with_padding(kwk, key)


def v2_open(key_type: KeyType, owner: str, blob: bytes) -> bytes:
    """Decrypt a v2 blob from the documented construction, without hsm_sim."""
    ak = HKDF(hashes.SHA256(), 32, None, b"simsmith/keyref/v2/aes-256-gcm").derive(
        storage_kek())
    aad = b"simsmith/keyref/v2\x00" + key_type.value.encode() + b"\x00" + owner.encode()
    assert blob[0] == 0x02
    return AESGCM(ak).decrypt(blob[1:13], blob[13:], aad)


@pytest.fixture
def soft(tmp_path: Path) -> SoftHsm:
    return SoftHsm.init(tmp_path / "hsm", components=[C1, C2], audit=Recorder())


@pytest.mark.parametrize("rec", cases("aead/gcm_spec_aes256.txt", "section"))
def test_aes_256_gcm_is_the_published_gcm(rec: dict[str, str]) -> None:
    aead = AESGCM(h(rec, "key"))
    aad, pt = bytes.fromhex(rec.get("aad", "")), bytes.fromhex(rec.get("plaintext", ""))
    assert aead.encrypt(h(rec, "nonce"), pt, aad or None) == h(rec, "result")
    assert aead.decrypt(h(rec, "nonce"), h(rec, "result"), aad or None) == pt


def test_a_v2_blob_is_the_documented_construction(soft: SoftHsm) -> None:
    key = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
    ki = soft.import_clear(ICCID, KeyType.KI, key)
    assert len(ki.blob) == 1 + 12 + 16 + 16 and is_v2(ki.blob)
    assert v2_open(KeyType.KI, ICCID, ki.blob) == key
    assert wrapped_length(ki.blob) == 16
    again = soft.import_clear(ICCID, KeyType.KI, key)
    assert again.blob[1:13] != ki.blob[1:13]  # a fresh random nonce per wrap
    code = soft.generate_code(ICCID, KeyType.PIN, 4)
    assert len(code.blob) == 1 + 12 + 8 + 16 and wrapped_length(code.blob) == 8


def test_v1_blobs_stored_before_still_work_and_rewrap_to_v2(soft: SoftHsm) -> None:
    rec = load("milenage/ts35208_test_sets.txt")[0]
    k, opc = h(rec, "k"), h(rec, "opc")
    ki1 = KeyRef("soft", KeyType.KI, ICCID, "storage", v1_blob(KeyType.KI, ICCID, k))
    opc1 = KeyRef("soft", KeyType.OPC, ICCID, "storage", v1_blob(KeyType.OPC, ICCID, opc))
    assert not is_v2(ki1.blob) and wrapped_length(ki1.blob) == 16
    sqn = int(rec["sqn"], 16)
    (v,) = soft.milenage_vectors(ki1, opc1, [sqn], h(rec, "amf"), [h(rec, "rand")])
    assert (v.xres, v.ck, v.ik) == (h(rec, "f2"), h(rec, "f3"), h(rec, "f4"))

    ki2, opc2 = soft.rewrap([ki1, opc1])
    assert is_v2(ki2.blob) and is_v2(opc2.blob)
    assert (ki2.owner, ki2.key_type, opc2.key_type) == (ICCID, KeyType.KI, KeyType.OPC)
    assert v2_open(KeyType.KI, ICCID, ki2.blob) == k
    assert v2_open(KeyType.OPC, ICCID, opc2.blob) == opc
    assert soft.milenage_vectors(ki2, opc2, [sqn], h(rec, "amf"), [h(rec, "rand")]) == [v]
    assert soft.rewrap([ki2, opc2]) == [ki2, opc2]  # already current: unchanged
    audit: Any = soft._audit
    actions = [(a, d) for a, _, d in audit.records if a == "key.rewrap"]
    assert actions == [("key.rewrap", {"refs": 2, "rewrapped": 2}),
                       ("key.rewrap", {"refs": 2, "rewrapped": 0})]
    assert k.hex() not in repr(audit.records) and opc.hex() not in repr(audit.records)


def test_rewrap_refuses_a_v1_blob_that_does_not_verify(soft: SoftHsm) -> None:
    moved = KeyRef("soft", KeyType.KI, OTHER, "storage", v1_blob(KeyType.KI, ICCID, bytes(16)))
    with pytest.raises(TamperedBlob, match=OTHER):
        soft.rewrap([moved])


def test_a_v2_blob_is_bound_to_owner_type_kek_and_every_byte(soft: SoftHsm,
                                                              tmp_path: Path) -> None:
    ki = soft.generate(ICCID, KeyType.KI)
    soft.kcv(ki)
    for pos in range(len(ki.blob)):
        for bit in (0x01, 0x80):
            bad = bytearray(ki.blob)
            bad[pos] ^= bit
            with pytest.raises(TamperedBlob):
                soft.kcv(KeyRef("soft", KeyType.KI, ICCID, "storage", bytes(bad)))
    for blob in (ki.blob[:-1], ki.blob + b"\x00", ki.blob[:29], ki.blob[:1] + ki.blob[2:]):
        with pytest.raises(TamperedBlob):
            soft.kcv(KeyRef("soft", KeyType.KI, ICCID, "storage", blob))
    with pytest.raises(TamperedBlob, match="byte 0 is 03"):
        soft.kcv(KeyRef("soft", KeyType.KI, ICCID, "storage", b"\x03" + ki.blob[1:]))
    with pytest.raises(TamperedBlob, match=OTHER):  # moved onto another SIM
        soft.kcv(KeyRef("soft", KeyType.KI, OTHER, "storage", ki.blob))
    with pytest.raises(TamperedBlob):  # presented as another key type
        soft.kcv(KeyRef("soft", KeyType.OPC, ICCID, "storage", ki.blob))
    other = SoftHsm.init(tmp_path / "other", components=[C2, b"\x5a" * 32])
    with pytest.raises(TamperedBlob):  # another HSM's storage KEK
        other.kcv(ki)


@settings(max_examples=40, deadline=None)
@given(kek=st.binary(min_size=32, max_size=32), key=st.binary(min_size=1, max_size=48),
       owner=st.from_regex(r"[0-9]{19,20}", fullmatch=True),
       key_type=st.sampled_from(list(KeyType)))
def test_binder_round_trips_in_the_right_format(kek: bytes, key: bytes, owner: str,
                                                key_type: KeyType) -> None:
    b = Binder(kek)
    blob = b.wrap(key_type, owner, key)
    assert is_v2(blob) == (len(key) % 8 == 0)  # v2 for whole 8-byte units, else RFC 5649
    assert wrapped_length(blob) == -(-len(key) // 8) * 8  # RFC 5649 pads to 8-byte units
    assert b.unwrap(key_type, owner, blob) == key
    (many,) = b.wrap_many([(key_type, owner, key)])
    assert b.unwrap(key_type, owner, many) == key
    other = KeyType.OPC if key_type is not KeyType.OPC else KeyType.KI
    with pytest.raises(TamperedBlob):
        b.unwrap(other, owner, blob)
    with pytest.raises(TamperedBlob):
        b.unwrap(key_type, owner + "1", blob)


@pytest.mark.parametrize("rec", cases("milenage/ts35208_test_sets.txt"))
def test_milenage_vector_is_the_same_on_the_public_cipher_api(
        rec: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`vector()` takes its ECB context from cryptography's Rust layer when it agrees with the
    public API; both give the TS 35.208 outputs."""
    args = (h(rec, "k"), h(rec, "opc"), h(rec, "rand"), int(rec["sqn"], 16), h(rec, "amf"))
    fast = milenage.vector(*args)
    monkeypatch.setattr(milenage, "_ecb_encryptor", milenage._public_encryptor)
    public = milenage.vector(*args)
    assert fast == public
    assert (fast.xres, fast.ck, fast.ik) == (h(rec, "f2"), h(rec, "f3"), h(rec, "f4"))
    assert fast.autn[8:] == h(rec, "f1")
