"""The soft backend: ceremony, KEKs, binding of blobs, operations, export, audit hygiene."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import keywrap
from hypothesis import given, settings
from hypothesis import strategies as st

from hsm_sim.binding import Binder
from hsm_sim.eki import EkiScheme, encrypt_eki
from hsm_sim.errors import (
    BadKCV,
    BadLength,
    DevModeWarning,
    DuplicateKey,
    ExportRefused,
    HsmError,
    HsmLocked,
    NoSuchKey,
    TamperedBlob,
    WrongKeyType,
    WrongOwner,
    WrongPurpose,
)
from hsm_sim.hsm import Hsm, KekPurpose, generate_sim_keys, vectors
from hsm_sim.kcv import kcv, legacy_kcv
from hsm_sim.keyref import KeyRef, KeyType
from hsm_sim.milenage import Milenage
from hsm_sim.soft import SoftHsm
from tests.hsm.vectors import cases, h

C1 = bytes.fromhex("11" * 32)
C2 = bytes.fromhex("2c" * 16 + "53" * 16)
TK = bytes.fromhex("00112233445566778899aabbccddeeff")  # a vendor transport key
EK = bytes.fromhex("0f0e0d0c0b0a09080706050403020100")  # an HSS export key
ICCID = "8949000000000000001"
OTHER = "8949000000000000019"


class Recorder:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def record(self, action: str, subject: str, details: dict[str, Any]) -> None:
        self.records.append((action, subject, details))


@pytest.fixture
def audit() -> Recorder:
    return Recorder()


@pytest.fixture
def hsm(tmp_path: Path, audit: Recorder) -> SoftHsm:
    s = SoftHsm.init(tmp_path / "hsm", components=[C1, C2], audit=audit)
    s.kek_add("vendor1", KekPurpose.TRANSPORT, [TK])
    s.kek_add("hss1", KekPurpose.EXPORT, [EK])
    s.kek_add("osmo", KekPurpose.EXPORT, insecure_clear=True)
    return s


def test_is_an_hsm(hsm: SoftHsm) -> None:
    assert isinstance(hsm, Hsm)


def test_ceremony_and_reopen(tmp_path: Path, hsm: SoftHsm) -> None:
    d = tmp_path / "hsm"
    st_ = hsm.status()
    assert st_["master_components"] == 2
    master = bytes(a ^ b for a, b in zip(C1, C2, strict=True))
    assert st_["master_kcv"] == kcv(master).hex()
    again = SoftHsm.open(d, components=[C2, C1])
    assert [k.name for k in again.kek_list()] == ["storage", "vendor1", "hss1", "osmo"]
    bad = bytearray(C2)
    bad[0] ^= 1
    with pytest.raises(BadKCV, match="component or the passphrase is wrong") as e:
        SoftHsm.open(d, components=[C1, bytes(bad)])
    assert C1.hex() not in str(e.value) and master.hex() not in str(e.value)
    with pytest.raises(HsmLocked):
        SoftHsm.open(d)
    with pytest.raises(DuplicateKey):
        SoftHsm.init(d, components=[C1, C2])
    with pytest.raises(BadLength, match="at least 2 components"):
        SoftHsm.init(tmp_path / "x", components=[C1])


def test_keystore_file_holds_no_clear_key(tmp_path: Path, hsm: SoftHsm) -> None:
    text = (tmp_path / "hsm" / "keystore.json").read_text()
    master = bytes(a ^ b for a, b in zip(C1, C2, strict=True))
    for secret in (C1, C2, master, TK, EK):
        assert secret.hex() not in text.lower()
    assert kcv(TK).hex() in text


def test_dev_passphrase_and_sealed_file(tmp_path: Path) -> None:
    d = tmp_path / "dev"
    with pytest.warns(DevModeWarning, match="DEV MODE"):
        s = SoftHsm.init(d, passphrase="correct horse", scrypt_n=2**10)
    ref = s.generate(ICCID, KeyType.KI)
    s.seal_dev()
    assert "INSECURE" in (d / "dev-master.sealed").read_text()
    with pytest.warns(DevModeWarning, match="INSECURE sealed dev file"):
        s2 = SoftHsm.open_sealed_dev(d)
    assert s2.kcv(ref) == s.kcv(ref)
    with pytest.warns(DevModeWarning):
        assert SoftHsm.open(d, passphrase="correct horse").kcv(ref) == s.kcv(ref)
    with pytest.raises(BadKCV), pytest.warns(DevModeWarning):
        SoftHsm.open(d, passphrase="wrong")


def test_dev_for_make_run(tmp_path: Path) -> None:
    with pytest.warns(DevModeWarning):
        first = SoftHsm.dev(tmp_path / "run")
    ref = first.generate(ICCID, KeyType.KI)
    with pytest.warns(DevModeWarning):
        again = SoftHsm.dev(tmp_path / "run")
    assert again.kcv(ref) == first.kcv(ref) and again.status()["master_source"] == "dev-passphrase"


def test_kek_add_reports_kcv_and_refuses_misuse(hsm: SoftHsm) -> None:
    info = {k.name: k for k in hsm.kek_list()}
    assert info["vendor1"].kcv == kcv(TK).hex() and info["vendor1"].purpose is KekPurpose.TRANSPORT
    assert info["osmo"].insecure_clear and info["storage"].derived
    with pytest.raises(DuplicateKey):
        hsm.kek_add("vendor1", KekPurpose.TRANSPORT, [TK])
    with pytest.raises(BadLength, match="at least one --component"):
        hsm.kek_add("v2", KekPurpose.TRANSPORT)
    with pytest.raises(WrongPurpose):
        hsm.import_encrypted(ICCID, KeyType.KI, bytes(16), "hss1", EkiScheme.AES128_ECB)
    with pytest.raises(NoSuchKey):
        hsm.import_encrypted(ICCID, KeyType.KI, bytes(16), "nope", EkiScheme.AES128_ECB)
    added = hsm.kek_add("storage2", KekPurpose.STORAGE)
    assert len(added.kcv) == 6
    # a vendor announces its transport key's KCV (legacy or CMAC): a typo in a component is refused
    half = bytes(range(16))
    other = bytes(a ^ b for a, b in zip(TK, half, strict=True))
    ok = hsm.kek_add("v3", KekPurpose.TRANSPORT, [half, other], expected_kcv=legacy_kcv(TK).hex())
    assert ok.kcv == kcv(TK).hex()
    bad = bytearray(other)
    bad[3] ^= 0x10
    with pytest.raises(BadKCV, match="does not match the announced"):
        hsm.kek_add("v4", KekPurpose.TRANSPORT, [half, bytes(bad)], expected_kcv=kcv(TK).hex())
    assert "v4" not in {k.name for k in hsm.kek_list()}


@pytest.mark.parametrize("rec", cases("milenage/ts35208_test_sets.txt"))
def test_published_vectors_inside_the_boundary(hsm: SoftHsm, rec: dict[str, str]) -> None:
    ki = hsm.import_clear(ICCID, KeyType.KI, h(rec, "k"))
    op = hsm.import_clear("operator", KeyType.OP, h(rec, "op"))
    opc = hsm.derive_opc(ki, op)
    assert hsm.kcv(opc) == kcv(h(rec, "opc"))
    sqn = int(rec["sqn"], 16)
    (v,) = hsm.milenage_vectors(ki, opc, [sqn], h(rec, "amf"), [h(rec, "rand")])
    assert (v.xres, v.ck, v.ik, v.autn[8:]) == (h(rec, "f2"), h(rec, "f3"), h(rec, "f4"),
                                                 h(rec, "f1"))
    auts = Milenage(h(rec, "k"), h(rec, "opc")).auts(h(rec, "rand"), sqn)
    assert hsm.milenage_resync(ki, opc, h(rec, "rand"), auts) == sqn


def test_vectors_function_steps_sqn(hsm: SoftHsm) -> None:
    ki, opc = hsm.generate(ICCID, KeyType.KI), hsm.generate(ICCID, KeyType.OPC)
    vs = vectors(hsm, ki, opc, count=3, sqn=0x40)
    assert len({v.rand for v in vs}) == 3
    k, o = hsm.export([ki, opc], "osmo", "clear")
    m = Milenage(k, o)
    for i, v in enumerate(vs):
        assert m.check_autn(v.rand, v.autn)[0] == 0x40 + (i << 5)
    tri = hsm.gsm_triplets(ki, opc, [vs[0].rand])
    assert tri[0].sres == bytes(a ^ b for a, b in zip(vs[0].xres[:4], vs[0].xres[4:], strict=True))


def test_generate_sim_keys(hsm: SoftHsm) -> None:
    op = hsm.import_clear("operator", KeyType.OP, bytes(range(16)))
    ki, opc = generate_sim_keys(hsm, ICCID, op)
    k, o = hsm.export([ki, opc], "osmo", "clear")
    assert o == Milenage.from_op(k, bytes(range(16)))._opc.to_bytes(16, "big")
    ki2, opc2 = generate_sim_keys(hsm, OTHER)
    assert (ki2.owner, opc2.key_type) == (OTHER, KeyType.OPC) and not hsm.same_key(ki, ki2)


def test_tuak_inside_the_boundary(hsm: SoftHsm) -> None:
    rec = cases("tuak/ts35233_test_sets.txt")[0].values[0]
    k = hsm.import_clear(ICCID, KeyType.KI, h(rec, "k"))
    topc = hsm.import_clear(ICCID, KeyType.TOPC, h(rec, "topc"))
    (v,) = hsm.tuak_vectors(k, topc, [int(rec["sqn"], 16)], h(rec, "amf"), [h(rec, "rand")],
                            res_len=4)
    assert v.xres == h(rec, "f2") and v.autn[8:] == h(rec, "f1")


def test_blobs_are_bound_to_owner_and_type(hsm: SoftHsm) -> None:
    ki, opc = hsm.generate(ICCID, KeyType.KI), hsm.generate(ICCID, KeyType.OPC)
    other_opc = hsm.generate(OTHER, KeyType.OPC)
    with pytest.raises(WrongOwner):
        hsm.milenage_vectors(ki, other_opc, [1])
    with pytest.raises(WrongKeyType):
        hsm.milenage_vectors(opc, ki, [1])
    moved = KeyRef(ki.backend, ki.key_type, OTHER, ki.kek, ki.blob)  # swapped onto another SIM
    with pytest.raises(TamperedBlob, match=OTHER):
        hsm.kcv(moved)
    as_opc = KeyRef(ki.backend, KeyType.OPC, ki.owner, ki.kek, ki.blob)  # relabelled
    with pytest.raises(TamperedBlob):
        hsm.milenage_vectors(ki, as_opc, [1])
    flipped = bytearray(ki.blob)
    flipped[5] ^= 1
    with pytest.raises(TamperedBlob):
        hsm.kcv(KeyRef(ki.backend, ki.key_type, ki.owner, ki.kek, bytes(flipped)))
    edited = ki.to_token().replace(ICCID, OTHER)
    with pytest.raises(TamperedBlob):
        hsm.kcv(KeyRef.from_token(edited))


def test_keyref_token_and_repr(hsm: SoftHsm) -> None:
    ki = hsm.import_clear(ICCID, KeyType.KI, TK)
    tok = ki.to_token()
    assert tok.isascii() and tok.startswith("kr1.soft.Ki." + ICCID + ".storage.")
    assert KeyRef.from_token(tok) == ki
    assert TK.hex() not in repr(ki) and "wrapped" in repr(ki) and str(ki) == repr(ki)
    with pytest.raises(TamperedBlob, match="not a simsmith key reference"):
        KeyRef.from_token("kr1.soft.Ki")
    with pytest.raises(HsmError):
        KeyRef.from_token("kr1.soft.Nope.1.storage.AAAA")


@pytest.mark.parametrize("scheme", list(EkiScheme))
def test_import_encrypted_every_scheme(tmp_path: Path, scheme: EkiScheme) -> None:
    s = SoftHsm.init(tmp_path / "h", components=[C1, C2])
    tk = bytes(range(24)) if scheme is EkiScheme.TDES3_ECB else TK
    s.kek_add("v", KekPurpose.TRANSPORT, [tk])
    ki_clear = bytes(range(50, 66))
    ref = s.import_encrypted(ICCID, KeyType.KI, encrypt_eki(scheme, tk, ki_clear), "v", scheme)
    assert s.kcv(ref) == kcv(ki_clear)


@pytest.mark.parametrize("scheme", [EkiScheme.AES128_ECB, EkiScheme.AES128_CBC])
@pytest.mark.parametrize("size", [16, 32])
def test_import_batch_matches_single_imports(hsm: SoftHsm, scheme: EkiScheme, size: int) -> None:
    rows = []
    clear = []
    for i in range(20):
        k, o = bytes([i]) * size, bytes([100 + i]) * size
        clear.append((k, o))
        rows.append((f"89490000000000{i:05d}", encrypt_eki(scheme, TK, k),
                     encrypt_eki(scheme, TK, o) if i % 3 else None))
    refs = hsm.import_batch(rows, "vendor1", scheme)
    for (ki, opc), (k, o), row in zip(refs, clear, rows, strict=True):
        assert ki.owner == row[0] and hsm.kcv(ki) == kcv(k)
        assert (opc is None) == (row[2] is None)
        if opc is not None:
            assert hsm.kcv(opc) == kcv(o) and opc.key_type is KeyType.OPC


def test_export(hsm: SoftHsm, audit: Recorder) -> None:
    ki = hsm.import_clear(ICCID, KeyType.KI, bytes(range(16)))
    (w,) = hsm.export([ki], "hss1")
    assert keywrap.aes_key_unwrap_with_padding(EK, w) == bytes(range(16))
    (e,) = hsm.export([ki], "hss1", "aes128-cbc")
    assert e == encrypt_eki(EkiScheme.AES128_CBC, EK, bytes(range(16)))
    with pytest.raises(ExportRefused):
        hsm.export([ki], "hss1", "clear")
    with pytest.raises(ExportRefused):
        hsm.export([ki], "osmo")
    assert hsm.export([ki], "osmo", "clear") == [bytes(range(16))]
    with pytest.raises(WrongPurpose):
        hsm.export([ki], "vendor1")
    exports = [r for r in audit.records if r[0] == "key.export"]
    assert exports[-1][2]["insecure_clear"] is True


def test_closed_hsm_is_locked(hsm: SoftHsm) -> None:
    hsm.close()
    with pytest.raises(HsmLocked):
        hsm.generate(ICCID, KeyType.KI)


def test_no_secret_in_audit_logs_or_errors(
    tmp_path: Path, audit: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ki_clear, op_clear = bytes(range(16)), bytes(range(16, 32))
    s = SoftHsm.init(tmp_path / "a", components=[C1, C2], audit=audit)
    s.kek_add("vendor1", KekPurpose.TRANSPORT, [TK])
    ki = s.import_encrypted(ICCID, KeyType.KI, encrypt_eki(EkiScheme.AES128_ECB, TK, ki_clear),
                            "vendor1", EkiScheme.AES128_ECB)
    op = s.import_clear("operator", KeyType.OP, op_clear)
    opc = s.derive_opc(ki, op)
    s.milenage_vectors(ki, opc, [32])
    errors = []
    for bad in (lambda: s.milenage_vectors(opc, ki, [1]),
                lambda: s.kcv(KeyRef("soft", KeyType.KI, OTHER, "storage", ki.blob))):
        with pytest.raises(HsmError) as e:
            bad()
        errors.append(str(e.value))
    seen = repr(audit.records) + caplog.text + " ".join(errors) + repr(s) + repr(ki)
    master = bytes(a ^ b for a, b in zip(C1, C2, strict=True))
    for secret in (ki_clear, op_clear, TK, C1, C2, master):
        assert secret.hex() not in seen.lower()
    assert any(a == "key.import" for a, _, _ in audit.records)


@settings(max_examples=25, deadline=None)
@given(kek=st.binary(min_size=32, max_size=32), key=st.binary(min_size=1, max_size=48),
       owner=st.from_regex(r"[0-9]{19,20}", fullmatch=True))
def test_binder_round_trip(kek: bytes, key: bytes, owner: str) -> None:
    b = Binder(kek)
    blob = b.wrap(KeyType.KI, owner, key)
    assert b.unwrap(KeyType.KI, owner, blob) == key
    with pytest.raises(TamperedBlob):
        b.unwrap(KeyType.OPC, owner, blob)


def test_a_3des_transport_key_is_checked_against_its_3des_kcv(hsm: SoftHsm) -> None:
    """A vendor's 2-key 3DES transport key comes with the 3DES KCV (3DES-ECB of 8 zero bytes):
    the published 0123456789ABCDEF FEDCBA9876543210 → 08D7B4. A wrong component is refused."""
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    half = bytes(range(16))
    other = bytes(a ^ b for a, b in zip(key, half, strict=True))
    hsm.kek_add("tdes", KekPurpose.TRANSPORT, [half, other], expected_kcv="08D7B4")
    assert "tdes" in {k.name for k in hsm.kek_list()}
    bad = bytearray(other)
    bad[0] ^= 0x10  # not 0x01: DES ignores each byte's parity bit, and so does its KCV
    with pytest.raises(BadKCV, match=r"\(3DES\)"):
        hsm.kek_add("tdes2", KekPurpose.TRANSPORT, [half, bytes(bad)], expected_kcv="08D7B4")
