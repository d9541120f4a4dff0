"""The SGP.22 certificate chains: CI → EUM → eUICC and CI → DPauth / DPpb.

GSMA SGP.22 v2.x §4.5.2 (certificates and their profiles; SGP.26 for the test PKI): each
certificate carries, in a critical certificatePolicies extension, the rspRole policy OID of what
it is — 2.23.146.1.2.1.0 CI, .1 eUICC, .2 EUM, .3 DP TLS, .4 DPauth, .5 DPpb. The eUICC
certificate's subject serialNumber is the EID (§4.5.2.1.0.3); the EUM certificate constrains,
with a directoryName nameConstraints subtree, the O and EID prefix of the eUICCs it may sign.

Every key is on NIST P-256 or brainpoolP256r1 (§2.6.7), and every certificate of a chain on
its CI's curve (§4.5.2.0: "the Algorithm Identifiers of all certificates of a certificate
chain SHALL point to the same curve"); esim.sgp22.curves says which curve a session uses.

Verification uses `cryptography`:

* CERT.DPauth / CERT.DPpb (and any CI-issued server certificate) on P-256 go through its X.509
  path validator (`x509.verification.PolicyBuilder`), with the rspRole checked by an extension
  policy callback. That validator admits the Web PKI's curves only: it refuses a
  brainpoolP256r1 key outright ("Forbidden public key algorithm", cryptography 51), so a
  brainpool server certificate is checked like the eUICC chain below — each link with
  `verify_directly_issued_by`, plus the named rules (and the CI's and the certificate's CA
  flags and keyUsage, which the validator would have checked).
* The eUICC chain cannot: every SGP.22 EUM certificate has a *critical* nameConstraints with a
  directoryName subtree, which cryptography's validator refuses outright ("unsupported
  directoryName constraint"). Each link is then checked with `Certificate.
  verify_directly_issued_by` (cryptography's issuer-name and signature check), and the rest —
  validity, CA flags, rspRole, the EUM's directoryName subtree, the EID — by the small, named
  rules below, each failing with its own reason.

Every refusal is a CertificateError naming the certificate ("CERT.EUICC.ECDSA", …) and a reason.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from esim.sgp22.curves import NIST_P256
from esim.sgp22.errors import CertificateError, UnsupportedCurveError

RSP_ROLE_ARC = "2.23.146.1.2.1"
EID_DIGITS = 32


class RspRole(enum.Enum):
    """rspRole certificate policies (SGP.22 §4.5.2.1), value = the policy OID."""

    CI = "2.23.146.1.2.1.0"
    EUICC = "2.23.146.1.2.1.1"
    EUM = "2.23.146.1.2.1.2"
    DP_TLS = "2.23.146.1.2.1.3"
    DP_AUTH = "2.23.146.1.2.1.4"
    DP_PB = "2.23.146.1.2.1.5"

    @property
    def certificate_name(self) -> str:
        return _CERT_NAMES[self]


_CERT_NAMES = {
    RspRole.CI: "CERT.CI.ECDSA",
    RspRole.EUICC: "CERT.EUICC.ECDSA",
    RspRole.EUM: "CERT.EUM.ECDSA",
    RspRole.DP_TLS: "CERT.DP.TLS",
    RspRole.DP_AUTH: "CERT.DPauth.ECDSA",
    RspRole.DP_PB: "CERT.DPpb.ECDSA",
}


def load_certificate(data: bytes, name: str) -> x509.Certificate:
    """A certificate from DER (as in ES9+ / ES10 messages) or PEM; `name` is for errors."""
    data = bytes(data)  # asn1tools hands ANY values over as bytearray
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except (ValueError, TypeError) as exc:
        raise CertificateError(name, "malformed", f"not an X.509 certificate ({exc})") from None


def rsp_roles(cert: x509.Certificate) -> set[RspRole]:
    """The rspRole policies a certificate carries."""
    try:
        policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return set()
    known = {role.value: role for role in RspRole}
    return {known[p.policy_identifier.dotted_string] for p in policies
            if p.policy_identifier.dotted_string in known}


def subject_key_id(cert: x509.Certificate) -> bytes:
    """The subjectKeyIdentifier (for a CI: the euiccCiPKId of SGP.22 §2.6.2)."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        raise CertificateError(cert.subject.rfc4514_string(), "malformed",
                               "no subjectKeyIdentifier") from None


