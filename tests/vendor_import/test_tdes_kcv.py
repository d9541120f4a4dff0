"""3DES transport keys: a vendor file's `Transport_key … KCV=` is checked in the convention of the
scheme's algorithm — 3DES-ECB of 8 zero bytes (first 3 bytes) for 3des2-ecb / 3des3-ecb,
AES-CMAC or legacy AES-ECB for AES schemes — and a mismatch is refused naming the header line.

Published 3DES KCVs used here:
- 0123456789ABCDEF FEDCBA9876543210, the ANSI X9 test key used across payment tooling (e.g.
  emvlab.org/keyshares), encrypts 8 zero bytes to 08D7B4FB629D0885: KCV 08D7B4.
- E6F1081FEA4C402CC192B65DE367EC3E, KCV 212CF915 as printed by the key generator in
  https://crypto.stackexchange.com/questions/37379 (4 bytes shown there; 3 compared here).
- With K1 = K2, 2-key 3DES is single DES: key 0123456789ABCDEF encrypts zeros to D5D44FF720683D0D
  (the classic DES vector), KCV D5D44F.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from hsm_sim.eki import EkiScheme, encrypt_eki
from hsm_sim.errors import BadLength, HsmError
from hsm_sim.hsm import KekPurpose
from hsm_sim.kcv import kcv, legacy_kcv, tdes_kcv
from hsm_sim.keyref import KeyRef
from hsm_sim.soft import SoftHsm
from simcore.db import read_session
from simcore.models import Sim
from simcore.vendor_import import ImportOptions, TransportKeyError, import_file
from simcore.vendor_import.service import check_transport_key
from tests.hsm.conftest import p11hsm  # noqa: F401  (SoftHSM2 token, skipped without its env)

from .helpers import Card, cards, out_text, write

TDES2 = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TDES3 = bytes.fromhex("0123456789ABCDEF" "FEDCBA9876543210" "89ABCDEF01234567")


@pytest.mark.parametrize(("key", "expected"), [
    ("0123456789ABCDEFFEDCBA9876543210", "08d7b4"),
    ("E6F1081FEA4C402CC192B65DE367EC3E", "212cf9"),
    ("0123456789ABCDEF0123456789ABCDEF", "d5d44f"),
    ("0123456789ABCDEFFEDCBA98765432100123456789ABCDEF", "08d7b4"),  # K3 = K1: 2-key
])
def test_published_tdes_kcvs(key: str, expected: str) -> None:
    assert tdes_kcv(bytes.fromhex(key)).hex() == expected


def test_transport_kcvs_follow_the_scheme(tmp_path: Path) -> None:
    hsm = SoftHsm.init(tmp_path / "hsm", components=[b"\x11" * 32, b"\x2c" * 32])
    hsm.kek_add("v2", KekPurpose.TRANSPORT, [TDES2])
    hsm.kek_add("v3", KekPurpose.TRANSPORT, [TDES3])
    assert hsm.transport_kcvs("v2", EkiScheme.TDES2_ECB) == {"3DES KCV": "08d7b4"}
    assert hsm.transport_kcvs("v3", EkiScheme.TDES3_ECB) == {"3DES KCV": tdes_kcv(TDES3).hex()}
    assert hsm.transport_kcvs("v2", EkiScheme.AES128_ECB) == {"KCV": kcv(TDES2).hex(),
                                                              "legacy": legacy_kcv(TDES2).hex()}
    with pytest.raises(BadLength, match="a 3des3-ecb transport key has 24"):
        hsm.transport_kcvs("v2", EkiScheme.TDES3_ECB)


def test_pkcs11_backend_refuses_tdes_schemes(request: pytest.FixtureRequest) -> None:
    token: Any = request.getfixturevalue("p11hsm")
    name = "tdeskcv"
    if name not in {k.name for k in token.kek_list()}:
        token.kek_add(name, KekPurpose.TRANSPORT, [TDES2])
    assert token.transport_kcvs(name, EkiScheme.AES128_ECB) == {
        "KCV": kcv(TDES2).hex(), "legacy": legacy_kcv(TDES2).hex()}
    with pytest.raises(HsmError, match="3des2-ecb is not supported"):
        token.transport_kcvs(name, EkiScheme.TDES2_ECB)
    with pytest.raises(TransportKeyError, match=r"f.out:7: .*3des2-ecb is not supported"):
        check_transport_key(token, name, "08D7B4", "f.out:7", EkiScheme.TDES2_ECB)


def _tdes_cards(n: int, scheme: EkiScheme, key: bytes) -> list[Card]:
    return [Card(c.iccid, c.imsi, c.ki, c.opc,
                 {**c.values, "EKI": encrypt_eki(scheme, key, c.ki).hex().upper(),
                  "EOPC": encrypt_eki(scheme, key, c.opc).hex().upper()})
            for c in cards(n)]


@pytest.mark.parametrize(("scheme", "key"), [(EkiScheme.TDES2_ECB, TDES2),
                                             (EkiScheme.TDES3_ECB, TDES3)])
def test_import_with_a_tdes_kcv(engine: Engine, hsm: SoftHsm, tmp_path: Path,
                                scheme: EkiScheme, key: bytes) -> None:
    hsm.kek_add("vendor3des", KekPurpose.TRANSPORT, [key])
    cs = _tdes_cards(3, scheme, key)
    announced = tdes_kcv(key).hex().upper()
    p = write(tmp_path / "b.out", out_text(cs, transport="vendor3des", kcv_value=announced))
    r = import_file(engine, hsm, p, ImportOptions(scheme=scheme, actor="t"))
    assert (r.status, r.imported) == ("imported", 3)
    with read_session(engine) as s:
        sim = s.get(Sim, cs[0].iccid)
    assert sim is not None
    assert hsm.kcv(KeyRef.from_token(sim.ki_ref or "")) == kcv(cs[0].ki)
    assert hsm.kcv(KeyRef.from_token(sim.opc_ref or "")) == kcv(cs[0].opc)


def test_kcv_of_the_other_convention_or_wrong_is_refused(engine: Engine, hsm: SoftHsm,
                                                        tmp_path: Path) -> None:
    hsm.kek_add("vendor3des", KekPurpose.TRANSPORT, [TDES2])
    cs = _tdes_cards(2, EkiScheme.TDES2_ECB, TDES2)
    tdes_opts = ImportOptions(scheme=EkiScheme.TDES2_ECB)
    # the AES KCV of the same 16 bytes, announced for a 3DES scheme: not the 3DES convention
    aes_kcv = kcv(TDES2).hex().upper()
    p = write(tmp_path / "a.out", out_text(cs, transport="vendor3des", kcv_value=aes_kcv))
    with pytest.raises(TransportKeyError,
                       match=rf"a.out:9:16: Transport_key KCV {aes_kcv} does not match HSM key "
                             r"'vendor3des' \(3DES KCV 08D7B4; scheme 3des2-ecb\)"):
        import_file(engine, hsm, p, tdes_opts)
    # a wrong 3DES KCV
    p = write(tmp_path / "w.out", out_text(cs, transport="vendor3des", kcv_value="08D7B5"))
    with pytest.raises(TransportKeyError, match=r"w.out:9:16: Transport_key KCV 08D7B5 does not"):
        import_file(engine, hsm, p, tdes_opts)
    # the 3DES KCV with an AES scheme: AES conventions only
    p = write(tmp_path / "s.out", out_text(cs, transport="vendor3des", kcv_value="08D7B4"))
    with pytest.raises(TransportKeyError, match=r"s.out:9:16: .*\(KCV .*, legacy .*; scheme "
                                                r"aes128-ecb\)"):
        import_file(engine, hsm, p)
