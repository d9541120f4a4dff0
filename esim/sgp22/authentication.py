"""Common mutual authentication and download preparation, both sides, without I/O.

GSMA SGP.22 v2.x §3.1.2 (common mutual authentication), §5.6.1–5.6.3 (ES9+ InitiateAuthentication,
AuthenticateClient, GetBoundProfilePackage: what the SM-DP+ checks) and §5.7.13 / §5.7.5 (ES10b
AuthenticateServer, PrepareDownload: what the eUICC checks and answers).

SM-DP+ side: `server_signed1`, `decode_authenticate_server_response`,
`check_authenticate_server_response`, `smdp_signed2`,
`check_prepare_download_response`. eUICC side: `authenticate_server`, `prepare_download`.
Signatures always cover the data objects as received (esim.sgp22.signatures); certificates go
through esim.sgp22.certificates. Refusals: CertificateError, SignatureError, or
AuthenticationError naming the element checked — each side maps them to its own codes (ES9+
subject/reason codes, ES10b AuthenticateErrorCode / DownloadErrorCode).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from esim.sgp22 import certificates, schema, signatures
from esim.sgp22.certificates import EuiccIdentity, RspRole, TrustedCis
from esim.sgp22.errors import Asn1Error, AuthenticationError, CertificateError, SignatureError
from esim.sgp22.signatures import Signer
from esim.sgp22.tlv import encode_tlv, read_tlv

CHALLENGE_LENGTH = 16


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(bytes(a), bytes(b))


def _decode(type_name: str, der: bytes, check: str) -> Any:
    try:
        return schema.decode(type_name, der)
    except Asn1Error as exc:
        raise AuthenticationError(check, "malformed", str(exc)) from None


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


# ---------------------------------------------------------------------------- SM-DP+ side

def server_signed1(*, transaction_id: bytes, euicc_challenge: bytes, server_address: str,
                   server_challenge: bytes) -> bytes:
    """serverSigned1 (§5.6.1) for InitiateAuthentication; sign it with SK.DPauth."""
    if len(euicc_challenge) != CHALLENGE_LENGTH:
        raise AuthenticationError("euiccChallenge", "malformed", "an eUICC challenge is 16 bytes")
    if len(server_challenge) != CHALLENGE_LENGTH:
        raise AuthenticationError("serverChallenge", "malformed", "a server challenge is 16 bytes")
    return schema.encode("ServerSigned1", {
        "transactionId": transaction_id, "euiccChallenge": euicc_challenge,
        "serverAddress": server_address, "serverChallenge": server_challenge})


@dataclass(frozen=True)
class AuthenticatedEuicc:
    """What AuthenticateClient learns from a verified AuthenticateServerResponse."""

    identity: EuiccIdentity
    euicc_info2: dict[str, Any]
    matching_id: str | None
    device_info: dict[str, Any]
    euicc_signature1: bytes  # the '5F37' data object as received (smdpSignature2 covers it)

    @property
    def eid(self) -> str:
        return self.identity.eid


@dataclass(frozen=True)
class DecodedAuthenticateServerResponse:
    """AuthenticateServerResponse decoded, nothing in it checked yet (`check_authenticate_server_
    response` checks it): the matching ID it claims, for a store that reads the session and the
    order in one query before the checks."""

    der: bytes
    choice: str
    value: Any

    @property
    def matching_id(self) -> str | None:
        """ctxParams1's matchingId as sent (unverified), None when absent or an error answer."""
        if self.choice != "authenticateResponseOk":
            return None
        _, ctx = self.value["euiccSigned1"]["ctxParams1"]
        found = ctx.get("matchingId")
        return found if isinstance(found, str) else None


def decode_authenticate_server_response(der: bytes) -> DecodedAuthenticateServerResponse:
    """AuthenticateServerResponse (§5.7.13) decoded; AuthenticationError (malformed) if not."""
    choice, value = _decode("AuthenticateServerResponse", der, "authenticateServerResponse")
    return DecodedAuthenticateServerResponse(der, choice, value)