def _authority_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def certificate_eid(cert: x509.Certificate, name: str = "CERT.EUICC.ECDSA") -> str:
    """The EID in an eUICC certificate's subject serialNumber (SGP.22 §4.5.2.1.0.3)."""
    values = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if len(values) != 1:
        raise CertificateError(name, "malformed", "the subject has no single serialNumber (EID)")
    eid = str(values[0].value)
    if len(eid) != EID_DIGITS or not eid.isdigit():
        raise CertificateError(name, "malformed", f"subject serialNumber {eid!r} is not an EID")
    return eid


class TrustedCis:
    """The CI certificates a party trusts, looked up by their key identifier (euiccCiPKId)."""

    def __init__(self, certificates: Iterable[x509.Certificate]) -> None:
        self._by_id: dict[bytes, x509.Certificate] = {}
        for cert in certificates:
            if RspRole.CI not in rsp_roles(cert):
                raise CertificateError("CERT.CI.ECDSA", "wrong-role",
                                       f"{cert.subject.rfc4514_string()} has no CI rspRole")
            self._by_id[subject_key_id(cert)] = cert

    @property
    def key_ids(self) -> list[bytes]:
        return list(self._by_id)

    @property
    def certificates(self) -> list[x509.Certificate]:
        return list(self._by_id.values())

    def by_key_id(self, key_id: bytes) -> x509.Certificate:
        try:
            return self._by_id[key_id]
        except KeyError:
            raise CertificateError("CERT.CI.ECDSA", "unknown-ci",
                                   f"no trusted CI with key identifier {key_id.hex()}") from None

    def issuer_of(self, cert: x509.Certificate, name: str) -> x509.Certificate:
        """The trusted CI that issued `cert` (by authorityKeyIdentifier, else issuer name)."""
        aki = _authority_key_id(cert)
        if aki is not None:
            if aki in self._by_id:
                return self._by_id[aki]
        else:
            for ci in self._by_id.values():
                if ci.subject == cert.issuer:
                    return ci
        raise CertificateError(name, "unknown-ci",
                               f"issuer {cert.issuer.rfc4514_string()} is not a trusted CI")


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _check_validity(cert: x509.Certificate, name: str, now: datetime) -> None:
    if now < cert.not_valid_before_utc:
        raise CertificateError(name, "not-yet-valid",
                               f"valid only from {cert.not_valid_before_utc.isoformat()}")
    if now > cert.not_valid_after_utc:
        raise CertificateError(name, "expired",
                               f"expired on {cert.not_valid_after_utc.isoformat()}")


def _check_role(cert: x509.Certificate, role: RspRole, name: str) -> None:
    if role not in rsp_roles(cert):
        found = ", ".join(sorted(r.name for r in rsp_roles(cert))) or "none"
        raise CertificateError(name, "wrong-role",
                               f"policy {role.value} ({role.name}) missing; rspRole: {found}")


def _check_issued_by(cert: x509.Certificate, issuer: x509.Certificate, name: str,
                     issuer_name: str) -> None:
    aki = _authority_key_id(cert)
    if aki is not None and aki != subject_key_id(issuer):
        raise CertificateError(name, "wrong-issuer",
                               f"authorityKeyIdentifier {aki.hex()} is not {issuer_name}'s")
    try:
        cert.verify_directly_issued_by(issuer)
    except ValueError:
        raise CertificateError(name, "wrong-issuer",
                               f"issuer {cert.issuer.rfc4514_string()} is not {issuer_name} "
                               f"{issuer.subject.rfc4514_string()}") from None
    except InvalidSignature:
        raise CertificateError(name, "bad-signature",
                               f"signature does not verify with {issuer_name}") from None


