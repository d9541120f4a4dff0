"""A development PKI for ES2+'s mutual TLS: one CA, a server certificate, client certificates.

ES2+ (GSMA SGP.22 §2.6.6 / §5.3) runs over HTTPS with mutual authentication: the operator and
the SM-DP+ each present a certificate their peer trusts. In production those come from the
parties' own CAs; for development, tests and the demo `dev_init` writes a self-contained set:

    ca.pem / ca.key          self-signed CA (ECDSA P-256)
    server.pem / server.key  the SM-DP+ side: serverAuth, SAN localhost, 127.0.0.1, ::1
    client.pem / client.key  the operator side: clientAuth, CN = the requester identifier

Private keys are written unencrypted with mode 0600 — for development only. Nothing here logs or
returns key material in a repr.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from esim.errors import EsimError

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
DEFAULT_CLIENT = "simsmith-operator"


class PkiError(EsimError):
    """The development PKI could not be created (e.g. files exist and overwriting was not
    asked for)."""


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key (the key never shows in a repr)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def __repr__(self) -> str:
        return f"Issued({self.cert.subject.rfc4514_string()!r}, serial={self.cert.serial_number})"

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def write(self, cert_path: Path, key_path: Path) -> None:
        cert_path.write_bytes(self.cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key_pem)
        os.chmod(key_path, 0o600)


def _name(common_name: str, org: str = "simsmith development") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _window(not_before: datetime | None, days: int) -> tuple[datetime, datetime]:
    start = not_before or (datetime.now(UTC) - timedelta(minutes=5))
    return start, start + timedelta(days=days)


def make_ca(common_name: str = "simsmith dev CA", *, days: int = 3650,
            not_before: datetime | None = None) -> Issued:
    """A self-signed CA certificate (path length 0) with a new P-256 key."""
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _window(not_before, days)
    name = _name(common_name)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return Issued(cert, key)


def issue(ca: Issued, common_name: str, *, server: bool = False,
          hosts: Sequence[str] = (), days: int = 825,
          not_before: datetime | None = None) -> Issued:
    """An end-entity certificate signed by `ca`: serverAuth with `hosts` as subject alternative
    names when `server`, clientAuth otherwise."""
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _window(not_before, days)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (x509.CertificateBuilder().subject_name(_name(common_name))
               .issuer_name(ca.cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_agreement=True,
                                            key_cert_sign=False, crl_sign=False,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.key.public_key()), critical=False))
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


@dataclass(frozen=True)
class DevPki:
    """Paths of a development PKI written by `dev_init`."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"

    def files(self) -> list[Path]:
        return [self.ca, self.ca_key, self.server_cert, self.server_key, self.client_cert,
                self.client_key]


def dev_init(directory: Path, *, hosts: Sequence[str] = DEFAULT_HOSTS,
             client_name: str = DEFAULT_CLIENT, force: bool = False) -> DevPki:
    """Write a CA, a server and a client certificate with their keys under `directory`.
    Refuses to overwrite existing files unless `force`."""
    pki = DevPki(directory)
    existing = [p.name for p in pki.files() if p.exists()]
    if existing and not force:
        raise PkiError(f"{directory}: {', '.join(existing)} already exist(s); use --force to "
                       "replace the development PKI")
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca()
    ca.write(pki.ca, pki.ca_key)
    issue(ca, hosts[0] if hosts else "localhost", server=True, hosts=hosts).write(
        pki.server_cert, pki.server_key)
    issue(ca, client_name).write(pki.client_cert, pki.client_key)
    return pki


def certificate_identity(cert: x509.Certificate) -> str:
    """The common name of a certificate's subject (the whole RFC 4514 name when it has none)."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns:
        value = cns[0].value
        return value if isinstance(value, str) else value.decode()
    return cert.subject.rfc4514_string()