def check_authenticate_server_response(der: bytes, *, cis: TrustedCis, transaction_id: bytes,
                                       server_address: str, server_challenge: bytes,
                                       ci_key_id: bytes | None = None,
                                       now: datetime | None = None,
                                       decoded: DecodedAuthenticateServerResponse | None = None,
                                       ) -> AuthenticatedEuicc:
    """The SM-DP+'s checks of AuthenticateClient (§5.6.2): the eUICC answered this session
    (transactionId, serverAddress, serverChallenge), its certificate chain leads to a trusted CI
    (`ci_key_id`: the euiccCiPKIdToBeUsed the SM-DP+ announced), and euiccSignature1 verifies
    over euiccSigned1 exactly as received. `decoded`: `der` already decoded (not decoded
    twice)."""
    if decoded is None or decoded.der is not der:
        decoded = decode_authenticate_server_response(der)
    choice, value = decoded.choice, decoded.value
    if choice != "authenticateResponseOk":
        code = value.get("authenticateErrorCode")
        raise AuthenticationError("authenticateResponseError", str(code),
                                  f"the eUICC refused the server authentication ({code})")
    signed1 = value["euiccSigned1"]
    if not _same(signed1["transactionId"], transaction_id):
        raise AuthenticationError("euiccSigned1.transactionId", "mismatch",
                                  "not the transaction of this session")
    if signed1["serverAddress"] != server_address:
        raise AuthenticationError("euiccSigned1.serverAddress", "mismatch",
                                  f"{signed1['serverAddress']!r} is not this SM-DP+")
    if not _same(signed1["serverChallenge"], server_challenge):
        raise AuthenticationError("euiccSigned1.serverChallenge", "mismatch",
                                  "not the challenge this SM-DP+ sent")
    identity = certificates.verify_euicc_chain(value["euiccCertificate"], value["eumCertificate"],
                                               cis, now=now)
    if ci_key_id is not None and certificates.subject_key_id(identity.ci) != ci_key_id:
        raise CertificateError(RspRole.EUM.certificate_name, "unknown-ci",
                               "not issued by the CI announced in euiccCiPKIdToBeUsed")
    parts = signatures.authenticate_server_response_parts(der)
    signatures.verify(identity.public_key, signatures.euicc_signature1_input(parts.signed),
                      parts.signature_tlv, "euiccSignature1")
    _, ctx = signed1["ctxParams1"]
    return AuthenticatedEuicc(identity=identity, euicc_info2=signed1["euiccInfo2"],
                              matching_id=ctx.get("matchingId"), device_info=ctx["deviceInfo"],
                              euicc_signature1=parts.signature_tlv)


def smdp_signed2(*, transaction_id: bytes, cc_required: bool,
                 bpp_euicc_otpk: bytes | None = None) -> bytes:
    """smdpSigned2 (§5.6.2); smdpSignature2 covers it ‖ euiccSignature1 (SK.DPpb)."""
    value: dict[str, Any] = {"transactionId": transaction_id, "ccRequiredFlag": cc_required}
    if bpp_euicc_otpk is not None:
        value["bppEuiccOtpk"] = bpp_euicc_otpk
    return schema.encode("SmdpSigned2", value)


@dataclass(frozen=True)
class PreparedDownload:
    """What GetBoundProfilePackage learns from a verified PrepareDownloadResponse."""

    otpk_euicc: bytes
    hash_cc: bytes | None


def check_prepare_download_response(der: bytes, *, euicc: EuiccIdentity | x509.Certificate,
                                    transaction_id: bytes,
                                    smdp_signature2: bytes) -> PreparedDownload:
    """The SM-DP+'s checks of GetBoundProfilePackage (§5.6.3): this session's transaction, and
    euiccSignature2 over euiccSigned2 ‖ smdpSignature2 with the authenticated eUICC's key (its
    verified identity, or the CERT.EUICC kept from AuthenticateClient). The
    confirmation code (hashCc) is for the caller: esim.confirmation_code.verify_confirmation_code.
    """
    choice, value = _decode("PrepareDownloadResponse", der, "prepareDownloadResponse")
    if choice != "downloadResponseOk":
        code = value.get("downloadErrorCode")
        raise AuthenticationError("downloadResponseError", str(code),
                                  f"the eUICC refused the download ({code})")
    signed2 = value["euiccSigned2"]
    if not _same(signed2["transactionId"], transaction_id):
        raise AuthenticationError("euiccSigned2.transactionId", "mismatch",
                                  "not the transaction of this session")
    parts = signatures.prepare_download_response_parts(der)
    key = euicc.public_key if isinstance(euicc, EuiccIdentity) else euicc.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise AuthenticationError("euiccCertificate", "malformed", "not an EC key")
    signatures.verify(key,
                      signatures.euicc_signature2_input(parts.signed, smdp_signature2),
                      parts.signature_tlv, "euiccSignature2")
    otpk = bytes(signed2["euiccOtpk"])
    # a point off the curve would only fail later, in ECKA: refuse it here, by name
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(key.curve, otpk)
    except ValueError:
        raise AuthenticationError("euiccSigned2.euiccOtpk", "malformed",
                                  "otPK.EUICC.ECKA is not a point on the eUICC's curve") from None
    hash_cc = signed2.get("hashCc")
    return PreparedDownload(otpk_euicc=otpk, hash_cc=bytes(hash_cc) if hash_cc else None)