def _check_ca(cert: x509.Certificate, name: str, is_ca: bool) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ca = constraints.ca
    except x509.ExtensionNotFound:
        ca = False
    if ca != is_ca:
        raise CertificateError(name, "invalid-path",
                               "is a CA certificate" if ca else "is not a CA certificate")
    if is_ca:
        try:
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is None or not usage.key_cert_sign:
            raise CertificateError(name, "invalid-path", "keyUsage lacks keyCertSign")


def _check_name_constraints(eum: x509.Certificate, euicc: x509.Certificate) -> None:
    """The EUM's directoryName subtrees (SGP.22 §4.5.2.1.0.2): every attribute of a subtree
    must be in the eUICC subject with the same value, serialNumber (the EIN) as a prefix."""
    try:
        constraints = eum.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return
    subtrees = [s.value for s in constraints.permitted_subtrees or ()
                if isinstance(s, x509.DirectoryName)]
    if not subtrees:
        return

    def inside(subtree: x509.Name) -> bool:
        for attribute in subtree:
            values = [str(a.value) for a in euicc.subject.get_attributes_for_oid(attribute.oid)]
            wanted = str(attribute.value)
            if attribute.oid == NameOID.SERIAL_NUMBER:
                if not any(v.startswith(wanted) for v in values):
                    return False
            elif wanted not in values:
                return False
        return True

    if not any(inside(s) for s in subtrees):
        raise CertificateError("CERT.EUICC.ECDSA", "name-constraints",
                               f"subject {euicc.subject.rfc4514_string()} is outside the EUM's "
                               "permitted subtrees")


def certificate_curve(cert: x509.Certificate, name: str) -> ec.EllipticCurve:
    """The curve of a certificate's key: NIST P-256 or brainpoolP256r1 (SGP.22 §2.6.7);
    CertificateError(name, 'unsupported-curve') naming the curve's OID otherwise."""
    from esim.sgp22.curves import curve_of

    try:
        return curve_of(cert, name)
    except UnsupportedCurveError as exc:
        raise CertificateError(name, "unsupported-curve", f"the key's curve is {exc.oid}, not "
                               "NIST P-256 or brainpoolP256r1 (SGP.22 §2.6.7)") from None


def _check_key(cert: x509.Certificate, name: str, ci: x509.Certificate | None = None) -> None:
    curve = certificate_curve(cert, name)
    if ci is not None:
        ci_curve = certificate_curve(ci, RspRole.CI.certificate_name)
        if ci_curve.name != curve.name:
            raise CertificateError(name, "unsupported-curve",
                                   f"the key is on {curve.name}, its CI's on {ci_curve.name}: "
                                   "one chain, one curve (SGP.22 §4.5.2.0)")


@dataclass(frozen=True)
class EuiccIdentity:
    """A verified eUICC: its EID, certificate (whose key signs euiccSigned1/2) and chain."""

    eid: str
    certificate: x509.Certificate
    eum: x509.Certificate
    ci: x509.Certificate

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        key = self.certificate.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        return key


# EUM certificates already found issued by a CI (the pair compared by DER): an SM-DP+ sees the
# same few EUMs in every download, and their signature and extensions cannot change. Only a
# passed check is kept; validity is checked at every use (it depends on the time).
_EUMS_VERIFIED: dict[tuple[x509.Certificate, x509.Certificate], None] = {}
_EUMS_VERIFIED_MAX = 256


def _check_eum(eum: x509.Certificate, ci: x509.Certificate) -> None:
    """CERT.EUM's key (on its CI's curve), signature by the CI, rspRole and CA constraints."""
    if (eum, ci) in _EUMS_VERIFIED:
        return
    eum_name = RspRole.EUM.certificate_name
    _check_key(eum, eum_name, ci)
    _check_issued_by(eum, ci, eum_name, "the CI")
    _check_role(eum, RspRole.EUM, eum_name)
    _check_ca(eum, eum_name, is_ca=True)
    if len(_EUMS_VERIFIED) >= _EUMS_VERIFIED_MAX:
        _EUMS_VERIFIED.clear()  # bounded: many distinct EUMs only cost the checks again
    _EUMS_VERIFIED[(eum, ci)] = None


