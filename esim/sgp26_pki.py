"""The SM-DP+'s certificates in the SGP.22 profiles, for keys that stay in an HSM.

GSMA SGP.22 v2.x §4.5.2.1.0.x (CERT.DPauth.ECDSA, CERT.DPpb.ECDSA, CERT.DP.TLS), SGP.26 (the
test PKI that labs use), RFC 2986 (PKCS#10), RFC 5280 §4.2.1 (SKI, AKI, keyUsage, SAN).

- `build_csr` makes a PKCS#10 request for a public key whose private half is only reachable
  through a `Signer` (an HSM key): `cryptography` signs requests with in-memory keys only, so
  the CertificationRequestInfo is encoded here (a few DER items) and signed by the Signer; the
  result is parsed and its signature checked by `cryptography`.
- `issue_dp` is the CI's side: from a verified CSR, the certificate of `role` with the profile
  of SGP.22 §4.5.2 — critical certificatePolicies with the rspRole OID (2.23.146.1.2.1.3/.4/.5),
  critical keyUsage digitalSignature, subjectKeyIdentifier, authorityKeyIdentifier, the SM-DP+
  OID as SAN registeredID; the TLS certificate adds the SM-DP+ address as dNSName (iPAddress
  for a lab's address literal) and extendedKeyUsage serverAuth. Its certificatePolicies is not
  critical: TLS clients (OpenSSL, rustls) refuse a certificate with a critical extension they do
  not process, and SGP.22's ES9+ clients check the TLS certificate as a web server's.
- `dp_oid`, `tls_names`, `address_host` read a certificate back for simcore.smdp.identity.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from esim.errors import EsimError
from esim.rsp_pki import Party
from esim.sgp22.certificates import RspRole, subject_key_id
from esim.sgp22.signatures import Signer

__all__ = ["DP_ROLES", "CertificateProfileError", "address_host", "build_csr", "dp_oid",
           "dp_subject", "issue_dp", "tls_names"]

DP_ROLES = (RspRole.DP_AUTH, RspRole.DP_PB, RspRole.DP_TLS)
_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")  # AlgorithmIdentifier, RFC 5758 §3.2


class CertificateProfileError(EsimError):
    """A CSR or certificate does not fit the SGP.22 profile asked for (names what)."""


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def dp_subject(common_name: str, organization: str, country: str | None = None) -> x509.Name:
    """An SM-DP+ certificate subject: C (optional), O, CN (SGP.22 §4.5.2.1.0.x)."""
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, country)] if country else []
    attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
              x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    return x509.Name(attrs)


def build_csr(subject: x509.Name, public_key: bytes, signer: Signer
              ) -> x509.CertificateSigningRequest:
    """A PKCS#10 request (RFC 2986 §4) for `public_key` (SubjectPublicKeyInfo DER), signed with
    ECDSA-SHA256 by `signer` (r ‖ s, re-encoded as the DER Ecdsa-Sig-Value of RFC 5480)."""
    info = _der(0x30, b"\x02\x01\x00" + subject.public_bytes() + public_key + b"\xa0\x00")
    rs = signer(info)
    signature = utils.encode_dss_signature(int.from_bytes(rs[:32], "big"),
                                           int.from_bytes(rs[32:], "big"))
    der = _der(0x30, info + _ECDSA_SHA256 + _der(0x03, b"\x00" + signature))
    csr = x509.load_der_x509_csr(der)
    if not csr.is_signature_valid:
        raise CertificateProfileError("the CSR's signature does not verify with its public key "
                                      "(the signer is not that key's)")
    return csr


def address_host(address: str) -> str:
    """The host of an SM-DP+ address (`host`, `host:port`, `[v6]:port`)."""
    if address.startswith("["):
        return address[1:address.index("]")]
    if address.count(":") == 1:
        return address.split(":", 1)[0]
    return address


def _san_for(address: str) -> x509.GeneralName:
    host = address_host(address)
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue_dp(ci: Party, csr: x509.CertificateSigningRequest, role: RspRole, smdp_oid: str, *,
             address: str | None = None, days: int = 825,
             not_before: datetime | None = None) -> x509.Certificate:
    """The CI issues CERT.DPauth / CERT.DPpb / CERT.DP.TLS for the key of a verified `csr`
    (SGP.22 §4.5.2). The TLS certificate needs `address` (the SM-DP+ address it serves)."""
    if role not in DP_ROLES:
        raise CertificateProfileError(f"{role.name} is not an SM-DP+ certificate role")
    if not csr.is_signature_valid:
        raise CertificateProfileError("the CSR's signature does not verify (proof of possession)")
    public = csr.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name not in (
            "secp256r1", "brainpoolP256r1"):
        raise CertificateProfileError("the CSR's key is not a NIST P-256 or brainpoolP256r1 key "
                                      "(SGP.22 §2.6.7)")
    if public.curve.name != ci.key.curve.name:
        raise CertificateProfileError(f"the CSR's key is on {public.curve.name}, the CI's on "
                                      f"{ci.key.curve.name}: one chain, one curve "
                                      "(SGP.22 §4.5.2.0)")
    if role is RspRole.DP_TLS and not address:
        raise CertificateProfileError("CERT.DP.TLS needs the SM-DP+ address it serves")
    start = not_before or (datetime.now(UTC) - timedelta(minutes=5))
    sans: list[x509.GeneralName] = []
    if role is RspRole.DP_TLS:
        assert address is not None
        sans.append(_san_for(address))
    sans.append(x509.RegisteredID(x509.ObjectIdentifier(smdp_oid)))
    builder = (x509.CertificateBuilder()
               .subject_name(csr.subject)
               .issuer_name(ci.cert.subject)
               .public_key(public)
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + timedelta(days=days))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier(subject_key_id(ci.cert), None, None),
                              critical=False)
               .add_extension(x509.KeyUsage(
                   digital_signature=True, content_commitment=False, key_encipherment=False,
                   data_encipherment=False, key_agreement=False, key_cert_sign=False,
                   crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.CertificatePolicies([x509.PolicyInformation(
                   x509.ObjectIdentifier(role.value), None)]),
                   critical=role is not RspRole.DP_TLS)
               .add_extension(x509.SubjectAlternativeName(sans), critical=False))
    if role is RspRole.DP_TLS:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(ci.key, hashes.SHA256())


def _sans(cert: x509.Certificate) -> Sequence[x509.GeneralName]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def dp_oid(cert: x509.Certificate) -> str | None:
    """The SM-DP+ OID of an SM-DP+ certificate (its SAN registeredID), or None."""
    ids = [n.value.dotted_string for n in _sans(cert) if isinstance(n, x509.RegisteredID)]
    return ids[0] if ids else None


def tls_names(cert: x509.Certificate) -> list[str]:
    """The dNSName and iPAddress entries of a certificate's SAN, as text."""
    out: list[str] = []
    for n in _sans(cert):
        if isinstance(n, x509.DNSName):
            out.append(n.value.lower())
        elif isinstance(n, x509.IPAddress):
            out.append(str(n.value))
    return out


def public_key_der(cert: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    """SubjectPublicKeyInfo DER of a certificate's (or CSR's) key."""
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