# ------------------------------------------------------------------------------ eUICC side

def _certificate_code(exc: CertificateError) -> str:
    """The AuthenticateErrorCode / DownloadErrorCode of a refused server certificate."""
    return "unsupportedCurve" if exc.reason == "unsupported-curve" else "invalidCertificate"


@dataclass(frozen=True)
class EuiccCredentials:
    """The eUICC's own: its signing key (a Signer), certificates and the CIs it trusts."""

    signer: Signer
    certificate: x509.Certificate
    eum_certificate: x509.Certificate
    cis: TrustedCis

    def __repr__(self) -> str:
        return f"EuiccCredentials({self.certificate.subject.rfc4514_string()!r})"


@dataclass(frozen=True)
class ServerAuthenticated:
    """ES10b.AuthenticateServer's answer and what the eUICC keeps for PrepareDownload."""

    response: bytes  # AuthenticateServerResponse (BF38) DER
    transaction_id: bytes
    server_address: str
    dpauth: x509.Certificate
    euicc_signature1: bytes  # '5F37' data object, covered by smdpSignature2


def authenticate_server(request: bytes, *, credentials: EuiccCredentials,
                        euicc_challenge: bytes, euicc_info2: dict[str, Any],
                        ctx_params1: tuple[str, dict[str, Any]] | None = None,
                        now: datetime | None = None) -> ServerAuthenticated:
    """ES10b.AuthenticateServer (§5.7.13), eUICC side: check CERT.DPauth against the CI named
    by euiccCiPKIdToBeUsed, serverSignature1, and the echo of this eUICC's challenge; answer
    with euiccSigned1 signed by SK.EUICC. `ctx_params1` defaults to the request's."""
    try:
        value = schema.decode("AuthenticateServerRequest", request)
    except Asn1Error as exc:
        raise AuthenticationError("authenticateServerRequest", "undefinedError", str(exc)) from None
    try:
        ci = credentials.cis.by_key_id(bytes(value["euiccCiPKIdToBeUsed"]))
    except CertificateError:
        raise AuthenticationError("euiccCiPKIdToBeUsed", "ciPKUnknown",
                                  "not a CI this eUICC trusts") from None
    try:
        dpauth = certificates.verify_server_certificate(
            value["serverCertificate"], RspRole.DP_AUTH, TrustedCis([ci]), now=now)
    except CertificateError as exc:
        raise AuthenticationError("serverCertificate", _certificate_code(exc),
                                  str(exc)) from None
    root = read_tlv(request, where="AuthenticateServerRequest")
    parts = signatures.signed_pair(request, root, "serverSignature1")
    try:
        signatures.verify(dpauth, signatures.server_signature1_input(parts.signed),
                          parts.signature_tlv, "serverSignature1")
    except SignatureError as exc:
        raise AuthenticationError("serverSignature1", "invalidSignature", str(exc)) from None
    signed1 = value["serverSigned1"]
    if not _same(signed1["euiccChallenge"], euicc_challenge):
        raise AuthenticationError("serverSigned1.euiccChallenge", "euiccChallengeMismatch",
                                  "not the challenge this eUICC gave")
    euicc_signed1 = schema.encode("EuiccSigned1", {
        "transactionId": signed1["transactionId"], "serverAddress": signed1["serverAddress"],
        "serverChallenge": signed1["serverChallenge"], "euiccInfo2": euicc_info2,
        "ctxParams1": ctx_params1 if ctx_params1 is not None else value["ctxParams1"]})
    signature1 = signatures.sign(credentials.signer,
                                 signatures.euicc_signature1_input(euicc_signed1),
                                 "euiccSignature1")
    ok = (euicc_signed1 + signature1 + _der(credentials.certificate)
          + _der(credentials.eum_certificate))
    response = encode_tlv(b"\xbf\x38", encode_tlv(b"\xa0", ok))
    return ServerAuthenticated(response=response, transaction_id=bytes(signed1["transactionId"]),
                               server_address=signed1["serverAddress"], dpauth=dpauth,
                               euicc_signature1=signature1)