def verify_euicc_chain(euicc_certificate: bytes | x509.Certificate,
                       eum_certificate: bytes | x509.Certificate, cis: TrustedCis, *,
                       eid: str | None = None, now: datetime | None = None) -> EuiccIdentity:
    """Check CERT.EUICC → CERT.EUM → a trusted CI; `eid`, when given, must be the one in the
    eUICC certificate. Returns the verified identity or raises CertificateError."""
    euicc_name, eum_name = RspRole.EUICC.certificate_name, RspRole.EUM.certificate_name
    euicc = (euicc_certificate if isinstance(euicc_certificate, x509.Certificate)
             else load_certificate(euicc_certificate, euicc_name))
    eum = (eum_certificate if isinstance(eum_certificate, x509.Certificate)
           else load_certificate(eum_certificate, eum_name))
    at = _now(now)
    ci = cis.issuer_of(eum, eum_name)
    _check_validity(ci, RspRole.CI.certificate_name, at)
    _check_eum(eum, ci)
    _check_validity(eum, eum_name, at)
    _check_issued_by(euicc, eum, euicc_name, "the EUM")
    _check_role(euicc, RspRole.EUICC, euicc_name)
    _check_ca(euicc, euicc_name, is_ca=False)
    _check_validity(euicc, euicc_name, at)
    _check_key(euicc, euicc_name, ci)
    _check_name_constraints(eum, euicc)
    found = certificate_eid(euicc, euicc_name)
    if eid is not None and found != eid.upper():
        raise CertificateError(euicc_name, "eid-mismatch",
                               f"certificate is for EID {found}, expected {eid}")
    return EuiccIdentity(eid=found, certificate=euicc, eum=eum, ci=ci)


def verify_server_certificate(certificate: bytes | x509.Certificate, role: RspRole,
                              cis: TrustedCis, *, now: datetime | None = None
                              ) -> x509.Certificate:
    """Check a CI-issued SM-DP+ certificate (CERT.DPauth.ECDSA, CERT.DPpb.ECDSA) for `role`
    with cryptography's path validator; returns it or raises CertificateError."""
    name = role.certificate_name
    cert = (certificate if isinstance(certificate, x509.Certificate)
            else load_certificate(certificate, name))
    at = _now(now)
    ci = cis.issuer_of(cert, name)
    # The diagnostics first, so each refusal names its reason; then the library's validation.
    _check_validity(ci, RspRole.CI.certificate_name, at)
    _check_issued_by(cert, ci, name, "the CI")
    _check_role(cert, role, name)
    _check_validity(cert, name, at)
    _check_key(cert, name, ci)
    if certificate_curve(cert, name).name != NIST_P256:
        # cryptography's path validator refuses brainpool keys (module docstring): the link
        # is verified above; here what the validator's profiles would add.
        _check_ca(ci, RspRole.CI.certificate_name, is_ca=True)
        _check_ca(cert, name, is_ca=False)
        return cert

    def policies_ok(_policy: object, _cert: x509.Certificate,
                    _value: x509.CertificatePolicies | None) -> None:
        return None  # rspRole is checked above; here the critical extension is accounted for

    def accept_policies(policy: verification.ExtensionPolicy) -> verification.ExtensionPolicy:
        return policy.may_be_present(x509.CertificatePolicies, verification.Criticality.AGNOSTIC,
                                     policies_ok)

    verifier = (verification.PolicyBuilder()
                .store(verification.Store([ci]))
                .time(at)
                .extension_policies(
                    ca_policy=accept_policies(verification.ExtensionPolicy.webpki_defaults_ca()),
                    ee_policy=accept_policies(verification.ExtensionPolicy.permit_all()))
                .build_client_verifier())
    try:
        verifier.verify(cert, [])
    except verification.VerificationError as exc:
        raise CertificateError(name, "invalid-path", str(exc)) from None
    return cert
