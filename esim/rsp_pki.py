"""A development RSP PKI in the shapes of GSMA SGP.22 v2.x §4.5.2 / SGP.26 (test certificates):
a CI (root, rspRole ci), an EUM (name constraints on O and the EID prefix, rspRole eum), eUICCs
(EID as subject serialNumber, rspRole euicc), and SM-DP+ DPauth / DPpb certificates (rspRole
dp-auth / dp-pb, the SM-DP+ OID as registeredID). ECDSA with SHA-256 on NIST P-256, or on
brainpoolP256r1 (SGP.22 §2.6.7) for a second hierarchy: every certificate is on its CI's curve
(§4.5.2.0). A lab keeps the P-256 hierarchy in its directory and a brainpool one in the
`brainpoolP256r1/` subdirectory (`hierarchy_dir`).

Development only: `DevRspPki` keeps keys unencrypted (mode 0600) in one directory. The
certificates verify with esim.sgp22.certificates exactly as real ones do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from esim.sgp22.certificates import RspRole

NIST_P256 = "secp256r1"
BRAINPOOL_P256R1 = "brainpoolP256r1"
LAB_CURVES = (NIST_P256, BRAINPOOL_P256R1)
EUM_ORG = "simsmith development EUM"
EUM_EID_PREFIX = "89049032"
DEFAULT_SMDP_OID = "2.999.10"


@dataclass(frozen=True, repr=False)
class Party:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def __repr__(self) -> str:
        return f"Party({self.cert.subject.rfc4514_string()!r})"


def _name(*attrs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs])


def _curve(name: str) -> ec.EllipticCurve:
    if name == NIST_P256:
        return ec.SECP256R1()
    if name == BRAINPOOL_P256R1:
        return ec.BrainpoolP256R1()
    raise ValueError(f"curve {name!r} is not {NIST_P256} or {BRAINPOOL_P256R1} (SGP.22 §2.6.7)")


def hierarchy_dir(base: Path, curve: str) -> Path:
    """Where a lab keeps the hierarchy of `curve`: P-256 in `base`, brainpool in a subdir."""
    _curve(curve)
    return base if curve == NIST_P256 else base / curve


def _issue(subject: x509.Name, role: RspRole, issuer: Party | None, *, ca: bool,
           days: int, name_constraints: x509.Name | None = None,
           smdp_oid: str | None = None, curve: str = NIST_P256) -> Party:
    # one chain, one curve (SGP.22 §4.5.2.0): an issued key is on its issuer's curve
    key = ec.generate_private_key(issuer.key.curve if issuer else _curve(curve))
    now = datetime.now(UTC) - timedelta(minutes=5)
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + timedelta(days=days))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False)
               .add_extension(x509.KeyUsage(
                   digital_signature=not ca, content_commitment=False, key_encipherment=False,
                   data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                   encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.CertificatePolicies([x509.PolicyInformation(
                   x509.ObjectIdentifier(role.value), None)]), critical=True))
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False)
    if ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0),
            critical=True)
    if name_constraints is not None:
        builder = builder.add_extension(x509.NameConstraints(
            permitted_subtrees=[x509.DirectoryName(name_constraints)], excluded_subtrees=None),
            critical=True)
    if smdp_oid is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.RegisteredID(x509.ObjectIdentifier(smdp_oid))]), critical=False)
    return Party(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


def make_ci(days: int = 3650, curve: str = NIST_P256) -> Party:
    suffix = "" if curve == NIST_P256 else f" {curve}"
    return _issue(_name((NameOID.COMMON_NAME, f"simsmith development CI{suffix}"),
                        (NameOID.ORGANIZATION_NAME, "simsmith development")),
                  RspRole.CI, None, ca=True, days=days, curve=curve)


def issue_eum(ci: Party, days: int = 3650) -> Party:
    return _issue(_name((NameOID.COMMON_NAME, "simsmith development EUM"),
                        (NameOID.ORGANIZATION_NAME, EUM_ORG)),
                  RspRole.EUM, ci, ca=True, days=days,
                  name_constraints=_name((NameOID.ORGANIZATION_NAME, EUM_ORG),
                                         (NameOID.SERIAL_NUMBER, EUM_EID_PREFIX)))


def issue_euicc(eum: Party, eid: str, days: int = 3650) -> Party:
    return _issue(_name((NameOID.COMMON_NAME, "simsmith virtual eUICC"),
                        (NameOID.SERIAL_NUMBER, eid), (NameOID.ORGANIZATION_NAME, EUM_ORG)),
                  RspRole.EUICC, eum, ca=False, days=days)


def issue_dp(ci: Party, role: RspRole, smdp_oid: str = DEFAULT_SMDP_OID,
             days: int = 825) -> Party:
    return _issue(_name((NameOID.COMMON_NAME, "simsmith SM-DP+"),
                        (NameOID.ORGANIZATION_NAME, "simsmith development")),
                  role, ci, ca=False, days=days, smdp_oid=smdp_oid)


def _write(path: Path, data: bytes, secret: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _save(directory: Path, name: str, party: Party) -> None:
    _write(directory / f"{name}.pem", party.cert.public_bytes(serialization.Encoding.PEM), False)
    _write(directory / f"{name}.key", party.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), True)


def _load(directory: Path, name: str) -> Party:
    cert = x509.load_pem_x509_certificate((directory / f"{name}.pem").read_bytes())
    key = serialization.load_pem_private_key((directory / f"{name}.key").read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{directory / name}.key is not an EC key")
    return Party(cert, key)


class DevRspPki:
    """ci.pem/.key, eum.pem/.key, euicc-<EID>.pem/.key, dpauth/dppb.pem/.key in `directory`,
    each created on first use — on `curve` (a CI made for this object; files already there
    keep theirs)."""

    def __init__(self, directory: Path, curve: str = NIST_P256) -> None:
        _curve(curve)
        self.directory = directory
        self.curve = curve

    def _party(self, name: str, make: object) -> Party:
        if (self.directory / f"{name}.pem").exists():
            return _load(self.directory, name)
        self.directory.mkdir(parents=True, exist_ok=True)
        party = make() if callable(make) else None
        assert isinstance(party, Party)
        _save(self.directory, name, party)
        return party

    def ci(self) -> Party:
        return self._party("ci", lambda: make_ci(curve=self.curve))

    def eum(self) -> Party:
        return self._party("eum", lambda: issue_eum(self.ci()))

    def euicc(self, eid: str) -> Party:
        return self._party(f"euicc-{eid}", lambda: issue_euicc(self.eum(), eid))

    def dpauth(self) -> Party:
        return self._party("dpauth", lambda: issue_dp(self.ci(), RspRole.DP_AUTH))

    def dppb(self) -> Party:
        return self._party("dppb", lambda: issue_dp(self.ci(), RspRole.DP_PB))
