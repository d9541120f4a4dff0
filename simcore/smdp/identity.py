"""The SM-DP+'s identity for ES9+, from settings and the HSM: `load_identity(settings, hsm)`.

GSMA SGP.22 v2.x §4.5.2 (CERT.DPauth.ECDSA, CERT.DPpb.ECDSA, CERT.DP.TLS and their rspRole
policies), §2.6.7 (SK.DPauth / SK.DPpb: ECDSA on NIST P-256), §3.1.2 (the SM-DP+ address and
OID the eUICC checks). The signing keys stay in the HSM (hsm_sim.ec_signing); this module holds
KeyRefs and hands `Es9PlusCore` Signers over them.

Where each piece comes from, first found wins (settings: simcore.config, SIMSMITH_SMDP_*):

    address        SIMSMITH_SMDP_ADDRESS when set (host or host:port), else smdp.json's,
                   else the default
    OID            SIMSMITH_SMDP_OID, else smdp.json, else CERT.DPauth's SAN registeredID
    certificates   SIMSMITH_SMDP_DPAUTH_CERT / _DPPB_CERT / _TLS_CERT, else
                   <rsp dir>/smdp-dpauth.pem, smdp-dppb.pem, smdp-tls.pem (TLS: optional)
    HSM keys       SIMSMITH_SMDP_DPAUTH_KEY / _DPPB_KEY (KeyRef tokens), else smdp.json
    trusted CIs    SIMSMITH_SMDP_TRUSTED_CIS (PEM files, comma-separated), else <rsp dir>/ci.pem
                   and ci-*.pem, and brainpoolP256r1/ci.pem
    more CIs       smdp.json's "more": a CERT.DPauth / CERT.DPpb set per further CI hierarchy
                   (SGP.22 §2.6.7: brainpoolP256r1 beside P-256), certificates in
                   <rsp dir>/<curve>/smdp-dpauth.pem, smdp-dppb.pem, HSM keys by KeyRef

with <rsp dir> = SIMSMITH_SMDP_RSP_DIR or <home>/pki/rsp (where the virtual eUICC's lab CI
and EUM live too: tools/euicc_cli.py), the directory `simsmith pki sgp26-init`
and `pki load` write (smdp.json holds no secret: KeyRef tokens are wrapped blobs or token
object ids). Everything is checked before an identity is returned; each refusal is an
`IdentityError` (InvalidInput) whose `field` names the setting at fault: a missing or
unreadable certificate, a key reference of the wrong role, a certificate not issued by a
trusted CI or without its rspRole (cryptography's X.509 path validation, through
esim.sgp22.certificates), a certificate whose public key is not the HSM key's, OIDs that
disagree, an address the TLS certificate does not name.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from cryptography import x509

from esim.sgp22.certificates import (
    RspRole,
    TrustedCis,
    certificate_curve,
    verify_server_certificate,
)
from esim.sgp22.errors import CertificateError
from esim.sgp26_pki import address_host, dp_oid, public_key_der, tls_names
from hsm_sim.ec_signing import hsm_signer
from hsm_sim.errors import HsmError, TamperedBlob
from hsm_sim.keyref import KeyRef, KeyType
from simcore.config import Settings, get_settings
from simcore.smdp.es9plus import DpCredentials, SmdpIdentity
from simcore.smdp.rsp_files import (
    IdentityError,
    identity_files,
    more_credentials_files,
    read_manifest,
    rsp_dir,
    settings_with,
)
from simcore.smdp.rsp_pki import sgp26_init

__all__ = ["IdentityError", "describe", "load_identity", "smdp_identity"]


def _certificate(path: Path, field: str) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise IdentityError(field, f"cannot read {path} ({e.strerror})",
                            expected="a PEM certificate (simsmith pki sgp26-init or pki load)"
                            ) from None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        try:
            return x509.load_der_x509_certificate(data)
        except ValueError:
            raise IdentityError(field, f"{path} is not an X.509 certificate") from None


def _key_ref(token: str | None, field: str, key_type: KeyType, backend: str) -> KeyRef:
    if not token:
        raise IdentityError(field, "no HSM key reference configured",
                            expected=f"a {key_type.value} key reference (simsmith pki "
                                     "sgp26-init, or pki load --key)")
    try:
        ref = KeyRef.from_token(token)
    except TamperedBlob:
        raise IdentityError(field, "not a key reference token", expected="kr1.<…>") from None
    if ref.key_type is not key_type:
        raise IdentityError(field, f"the key reference is a {ref.key_type.value} key",
                            expected=f"a {key_type.value} key")
    if ref.backend != backend:
        raise IdentityError(field, f"the key belongs to the {ref.backend} HSM backend, this "
                            f"HSM is {backend}")
    return ref


def _check_certificate(cert: x509.Certificate, role: RspRole, cis: TrustedCis,
                       field: str) -> None:
    try:
        verify_server_certificate(cert, role, cis)
    except CertificateError as e:
        raise IdentityError(field, f"{e.certificate}: {e}", expected=f"a certificate with "
                            f"rspRole {role.value} issued by a trusted CI") from None


def _check_pair(hsm: Any, ref: KeyRef, cert: x509.Certificate, field: str) -> None:
    try:
        held = hsm.ec_public(ref)
    except HsmError as e:
        raise IdentityError(field, f"the HSM cannot use this key ({type(e).__name__}: {e})"
                            ) from None
    if held != public_key_der(cert):
        raise IdentityError(field, "the certificate's public key is not the HSM key's",
                            expected="the certificate issued for this HSM key")


def load_identity(settings: Settings, hsm: Any) -> SmdpIdentity:
    """The SM-DP+'s identity, every piece checked (module docstring); IdentityError else."""
    files = identity_files(settings)
    manifest = read_manifest(files.rsp_dir)
    explicit = "smdp_address" in settings.model_fields_set
    address = (settings.smdp_address if explicit else manifest.get("address")
               ) or settings.smdp_address
    if not address:
        raise IdentityError("smdp_address", "no SM-DP+ address configured")
    ci_certs = [_certificate(p, "smdp_trusted_cis") for p in files.cis]
    try:
        cis = TrustedCis(ci_certs)
    except CertificateError as e:
        raise IdentityError("smdp_trusted_cis", str(e), expected="CI certificates "
                            f"(rspRole {RspRole.CI.value})") from None
    dpauth = _certificate(files.dpauth_cert, "smdp_dpauth_cert")
    dppb = _certificate(files.dppb_cert, "smdp_dppb_cert")
    _check_certificate(dpauth, RspRole.DP_AUTH, cis, "smdp_dpauth_cert")
    _check_certificate(dppb, RspRole.DP_PB, cis, "smdp_dppb_cert")
    backend = str(hsm.backend)
    dpauth_ref = _key_ref(settings.smdp_dpauth_key or manifest.get("dpauth_key"),
                          "smdp_dpauth_key", KeyType.SK_DPAUTH, backend)
    dppb_ref = _key_ref(settings.smdp_dppb_key or manifest.get("dppb_key"),
                        "smdp_dppb_key", KeyType.SK_DPPB, backend)
    _check_pair(hsm, dpauth_ref, dpauth, "smdp_dpauth_key")
    _check_pair(hsm, dppb_ref, dppb, "smdp_dppb_key")
    oid = settings.smdp_oid or manifest.get("oid") or dp_oid(dpauth)
    if not oid:
        raise IdentityError("smdp_oid", "no SM-DP+ OID configured and CERT.DPauth names none")
    for cert, field in ((dpauth, "smdp_dpauth_cert"), (dppb, "smdp_dppb_cert")):
        found = dp_oid(cert)
        if found is not None and found != oid:
            raise IdentityError(field, f"the certificate is for SM-DP+ OID {found}, not {oid}")
    if files.tls_cert is not None:
        tls = _certificate(files.tls_cert, "smdp_tls_cert")
        _check_certificate(tls, RspRole.DP_TLS, cis, "smdp_tls_cert")
        host = address_host(address).lower()
        names = tls_names(tls)
        if host not in names:
            named = ", ".join(names) or "no host"
            raise IdentityError("smdp_tls_cert", f"CERT.DP.TLS names {named}, not the SM-DP+ "
                                f"address {host}",
                                expected="a TLS certificate whose subjectAltName holds the "
                                         "address (dNSName, or iPAddress in a lab)")
    more = tuple(_more_credentials(files.rsp_dir, entry, i, cis, hsm, backend, oid)
                 for i, entry in enumerate(manifest.get("more") or []))
    return SmdpIdentity(address=address, oid=oid, dpauth_certificate=dpauth,
                        dpauth_signer=hsm_signer(hsm, dpauth_ref), dppb_certificate=dppb,
                        dppb_signer=hsm_signer(hsm, dppb_ref), cis=cis, more_credentials=more)


