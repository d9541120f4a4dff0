"""A throw-away SGP.22-style PKI for tests (SGP.26 shapes: rspRole policies, EUM name
constraints, EID in the eUICC subject), with knobs to break one thing at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from esim.sgp22.certificates import RspRole

EID = "89049032123451234512345678901235"
START = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class Party:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(*attrs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs])


def issue(subject: x509.Name, role: RspRole | None, issuer: Party | None, *, ca: bool,
          key: ec.EllipticCurvePrivateKey | None = None, days: int = 3650,
          start: datetime = START, name_constraints: x509.Name | None = None) -> Party:
    key = key or ec.generate_private_key(ec.SECP256R1())
    signing_key = issuer.key if issuer else key
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start)
               .not_valid_after(start + timedelta(days=days))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False)
               .add_extension(x509.KeyUsage(
                   digital_signature=not ca, content_commitment=False, key_encipherment=False,
                   data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                   crl_sign=ca, encipher_only=False, decipher_only=False), critical=True))
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False)
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None if
                                                              issuer is None else 0),
                                        critical=True)
    if role is not None:
        builder = builder.add_extension(x509.CertificatePolicies([x509.PolicyInformation(
            x509.ObjectIdentifier(role.value), None)]), critical=True)
    if name_constraints is not None:
        builder = builder.add_extension(x509.NameConstraints(
            permitted_subtrees=[x509.DirectoryName(name_constraints)], excluded_subtrees=None),
            critical=True)
    return Party(builder.sign(signing_key, hashes.SHA256()), key)


def ci(**kw: object) -> Party:
    return issue(_name((NameOID.COMMON_NAME, "Test CI"), (NameOID.ORGANIZATION_NAME, "RSPTEST")),
                 RspRole.CI, None, ca=True, **kw)  # type: ignore[arg-type]


def eum(ci_party: Party, role: RspRole = RspRole.EUM, **kw: object) -> Party:
    return issue(_name((NameOID.COMMON_NAME, "EUM Test"), (NameOID.ORGANIZATION_NAME, "EUM Org")),
                 role, ci_party, ca=True,
                 name_constraints=_name((NameOID.ORGANIZATION_NAME, "EUM Org"),
                                        (NameOID.SERIAL_NUMBER, "89049032")),
                 **kw)  # type: ignore[arg-type]


def euicc(eum_party: Party, eid: str = EID, role: RspRole = RspRole.EUICC,
          org: str = "EUM Org", **kw: object) -> Party:
    return issue(_name((NameOID.COMMON_NAME, "Test eUICC"), (NameOID.SERIAL_NUMBER, eid),
                       (NameOID.ORGANIZATION_NAME, org)),
                 role, eum_party, ca=False, **kw)  # type: ignore[arg-type]


def dp(ci_party: Party, role: RspRole, **kw: object) -> Party:
    return issue(_name((NameOID.COMMON_NAME, "TEST SM-DP+"), (NameOID.ORGANIZATION_NAME, "ACME")),
                 role, ci_party, ca=False, **kw)  # type: ignore[arg-type]
