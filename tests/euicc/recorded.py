"""The virtual eUICC set up as the eUICC of the recorded SGP.22 session
(tests/vectors/sgp22/download): its certificates and key, its challenge and one-time key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from esim.euicc.es10 import EuiccCore
from esim.euicc.store import StateFile
from esim.sgp22 import schema
from esim.sgp22 import signatures as sig
from esim.sgp22.authentication import EuiccCredentials
from esim.sgp22.certificates import TrustedCis
from esim.sgp22.tlv import encode_tlv
from tests.esim.sgp22_vectors import cert_pem, field, h, session

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def cert(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert_pem(name))


def key(name: str) -> ec.EllipticCurvePrivateKey:
    k = serialization.load_pem_private_key(cert_pem(name), None)
    assert isinstance(k, ec.EllipticCurvePrivateKey)
    return k


def recorded_asr() -> Any:
    return schema.decode("AuthenticateServerResponse",
                         field("AuthenticateClient", "request.authenticateServerResponse"))[1]


def replaying_signer() -> Callable[[bytes], bytes]:
    """SK.EUICC, except that for the recorded euiccSigned1 it gives the recorded signature —
    ECDSA is randomised and the SM-DP+'s smdpSignature2 covers that exact euiccSignature1."""
    real = sig.software_signer(key("SK_EUICC_ECDSA_NIST.pem"))
    parts = sig.authenticate_server_response_parts(
        field("AuthenticateClient", "request.authenticateServerResponse"))
    recorded = sig.unwrap(parts.signature_tlv, "euiccSignature1")

    def sign(message: bytes) -> bytes:
        if message == sig.euicc_signature1_input(parts.signed):
            return recorded
        return real(message)
    return sign


def otsk_euicc() -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int(session()["ephemeral_keys"]["otSK.EUICC.ECKA"], 16),
                                 ec.SECP256R1())


def recorded_euicc(state: Path | None = None, **overrides: Any) -> EuiccCore:
    args: dict[str, Any] = dict(
        credentials=EuiccCredentials(signer=replaying_signer(),
                                     certificate=cert("CERT_EUICC_ECDSA_NIST.pem"),
                                     eum_certificate=cert("CERT_EUM_ECDSA_NIST.pem"),
                                     cis=TrustedCis([cert("CERT_CI_ECDSA_NIST.pem")])),
        eid=session()["eid"], state_file=StateFile(state),
        euicc_info2=recorded_asr()["euiccSigned1"]["euiccInfo2"],
        random=lambda n: h(session()["euiccChallenge"]), ecka_key=otsk_euicc, now=lambda: NOW)
    args.update(overrides)
    return EuiccCore(**args)


def authenticate_server_request(**replace: bytes) -> bytes:
    """ES10b.AuthenticateServer as the LPA builds it from InitiateAuthentication's answer."""
    parts = {
        "serverSigned1": field("InitiateAuthentication", "response.serverSigned1"),
        "serverSignature1": field("InitiateAuthentication", "response.serverSignature1"),
        "euiccCiPKIdToBeUsed": field("InitiateAuthentication", "response.euiccCiPKIdToBeUsed"),
        "serverCertificate": field("InitiateAuthentication", "response.serverCertificate"),
        "ctxParams1": schema.encode("CtxParams1", recorded_asr()["euiccSigned1"]["ctxParams1"]),
    }
    parts.update(replace)
    return encode_tlv(b"\xbf\x38", b"".join(parts.values()))


def prepare_download_request(**replace: bytes) -> bytes:
    """ES10b.PrepareDownload as the LPA builds it from AuthenticateClient's answer."""
    parts = {
        "smdpSigned2": field("AuthenticateClient", "response.smdpSigned2"),
        "smdpSignature2": field("AuthenticateClient", "response.smdpSignature2"),
        "smdpCertificate": field("AuthenticateClient", "response.smdpCertificate"),
    }
    parts.update(replace)
    return encode_tlv(b"\xbf\x21", b"".join(parts.values()))


def flip(der: bytes, needle: bytes, delta: int = 0) -> bytes:
    out = bytearray(der)
    out[der.index(needle) + delta] ^= 0x01
    return bytes(out)