def _more_credentials(directory: Path, entry: Any, index: int, cis: TrustedCis, hsm: Any,
                      backend: str, oid: str) -> DpCredentials:
    """One further CERT.DPauth / DPpb set of smdp.json's "more" (another CI, another curve),
    checked like the first set."""
    field = f"smdp_rsp_dir.more[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("curve"), str):
        raise IdentityError(field, "not a {curve, dpauth_key, dppb_key} object")
    curve = entry["curve"]
    try:
        dpauth_path, dppb_path = more_credentials_files(directory, curve)
    except ValueError as e:
        raise IdentityError(f"{field}.curve", str(e)) from None
    certs = {"dpauth": _certificate(dpauth_path, f"{field}.dpauth_cert"),
             "dppb": _certificate(dppb_path, f"{field}.dppb_cert")}
    refs = {}
    for role, key_type, rsp_role in (("dpauth", KeyType.SK_DPAUTH, RspRole.DP_AUTH),
                                     ("dppb", KeyType.SK_DPPB, RspRole.DP_PB)):
        cert = certs[role]
        _check_certificate(cert, rsp_role, cis, f"{field}.{role}_cert")
        found_curve = certificate_curve(cert, rsp_role.certificate_name).name
        if found_curve != curve:
            raise IdentityError(f"{field}.{role}_cert", f"the certificate's key is on "
                                f"{found_curve}, not {curve}")
        refs[role] = _key_ref(entry.get(f"{role}_key"), f"{field}.{role}_key", key_type,
                              backend)
        _check_pair(hsm, refs[role], cert, f"{field}.{role}_key")
        found = dp_oid(cert)
        if found is not None and found != oid:
            raise IdentityError(f"{field}.{role}_cert", f"the certificate is for SM-DP+ OID "
                                f"{found}, not {oid}")
    return DpCredentials(certs["dpauth"], hsm_signer(hsm, refs["dpauth"]), certs["dppb"],
                         hsm_signer(hsm, refs["dppb"]))


