"""Audited export of SUCI home-network private keys to a core's UDM (issue 20 item 5).

The keys leave the HSM through `Hsm.export` (docs/hsm.md "export"), like Ki/OPc:

- `open5gs`: Open5GS UDM (`udm.yaml`, `udm: hnet:` list of `{id, scheme, key: <file>}`), one PEM
  key file per key as its docs make them: `curve25519-<id>.key` (X25519, PKCS#8 "PRIVATE KEY",
  what `openssl genpkey -algorithm X25519` writes) and `secp256r1-<id>.key` (SEC 1 "EC PRIVATE
  KEY", what `openssl ecparam -name prime256v1 -genkey` writes). Written: the key files and
  `udm-hnet.yaml`, the `udm:` fragment naming them (under `--key-dir`, default the output dir).
- `free5gc`: free5GC UDM (`udmcfg.yaml`, `configuration: SuciProfile:` list of
  `{ProtectionScheme, PrivateKey, PublicKey}` in hex; free5GC takes an entry's position + 1 as
  its home network public key identifier, so the exported identifiers must be 1..n without a
  gap). Written: `udmcfg-suci.yaml`, that fragment.
- `pkcs11-kwp`: for a UDM whose keys live in a token: each private key wrapped with RFC 5649
  under the target's export KEK (which the receiving token holds), in `suci-keys-kwp.json` with
  identifier, profile, public key and the KEK's KCV.

The first two need the keys in clear, so the target must be an export KEK marked insecure
(`simsmith hsm kek add NAME --purpose export --insecure-clear`); `pkcs11-kwp` refuses such a
target. Each exported key is one audit event (`suci.key_export`: target, format, files) committed
before the files are written; files are created 0600 and never overwritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from hsm_sim.ecies import ProtectionScheme
from simcore import audit
from simcore.db import transaction
from simcore.errors import Conflict, InvalidInput
from simcore.export.keys import key_form
from simcore.suci_keys import HsmSource, SuciKeyInfo, opened_hsm, refs_for_export

__all__ = ["FORMATS", "export_keys", "pem_of"]

FORMATS = ("open5gs", "free5gc", "pkcs11-kwp")


def pem_of(scheme: ProtectionScheme, private: bytes) -> bytes:
    """The PEM file Open5GS reads for a home-network private key (see the module docstring)."""
    if scheme is ProtectionScheme.PROFILE_A:
        return x25519.X25519PrivateKey.from_private_bytes(private).private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    key = ec.derive_private_key(int.from_bytes(private, "big"), ec.SECP256R1())
    return key.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption())


def _public_uncompressed(info: SuciKeyInfo) -> str:
    if info.scheme is ProtectionScheme.PROFILE_A:
        return info.public_key.hex()
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), info.public_key)
    return point.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint).hex()


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def export_keys(engine: Any, hsm: HsmSource, target: str, fmt: str, out: Path,
                key_ids: Sequence[int] | None = None, *, actor: str,
                key_dir: str | None = None) -> dict[str, Any]:
    """Write the keys `key_ids` (every active key when None) for `fmt` into directory `out`;
    returns {"format", "target", "files": {file name: [key ids]}}."""
    if fmt not in FORMATS:
        raise InvalidInput("format", f"{fmt!r}", expected=", ".join(FORMATS))
    pairs = refs_for_export(engine, key_ids)
    if not pairs:
        raise InvalidInput("key_id", "no key to export", expected="an active key or --key-id")
    opened: Any = opened_hsm(hsm)
    form = key_form(opened, target)
    if fmt == "pkcs11-kwp" and form.clear:
        raise InvalidInput("target", f"{target!r} is a clear target: pkcs11-kwp wraps keys "
                           "under an export KEK", expected="an export KEK that is not insecure")
    if fmt != "pkcs11-kwp" and not form.clear:
        raise InvalidInput("target", f"{fmt} keeps keys in clear: {target!r} is not a clear "
                           "(insecure) export target",
                           expected="simsmith hsm kek add NAME --purpose export --insecure-clear")
    ids = [info.key_id for info, _ in pairs]
    if fmt == "free5gc" and ids != list(range(1, len(ids) + 1)):
        raise InvalidInput("key_id", f"free5GC numbers its SuciProfile entries 1..n, the keys "
                           f"are {ids}", expected="identifiers 1 to n without a gap")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[int]] = {}
    if fmt == "open5gs":
        names = {info.key_id: (f"curve25519-{info.key_id}.key" if info.scheme is
                               ProtectionScheme.PROFILE_A else f"secp256r1-{info.key_id}.key")
                 for info, _ in pairs}
        for name in names.values():
            files[name] = [k for k, n in names.items() if n == name]
        files["udm-hnet.yaml"] = ids
    elif fmt == "free5gc":
        files["udmcfg-suci.yaml"] = ids
    else:
        files["suci-keys-kwp.json"] = ids
    clash = [f for f in files if (out / f).exists()]
    if clash:
        raise Conflict(f"{out / clash[0]} exists: exports never overwrite a file")
    with transaction(engine) as s:  # audited before any key leaves the HSM
        for info, _ in pairs:
            audit.append(s, actor=actor, action="suci.key_export", subject_type="suci_key",
                         subject_id=str(info.key_id), details={
                             "target": target, "format": fmt, "scheme": info.scheme.label,
                             "files": [f for f, k in files.items() if info.key_id in k]})
    keys: list[bytes] = opened.export([ref for _, ref in pairs], target, form.scheme)
    if fmt == "open5gs":
        base = key_dir if key_dir is not None else str(out.resolve())
        hnet = []
        for (info, _), key in zip(pairs, keys, strict=True):
            name = names[info.key_id]
            _write(out / name, pem_of(info.scheme, key))
            hnet.append({"id": info.key_id, "scheme": int(info.scheme),
                         "key": f"{base.rstrip('/')}/{name}"})
        text = ("# simsmith: SUCI home-network keys for Open5GS udm.yaml (merge under udm:)\n"
                + yaml.safe_dump({"udm": {"hnet": hnet}}, sort_keys=False))
        _write(out / "udm-hnet.yaml", text.encode())
    elif fmt == "free5gc":
        profiles = [{"ProtectionScheme": int(info.scheme), "PrivateKey": key.hex(),
                     "PublicKey": _public_uncompressed(info)}
                    for (info, _), key in zip(pairs, keys, strict=True)]
        text = ("# simsmith: SUCI home-network keys for free5GC udmcfg.yaml (merge under "
                "configuration:); entry n is home network public key identifier n\n"
                + yaml.safe_dump({"configuration": {"SuciProfile": profiles}}, sort_keys=False))
        _write(out / "udmcfg-suci.yaml", text.encode())
    else:
        doc = {"format": "simsmith-suci-kwp/1", "wrapping": form.describe(), "keys": [
            {"key_id": info.key_id, "scheme": int(info.scheme), "profile": info.scheme.label,
             "public_key": info.public_key.hex(), "wrapped_private_key": key.hex()}
            for (info, _), key in zip(pairs, keys, strict=True)]}
        _write(out / "suci-keys-kwp.json", (json.dumps(doc, indent=2) + "\n").encode())
    return {"format": fmt, "target": target, "files": files}
