"""The SM-DP+'s RSP certificates: an SGP.26-style lab hierarchy, production certificates loaded.

GSMA SGP.22 v2.x §4.5.2 (certificate profiles), SGP.26 (the test PKI's shapes). Both paths end
in the rsp directory (simcore.smdp.rsp_files) that simcore.smdp.identity reads, and both are
checked — by the `check` their caller passes, simcore.smdp.identity.load_identity over the HSM
(this module is under that one) — before they are reported done.

- `sgp26_init`: a lab CI and EUM (esim.rsp_pki.DevRspPki: keys as 0600 files — a lab's
  certificate authority, not an operator secret), eUICC certificates for virtual eUICCs, and
  the SM-DP+'s CERT.DPauth / CERT.DPpb over key pairs generated **in the HSM** (a PKCS#10
  request signed by the HSM key, issued by the lab CI: esim.sgp26_pki), and CERT.DP.TLS naming
  the SM-DP+ address. The TLS key is a 0600 file: the HTTPS listener (uvicorn/OpenSSL) loads its
  key from a file; it signs TLS handshakes only, never an RSP message.
  With `brainpool`, a second hierarchy on brainpoolP256r1 (SGP.22 §2.6.7) beside it, in the
  `brainpoolP256r1/` subdirectory: its CI, EUM, eUICC certificates, and CERT.DPauth /
  CERT.DPpb over brainpool keys generated in the HSM (smdp.json's "more"); CERT.DP.TLS stays
  on the P-256 CI (TLS clients verify P-256 chains; RSP messages never use the TLS key).
- `dp_csr`: a key pair generated in the HSM and its PKCS#10 request, for a production CI.
- `load_production`: the CI-issued certificates copied in, each with its HSM key (a reference
  from `dp_csr`, or an operator's key imported under a transport KEK).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from esim.rsp_pki import (
    BRAINPOOL_P256R1,
    DEFAULT_SMDP_OID,
    LAB_CURVES,
    NIST_P256,
    DevRspPki,
    hierarchy_dir,
)
from esim.sgp22.certificates import RspRole
from esim.sgp26_pki import build_csr, dp_subject, issue_dp
from hsm_sim.ec_signing import hsm_signer
from hsm_sim.keyref import KeyRef, KeyType
from simcore.config import Settings
from simcore.smdp.es9plus import SmdpIdentity
from simcore.smdp.rsp_files import (
    FILES,
    MANIFEST,
    IdentityError,
    more_credentials_files,
    rsp_dir,
    settings_with,
    write_manifest,
)

__all__ = ["DEFAULT_LABEL", "FurtherSet", "LabPki", "dp_csr", "load_production", "sgp26_init"]

DEFAULT_LABEL = "smdp"
LAB_ORG = "simsmith lab SM-DP+"
Check = Callable[[Settings], SmdpIdentity]  # settings -> the identity they give, checked
_ROLES = {"dpauth": (KeyType.SK_DPAUTH, RspRole.DP_AUTH),
          "dppb": (KeyType.SK_DPPB, RspRole.DP_PB)}


@dataclass(frozen=True)
class LabPki:
    """What `sgp26_init` made: the directory, the files, the checked identity (when checked)."""

    directory: Path
    files: dict[str, Path]
    identity: SmdpIdentity | None
    dpauth_key: KeyRef
    dppb_key: KeyRef
    more_keys: dict[str, tuple[KeyRef, KeyRef]] | None = None  # curve -> (DPauth, DPpb)


def _write(path: Path, data: bytes, *, secret: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600 if secret else 0o644)


def _pem(cert: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def dp_csr(hsm: Any, role: str, *, label: str = DEFAULT_LABEL,
           common_name: str = "simsmith SM-DP+", organization: str = LAB_ORG,
           country: str | None = None, curve: str = NIST_P256
           ) -> tuple[KeyRef, x509.CertificateSigningRequest]:
    """A new `role` ("dpauth" or "dppb") key pair on `curve` (secp256r1 or brainpoolP256r1:
    the curve of the CI that will issue it) in the HSM and its PKCS#10 request, signed by that
    HSM key (proof of possession) for a CI to issue the certificate from."""
    if role not in _ROLES:
        raise IdentityError("role", f"{role!r} is not an SM-DP+ signing key",
                            expected="dpauth or dppb")
    key_type, _ = _ROLES[role]
    ref, public = hsm.ec_generate(label, key_type, curve=curve)
    suffix = " DPauth" if role == "dpauth" else " DPpb"
    csr = build_csr(dp_subject(common_name + suffix, organization, country), public,
                    hsm_signer(hsm, ref))
    return ref, csr


def sgp26_init(settings: Settings, hsm: Any, *, address: str, oid: str = DEFAULT_SMDP_OID,
               eids: list[str] | None = None, directory: Path | None = None,
               label: str = DEFAULT_LABEL, force: bool = False, auto: bool = False,
               check: Check | None = None, brainpool: bool = False) -> LabPki:
    """The lab hierarchy in `directory` (default: the rsp directory of the settings), the
    SM-DP+'s keys in `hsm`; `check` (simcore.smdp.identity.load_identity over the HSM) is run
    on the result before it returns. An existing lab CI
    and EUM there are kept (the virtual eUICCs' certificates stay valid); `auto` marks an
    identity `smdp_identity` made by itself (and may remake for another address)."""
    target = directory or rsp_dir(settings)
    if (target / MANIFEST).exists() and not force:
        raise IdentityError("smdp_rsp_dir", f"{target} already holds an SM-DP+ identity",
                            expected="another directory, or --force to replace it")
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o700)
    lab = DevRspPki(target)
    ci = lab.ci()
    lab.eum()
    files: dict[str, Path] = {"ci": target / "ci.pem", "ci_key": target / "ci.key",
                              "eum": target / "eum.pem", "eum_key": target / "eum.key"}
    for eid in eids or []:
        lab.euicc(eid)
        files[f"euicc-{eid}"] = target / f"euicc-{eid}.pem"
    refs: dict[str, KeyRef] = {}
    for role, (_, rsp_role) in _ROLES.items():
        ref, csr = dp_csr(hsm, role, label=label)
        refs[role] = ref
        _write(target / f"smdp-{role}.csr", _pem(csr))
        _write(target / FILES[role], _pem(issue_dp(ci, csr, rsp_role, oid)))
        files[role] = target / FILES[role]
    more: dict[str, tuple[KeyRef, KeyRef]] = {}
    if brainpool:  # the second hierarchy (module docstring)
        sub = hierarchy_dir(target, BRAINPOOL_P256R1)
        sub.mkdir(parents=True, exist_ok=True)
        os.chmod(sub, 0o700)
        bp_lab = DevRspPki(sub, BRAINPOOL_P256R1)
        bp_ci = bp_lab.ci()
        bp_lab.eum()
        files["ci_brainpool"], files["eum_brainpool"] = sub / "ci.pem", sub / "eum.pem"
        for eid in eids or []:
            bp_lab.euicc(eid)
            files[f"euicc-{eid}_brainpool"] = sub / f"euicc-{eid}.pem"
        bp_refs: dict[str, KeyRef] = {}
        for role, (_, rsp_role) in _ROLES.items():
            ref, csr = dp_csr(hsm, role, label=label, curve=BRAINPOOL_P256R1)
            bp_refs[role] = ref
            _write(sub / f"smdp-{role}.csr", _pem(csr))
            _write(sub / FILES[role], _pem(issue_dp(bp_ci, csr, rsp_role, oid)))
            files[f"{role}_brainpool"] = sub / FILES[role]
        more[BRAINPOOL_P256R1] = (bp_refs["dpauth"], bp_refs["dppb"])
    tls_key = ec.generate_private_key(ec.SECP256R1())
    tls_csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(dp_subject("simsmith SM-DP+ TLS", LAB_ORG))
               .sign(tls_key, hashes.SHA256()))
    _write(target / FILES["tls"], _pem(issue_dp(ci, tls_csr, RspRole.DP_TLS, oid,
                                                address=address)))
    _write(target / FILES["tls_key"], tls_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), secret=True)
    files["tls"], files["tls_key"] = target / FILES["tls"], target / FILES["tls_key"]
    files["manifest"] = write_manifest(target, address=address, oid=oid,
                                       dpauth_key=refs["dpauth"], dppb_key=refs["dppb"],
                                       auto=auto, more=more)
    identity = None
    if check is not None:
        identity = check(settings_with(settings, smdp_rsp_dir=target, smdp_address=address,
                                       smdp_dpauth_cert=None, smdp_dppb_cert=None,
                                       smdp_tls_cert=None, smdp_dpauth_key=None,
                                       smdp_dppb_key=None, smdp_trusted_cis=None, smdp_oid=None))
    return LabPki(target, files, identity, refs["dpauth"], refs["dppb"], more or None)


@dataclass(frozen=True)
class FurtherSet:
    """CERT.DPauth / CERT.DPpb issued by a further CI (on brainpoolP256r1) for HSM keys."""

    dpauth_cert: Path
    dppb_cert: Path
    dpauth_key: KeyRef
    dppb_key: KeyRef


def _further_curve(further: FurtherSet, field: str) -> str:
    key = x509.load_pem_x509_certificate(further.dpauth_cert.read_bytes()).public_key()
    curve = key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else "not EC"
    if curve == NIST_P256 or curve not in LAB_CURVES:
        raise IdentityError(field, f"CERT.DPauth's key is on {curve}",
                            expected="a further set on another curve than the first "
                                     f"({', '.join(c for c in LAB_CURVES if c != NIST_P256)})")
    return curve


def load_production(settings: Settings, hsm: Any, *, address: str, dpauth_cert: Path,
                    dppb_cert: Path, cis: list[Path], dpauth_key: KeyRef, dppb_key: KeyRef,
                    check: Check, tls_cert: Path | None = None, oid: str | None = None,
                    directory: Path | None = None,
                    further: FurtherSet | None = None) -> SmdpIdentity:
    """Copy CI-issued certificates into the rsp directory beside the references of their HSM
    keys, and check the whole with `check` (simcore.smdp.identity.load_identity over the HSM;
    nothing is kept when it fails). `further`: a second set from a brainpoolP256r1 CI (its CI
    among `cis`). What the directory held before is replaced whole — a lab's brainpool
    hierarchy left behind would keep its CI trusted."""
    target = directory or rsp_dir(settings)
    staging = target.with_name(target.name + ".loading")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True, mode=0o700)
    try:
        shutil.copyfile(dpauth_cert, staging / FILES["dpauth"])
        shutil.copyfile(dppb_cert, staging / FILES["dppb"])
        ci_paths = []
        for i, ci in enumerate(cis):
            name = "ci.pem" if i == 0 else f"ci-{i}.pem"
            shutil.copyfile(ci, staging / name)
            ci_paths.append(staging / name)
        kept_tls = target / FILES["tls"]
        if tls_cert is not None:
            shutil.copyfile(tls_cert, staging / FILES["tls"])
        elif kept_tls.exists():  # it stays: the check must see the directory as it will be
            shutil.copyfile(kept_tls, staging / FILES["tls"])
        from esim.sgp26_pki import dp_oid

        found = oid or dp_oid(x509.load_pem_x509_certificate(dpauth_cert.read_bytes())) or ""
        more: dict[str, tuple[KeyRef, KeyRef]] = {}
        if further is not None:
            curve = _further_curve(further, "further_dpauth_cert")
            auth_path, pb_path = more_credentials_files(staging, curve)
            auth_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(further.dpauth_cert, auth_path)
            shutil.copyfile(further.dppb_cert, pb_path)
            more[curve] = (further.dpauth_key, further.dppb_key)
        write_manifest(staging, address=address, oid=found, dpauth_key=dpauth_key,
                       dppb_key=dppb_key, more=more or None)
        identity = check(settings_with(
            settings, smdp_rsp_dir=staging, smdp_address=address, smdp_dpauth_cert=None,
            smdp_dppb_cert=None, smdp_tls_cert=None, smdp_dpauth_key=None, smdp_dppb_key=None,
            smdp_trusted_cis=",".join(str(p) for p in ci_paths), smdp_oid=oid))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    target.mkdir(parents=True, exist_ok=True)
    for curve in LAB_CURVES:  # hierarchies of the old identity the new one does not have
        old = hierarchy_dir(target, curve)
        if old != target and old.is_dir():
            shutil.rmtree(old)
    for stale in target.glob("ci-*.pem"):
        stale.unlink()
    for item in staging.iterdir():
        os.replace(item, target / item.name)
    staging.rmdir()
    return identity
