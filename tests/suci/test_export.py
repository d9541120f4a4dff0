"""SUCI key exports (simcore.export.suci): Open5GS and free5GC files read back to the same keys,
the PKCS#11 wrapped form unwrapped to the same keys, audited, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import keywrap
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy import Engine

from hsm_sim.ecies import HomeNetworkPrivateKey, ProtectionScheme
from hsm_sim.hsm import KekPurpose
from simcore import suci_keys as sk
from simcore.errors import Conflict, InvalidInput
from simcore.export.suci import export_keys
from tests.hsm.vectors import h
from tests.suci.test_service import C4, annex_keys, events, hsm  # noqa: F401

EXPORT_KEK = b"\x5a" * 32


@pytest.fixture
def keys(engine: Engine, hsm: object) -> None:  # noqa: F811
    annex_keys(engine, hsm)  # type: ignore[arg-type]
    hsm.kek_add("core", KekPurpose.EXPORT, insecure_clear=True)  # type: ignore[attr-defined]
    hsm.kek_add("udm-token", KekPurpose.EXPORT, [EXPORT_KEK])  # type: ignore[attr-defined]


def test_open5gs(engine: Engine, hsm: object, keys: None, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "o5gs"
    r = export_keys(engine, hsm, "core", "open5gs", out, actor="ops",
                    key_dir="/etc/open5gs/hnet")
    assert r["files"] == {"curve25519-27.key": [27], "secp256r1-28.key": [28],
                          "udm-hnet.yaml": [27, 28]}
    cfg = yaml.safe_load((out / "udm-hnet.yaml").read_text())
    assert cfg == {"udm": {"hnet": [
        {"id": 27, "scheme": 1, "key": "/etc/open5gs/hnet/curve25519-27.key"},
        {"id": 28, "scheme": 2, "key": "/etc/open5gs/hnet/secp256r1-28.key"}]}}
    a = load_pem_private_key((out / "curve25519-27.key").read_bytes(), None)
    b = load_pem_private_key((out / "secp256r1-28.key").read_bytes(), None)
    assert isinstance(a, x25519.X25519PrivateKey) and isinstance(b, ec.EllipticCurvePrivateKey)
    assert HomeNetworkPrivateKey(ProtectionScheme.PROFILE_A, h(C4["C.4.3.1"], "hn_private")
                                 ).private_bytes() == a.private_bytes_raw()
    assert b.private_numbers().private_value == int(C4["C.4.4.1"]["hn_private"], 16)
    assert (out / "secp256r1-28.key").read_bytes().startswith(b"-----BEGIN EC PRIVATE KEY")
    assert (out / "curve25519-27.key").stat().st_mode & 0o777 == 0o600
    ev = events(engine, "suci.key_export")
    assert sorted(e.subject_id for e in ev) == ["27", "28"]
    assert C4["C.4.3.1"]["hn_private"] not in repr([e.details for e in ev])
    with pytest.raises(Conflict, match="never overwrite"):
        export_keys(engine, hsm, "core", "open5gs", out, actor="ops")


def test_free5gc_needs_identifiers_1_to_n(engine: Engine, hsm: object, keys: None,  # noqa: F811
                                          tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"1..n, the keys are \[27, 28\]"):
        export_keys(engine, hsm, "core", "free5gc", tmp_path, actor="ops")
    sk.generate_key(engine, hsm, 1, "B", actor="ops")  # type: ignore[arg-type]
    sk.generate_key(engine, hsm, 2, "A", actor="ops")  # type: ignore[arg-type]
    export_keys(engine, hsm, "core", "free5gc", tmp_path, [1, 2], actor="ops")
    cfg = yaml.safe_load((tmp_path / "udmcfg-suci.yaml").read_text())
    p1, p2 = cfg["configuration"]["SuciProfile"]
    assert (p1["ProtectionScheme"], p2["ProtectionScheme"]) == (2, 1)
    assert p1["PublicKey"].startswith("04") and len(p1["PublicKey"]) == 130
    k1 = HomeNetworkPrivateKey(ProtectionScheme.PROFILE_B, bytes.fromhex(p1["PrivateKey"]))
    assert k1.public_bytes() == sk.get_key(engine, 1).public_key
    k2 = HomeNetworkPrivateKey(ProtectionScheme.PROFILE_A, bytes.fromhex(p2["PrivateKey"]))
    assert k2.public_bytes().hex() == p2["PublicKey"] == sk.get_key(engine, 2).public_key.hex()


def test_pkcs11_kwp(engine: Engine, hsm: object, keys: None, tmp_path: Path) -> None:  # noqa: F811
    export_keys(engine, hsm, "udm-token", "pkcs11-kwp", tmp_path, [28], actor="ops")
    doc = json.loads((tmp_path / "suci-keys-kwp.json").read_text())
    (entry,) = doc["keys"]
    assert doc["wrapping"]["kek"] == "udm-token" and entry["key_id"] == 28
    clear = keywrap.aes_key_unwrap_with_padding(EXPORT_KEK,
                                                bytes.fromhex(entry["wrapped_private_key"]))
    assert clear == h(C4["C.4.4.1"], "hn_private")
    with pytest.raises(InvalidInput, match="clear target"):
        export_keys(engine, hsm, "core", "pkcs11-kwp", tmp_path / "x", actor="ops")
    with pytest.raises(InvalidInput, match="not a clear"):
        export_keys(engine, hsm, "udm-token", "open5gs", tmp_path / "y", actor="ops")
    with pytest.raises(InvalidInput, match="format"):
        export_keys(engine, hsm, "core", "osmo", tmp_path / "z", actor="ops")
    with pytest.raises(sk.UnknownKeyId):
        export_keys(engine, hsm, "core", "open5gs", tmp_path / "w", [99], actor="ops")