_CONFIGURED = ("smdp_dpauth_cert", "smdp_dppb_cert", "smdp_dpauth_key", "smdp_dppb_key")


def smdp_identity(*, address: str | None = None, hsm: Any, home: Path | None = None,
                  settings: Settings | None = None) -> SmdpIdentity:
    """The identity the ES9+ service runs with (its factory calls this): `load_identity` at
    `address` (the address the service answers at; default the settings'), `hsm` the HSM or a
    callable that opens it. In dev mode (`make run`, labs, tests), with no identity configured
    or one this function made for another address, an SGP.26-style lab identity is made first
    (simcore.smdp.rsp_pki.sgp26_init: DP keys generated in the HSM, certificates from the lab
    CI the virtual eUICC trusts). In production nothing is made: a missing piece is an
    IdentityError naming it. `home` replaces the settings' workspace (SIMSMITH_HOME)."""
    settings = settings or get_settings()
    if home is not None:
        settings = settings_with(settings, home=home)
    opened = hsm if hasattr(hsm, "backend") or not callable(hsm) else hsm()
    if address:
        settings = settings_with(settings, smdp_address=address)
    address = settings.smdp_address
    if settings.mode == "dev" and not any(getattr(settings, f) for f in _CONFIGURED):
        directory = rsp_dir(settings)
        # Several API workers start at once: one makes the lab identity, the others wait on
        # this lock (flock(2), released by the kernel if the holder dies) and then load it.
        directory.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory.parent / f".{directory.name}.lock",
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            manifest = read_manifest(directory)
            stale = bool(manifest.get("auto")) and manifest.get("address") != address
            if not manifest or stale:
                sgp26_init(settings, opened, address=address, directory=directory,
                           force=stale, auto=True, check=lambda s: load_identity(s, opened))
            return load_identity(settings, opened)
        finally:
            os.close(fd)  # releases the lock
    return load_identity(settings, opened)


def _certificate_facts(cert: x509.Certificate) -> dict[str, Any]:
    from esim.sgp22.certificates import rsp_roles, subject_key_id
    from esim.sgp26_pki import dp_oid, tls_names

    try:
        aki = cert.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        aki = None
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "curve": certificate_curve(cert, "certificate").name,
            "serial": f"{cert.serial_number:x}",
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "roles": sorted(f"{r.name} ({r.value})" for r in rsp_roles(cert)),
            "ski": subject_key_id(cert).hex(), "aki": aki.hex() if aki else None,
            "oid": dp_oid(cert), "names": tls_names(cert)}


def describe(settings: Settings, hsm: Any) -> dict[str, Any]:
    """The checked identity as facts for `simsmith pki show` (no key material: the key
    references are shown by backend, type and label)."""
    identity = load_identity(settings, hsm)
    files = identity_files(settings)
    manifest = read_manifest(files.rsp_dir)
    refs = {}
    for role in ("dpauth", "dppb"):
        token = getattr(settings, f"smdp_{role}_key") or manifest.get(f"{role}_key")
        ref = KeyRef.from_token(str(token))
        refs[role] = {"backend": ref.backend, "key_type": ref.key_type.value,
                      "label": ref.owner}
    certs = {"dpauth": _certificate_facts(identity.dpauth_certificate),
             "dppb": _certificate_facts(identity.dppb_certificate)}
    more = []
    for entry, creds in zip(manifest.get("more") or [], identity.more_credentials,
                            strict=True):
        facts: dict[str, Any] = {"curve": entry["curve"]}
        for role in ("dpauth", "dppb"):
            ref = KeyRef.from_token(str(entry[f"{role}_key"]))
            facts[f"{role}_key"] = {"backend": ref.backend, "key_type": ref.key_type.value,
                                    "label": ref.owner}
        facts["dpauth"] = _certificate_facts(creds.dpauth_certificate)
        facts["dppb"] = _certificate_facts(creds.dppb_certificate)
        more.append(facts)
    if files.tls_cert is not None:
        certs["tls"] = _certificate_facts(x509.load_pem_x509_certificate(
            files.tls_cert.read_bytes()))
    return {"address": identity.address, "oid": identity.oid, "rsp_dir": str(files.rsp_dir),
            "keys": refs, "certificates": certs, "more_credentials": more,
            "trusted_cis": [_certificate_facts(c) for c in identity.cis.certificates]}
