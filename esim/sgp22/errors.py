"""Errors of the SGP.22 download machinery (esim/sgp22).

Each error names the object it is about (an ASN.1 type, a certificate, a signature, a BPP
segment) and a machine-readable `reason`; none carries key material or a decrypted segment.
"""

from __future__ import annotations

from esim.errors import EsimError


class Sgp22Error(EsimError):
    """Base class of the errors raised by esim.sgp22."""


class Asn1Error(Sgp22Error, ValueError):
    """An SGP.22 ASN.1 structure could not be decoded or encoded.

    `type_name` is the RSPDefinitions type; `location` the member path asn1tools reported.
    """

    def __init__(self, type_name: str, message: str, location: str | None = None) -> None:
        self.type_name = type_name
        self.location = location
        where = f" at {location}" if location else ""
        super().__init__(f"{type_name}{where}: {message}")


class KeyAgreementError(Sgp22Error, ValueError):
    """ECKA could not run: a one-time public key is not a point on the expected curve."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class UnsupportedCurveError(Sgp22Error, ValueError):
    """A key is on a curve SGP.22 does not use (§2.6.7: NIST P-256 or brainpoolP256r1 only).

    `field` names the key ('CERT.DPpb.ECDSA', 'otPK.EUICC.ECKA', …), `oid` the curve seen (its
    namedCurve OID, e.g. '1.3.132.0.34' for P-384).
    """

    def __init__(self, field: str, oid: str) -> None:
        self.field = field
        self.oid = oid
        super().__init__(f"{field}: curve {oid} is not NIST P-256 (1.2.840.10045.3.1.7) or "
                         "brainpoolP256r1 (1.3.36.3.3.2.8.1.1.7) (SGP.22 §2.6.7)")


class SegmentError(Sgp22Error):
    """A protected BSP segment (SGP.22 §2.6.6) was refused.

    `index` is the segment's 0-based position in its protection sequence (its BPP container
    and position, when known, are in `where`); `reason` is 'structure' (SGP.22 error reason
    scp03tStructureError) or 'security' (scp03tSecurityError: wrong C-MAC).
    """

    def __init__(self, where: str, reason: str, message: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {message}")


class CertificateError(Sgp22Error):
    """A certificate of the SGP.22 PKI (§4.5.2) was refused.

    `certificate` names it ("CERT.EUICC.ECDSA", "CERT.EUM.ECDSA", "CERT.DPauth.ECDSA", …);
    `reason` is one of: 'malformed', 'expired', 'not-yet-valid', 'wrong-issuer', 'unknown-ci',
    'bad-signature', 'wrong-role', 'eid-mismatch', 'invalid-path', 'unsupported-curve' (a key
    on a curve other than SGP.22's two, or not the curve of its chain's CI).
    """

    def __init__(self, certificate: str, reason: str, message: str) -> None:
        self.certificate = certificate
        self.reason = reason
        super().__init__(f"{certificate}: {reason}: {message}")


class SignatureError(Sgp22Error):
    """An SGP.22 signature (§5.6: serverSignature1, euiccSignature1, …) did not verify.

    `signature` names it; `reason` is 'malformed' (not 64 bytes r‖s, or a bad 5F37 wrapper) or
    'mismatch' (does not verify with the signer's certificate).
    """

    def __init__(self, signature: str, reason: str, message: str) -> None:
        self.signature = signature
        self.reason = reason
        super().__init__(f"{signature}: {message}")


class BppError(Sgp22Error, ValueError):
    """A Bound Profile Package could not be built or opened.

    `field` names the BPP part (e.g. 'initialiseSecureChannelRequest.transactionId',
    'sequenceOf86'); `reason` is the SGP.22 ErrorReason name where one applies
    ('invalidTransactionId', 'unsupportedCrtValues', 'scp03tStructureError', …).
    """

    def __init__(self, field: str, reason: str, message: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {message}")


class AuthenticationError(Sgp22Error):
    """A step of the common mutual authentication or of the download preparation (SGP.22
    §3.1.2, §5.6.2–5.6.3, §5.7.5, §5.7.13) was refused.

    `check` names the element that failed ('euiccSigned1.transactionId',
    'serverSigned1.euiccChallenge', 'authenticateResponseError', …); `reason` is the SGP.22
    error name where one applies (AuthenticateErrorCode / DownloadErrorCode: 'invalidCertificate',
    'invalidSignature', 'euiccChallengeMismatch', 'invalidTransactionId', 'ciPKUnknown', …) or
    'mismatch' / 'malformed' for an SM-DP+ side check.
    """

    def __init__(self, check: str, reason: str, message: str) -> None:
        self.check = check
        self.reason = reason
        super().__init__(f"{check}: {message}")
