"""The SM-DP+'s rsp directory: where its certificates and identity file live, and the error
every identity check raises. GSMA SGP.22 v2.x §4.5.2 (the certificates kept here).

    <rsp dir>/smdp-dpauth.pem, smdp-dppb.pem, smdp-tls.pem (+ smdp-tls.key, 0600)
    <rsp dir>/ci.pem, ci-*.pem       the CIs trusted (a lab's CI key and EUM beside them)
    <rsp dir>/smdp.json (0600)       address, OID, KeyRef tokens of SK.DPauth / SK.DPpb
    <rsp dir>/brainpoolP256r1/       a second CI hierarchy (SGP.22 §2.6.7): its ci.pem (trusted
                                     too), EUM, and the SM-DP+'s smdp-dpauth.pem / smdp-dppb.pem
                                     on that curve, their KeyRefs in smdp.json's "more"

<rsp dir> = SIMSMITH_SMDP_RSP_DIR or <home>/pki/rsp. The layer under simcore.smdp.rsp_pki
(which makes the files) and simcore.smdp.identity (which reads and checks them).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esim.rsp_pki import LAB_CURVES, NIST_P256, hierarchy_dir
from hsm_sim.keyref import KeyRef
from simcore.config import Settings
from simcore.errors import InvalidInput

__all__ = ["FILES", "MANIFEST", "IdentityError", "IdentityFiles", "identity_files",
           "more_credentials_files", "read_manifest", "rsp_dir", "settings_with",
           "write_manifest"]

MANIFEST = "smdp.json"
FILES = {"dpauth": "smdp-dpauth.pem", "dppb": "smdp-dppb.pem", "tls": "smdp-tls.pem",
         "tls_key": "smdp-tls.key", "ci": "ci.pem"}
_FORMAT = "simsmith-smdp-identity/1"


class IdentityError(InvalidInput):
    """The SM-DP+ identity is missing a piece or its pieces disagree; `field` names the setting
    (e.g. `smdp_dpauth_cert`), the message what is wrong. Never carries key material."""


@dataclass(frozen=True)
class IdentityFiles:
    """Where the identity's pieces are (resolved from settings and the rsp directory)."""

    rsp_dir: Path
    dpauth_cert: Path
    dppb_cert: Path
    tls_cert: Path | None
    cis: tuple[Path, ...]


def rsp_dir(settings: Settings) -> Path:
    return settings.smdp_rsp_dir or settings.home / "pki" / "rsp"


def identity_files(settings: Settings) -> IdentityFiles:
    d = rsp_dir(settings)
    tls = settings.smdp_tls_cert or d / FILES["tls"]
    more_cis = [hierarchy_dir(d, c) / FILES["ci"] for c in LAB_CURVES if c != NIST_P256]
    cis = (tuple(Path(p.strip()) for p in settings.smdp_trusted_cis.split(",") if p.strip())
           if settings.smdp_trusted_cis else (d / FILES["ci"], *sorted(d.glob("ci-*.pem")),
                                              *(p for p in more_cis if p.exists())))
    return IdentityFiles(d, settings.smdp_dpauth_cert or d / FILES["dpauth"],
                         settings.smdp_dppb_cert or d / FILES["dppb"],
                         tls if (settings.smdp_tls_cert or tls.exists()) else None, cis)


def read_manifest(directory: Path) -> dict[str, Any]:
    """smdp.json of an rsp directory ({} when there is none)."""
    path = directory / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise IdentityError("smdp_rsp_dir", f"{path} is not JSON", position=f"line {e.lineno}"
                            ) from None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise IdentityError("smdp_rsp_dir", f"{path} is not an SM-DP+ identity file",
                            expected=f'{{"format": "{_FORMAT}", …}}')
    return data


def more_credentials_files(directory: Path, curve: str) -> tuple[Path, Path]:
    """CERT.DPauth and CERT.DPpb of the hierarchy of `curve` (brainpoolP256r1)."""
    sub = hierarchy_dir(directory, curve)
    return sub / FILES["dpauth"], sub / FILES["dppb"]


def write_manifest(directory: Path, *, address: str, oid: str, dpauth_key: KeyRef,
                   dppb_key: KeyRef, auto: bool = False,
                   more: dict[str, tuple[KeyRef, KeyRef]] | None = None) -> Path:
    """Write smdp.json (mode 0600: no secret in it, but nobody else's business). `more`: the
    DPauth / DPpb key references of further CI hierarchies, by curve."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MANIFEST
    data: dict[str, Any] = {"format": _FORMAT, "address": address, "oid": oid,
                            "dpauth_key": dpauth_key.to_token(),
                            "dppb_key": dppb_key.to_token(), "auto": auto}
    if more:
        data["more"] = [{"curve": curve, "dpauth_key": a.to_token(), "dppb_key": b.to_token()}
                        for curve, (a, b) in more.items()]
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path


def settings_with(settings: Settings, **values: Any) -> Settings:
    """The settings with some fields replaced (marked as set, so they take precedence)."""
    merged = settings.model_dump() | values
    fields_set = set(settings.model_fields_set) | set(values)
    return settings.__class__.model_construct(_fields_set=fields_set, **merged)