@dataclass(frozen=True, repr=False)
class DownloadPrepared:
    """ES10b.PrepareDownload's answer, and the one-time key the eUICC keeps for the BPP."""

    response: bytes  # PrepareDownloadResponse (BF21) DER
    otsk_euicc: ec.EllipticCurvePrivateKey
    dppb: x509.Certificate

    def __repr__(self) -> str:
        return f"DownloadPrepared({len(self.response)} bytes)"


def prepare_download(request: bytes, *, credentials: EuiccCredentials,
                     session: ServerAuthenticated, hash_cc: bytes | None = None,
                     otsk_euicc: ec.EllipticCurvePrivateKey | None = None,
                     now: datetime | None = None) -> DownloadPrepared:
    """ES10b.PrepareDownload (§5.7.5), eUICC side: check CERT.DPpb (same CI as DPauth),
    smdpSignature2 over smdpSigned2 ‖ euiccSignature1, the transaction; make otSK.EUICC.ECKA
    (fresh unless given) on CERT.DPpb's curve and answer euiccSigned2 ‖ euiccSignature2."""
    try:
        value = schema.decode("PrepareDownloadRequest", request)
    except Asn1Error as exc:
        raise AuthenticationError("prepareDownloadRequest", "undefinedError", str(exc)) from None
    try:
        dppb = certificates.verify_server_certificate(value["smdpCertificate"], RspRole.DP_PB,
                                                      credentials.cis, now=now)
    except CertificateError as exc:
        raise AuthenticationError("smdpCertificate", _certificate_code(exc), str(exc)) from None
    root = read_tlv(request, where="PrepareDownloadRequest")
    parts = signatures.signed_pair(request, root, "smdpSignature2")
    try:
        signatures.verify(dppb, signatures.smdp_signature2_input(parts.signed,
                                                                 session.euicc_signature1),
                          parts.signature_tlv, "smdpSignature2")
    except SignatureError as exc:
        raise AuthenticationError("smdpSignature2", "invalidSignature", str(exc)) from None
    signed2 = value["smdpSigned2"]
    if not _same(signed2["transactionId"], session.transaction_id):
        raise AuthenticationError("smdpSigned2.transactionId", "invalidTransactionId",
                                  "not the transaction of the authenticated session")
    if signed2["ccRequiredFlag"] and hash_cc is None:
        raise AuthenticationError("hashCc", "undefinedError",
                                  "the SM-DP+ requires a confirmation code")
    # otSK.EUICC.ECKA on the curve of CERT.DPpb (§5.7.5; esim.sgp22.curves)
    curve = certificates.certificate_curve(dppb, RspRole.DP_PB.certificate_name)
    key = otsk_euicc or ec.generate_private_key(curve)
    if key.curve.name != curve.name:
        raise AuthenticationError("otSK.EUICC.ECKA", "unsupportedCurve",
                                  f"the one-time key is on {key.curve.name}, CERT.DPpb on "
                                  f"{curve.name}")
    euicc_signed2: dict[str, Any] = {
        "transactionId": session.transaction_id,
        "euiccOtpk": key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)}
    if hash_cc is not None:
        euicc_signed2["hashCc"] = hash_cc
    signed = schema.encode("EUICCSigned2", euicc_signed2)
    signature2 = signatures.sign(credentials.signer,
                                 signatures.euicc_signature2_input(signed, parts.signature_tlv),
                                 "euiccSignature2")
    response = encode_tlv(b"\xbf\x21", encode_tlv(b"\xa0", signed + signature2))
    return DownloadPrepared(response=response, otsk_euicc=key, dppb=dppb)

