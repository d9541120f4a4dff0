"""The ECDSA signatures of a profile download, signed and verified over the exact bytes.

GSMA SGP.22 v2.x §5.6 (ES9+), §5.7 (ES10b), §2.6.7 (ECDSA with SHA-256 on NIST P-256 or
brainpoolP256r1; a signature is the plain r ‖ s of BSI TR-03111, 64 bytes, carried in a
[APPLICATION 55] '5F37' data object). What each one covers — checked against the recorded
reference session (tests/vectors/sgp22/download):

    serverSignature1  SK.DPauth over serverSigned1                      (InitiateAuthentication)
    euiccSignature1   SK.EUICC  over euiccSigned1                       (AuthenticateServer)
    smdpSignature2    SK.DPpb   over smdpSigned2 ‖ euiccSignature1 TLV  (AuthenticateClient)
    euiccSignature2   SK.EUICC  over euiccSigned2 ‖ smdpSignature2 TLV  (PrepareDownload)
    smdpSign (BF23)   SK.DPpb   over the BF23 data objects before 5F37 ‖ '5F49' otPK.EUICC TLV
    euiccSignPIR      SK.EUICC  over profileInstallationResultData (BF27)
    euiccNotificationSignature, euiccCancelSessionSignature: over their signed data object

"Signed" bytes are always the data object as received (tag, length, value) — never a
re-encoding. Signing takes a `Signer`: a callable from message to the 64-byte r ‖ s, so
SK.DPauth / SK.DPpb can stay inside an HSM (PKCS#11 CKM_ECDSA returns r ‖ s as it is).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from esim.sgp22.errors import SignatureError
from esim.sgp22.tlv import Tlv, children, read_tlv

SIGNATURE_TAG = b"\x5f\x37"  # [APPLICATION 55]
OTPK_TAG = b"\x5f\x49"  # [APPLICATION 73]
SCALAR_LENGTH = 32
SIGNATURE_LENGTH = 2 * SCALAR_LENGTH

Signer = Callable[[bytes], bytes]
"""A signing key: takes the message, returns ECDSA-SHA256 as r ‖ s (64 bytes)."""

PublicKeySource = ec.EllipticCurvePublicKey | x509.Certificate


def software_signer(key: ec.EllipticCurvePrivateKey) -> Signer:
    """A Signer over a private key held in memory (tests, the virtual eUICC)."""

    def sign(message: bytes) -> bytes:
        r, s = utils.decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(SCALAR_LENGTH, "big") + s.to_bytes(SCALAR_LENGTH, "big")

    return sign


def wrap(signature: bytes) -> bytes:
    """The '5F37' data object of a 64-byte r ‖ s."""
    if len(signature) != SIGNATURE_LENGTH:
        raise ValueError(f"an SGP.22 signature is {SIGNATURE_LENGTH} bytes (r ‖ s)")
    return SIGNATURE_TAG + bytes([SIGNATURE_LENGTH]) + signature


def unwrap(signature_tlv: bytes, name: str) -> bytes:
    """The r ‖ s inside a '5F37' data object; SignatureError(malformed) otherwise."""
    if (len(signature_tlv) != 3 + SIGNATURE_LENGTH or signature_tlv[:2] != SIGNATURE_TAG
            or signature_tlv[2] != SIGNATURE_LENGTH):
        raise SignatureError(name, "malformed",
                             "not a '5F37' data object holding a 64-byte r ‖ s")
    return signature_tlv[3:]


def sign(signer: Signer, message: bytes, name: str) -> bytes:
    """Sign `message`; returns the '5F37' data object."""
    signature = signer(message)
    if len(signature) != SIGNATURE_LENGTH:
        raise SignatureError(name, "malformed", f"the signer returned {len(signature)} bytes, "
                             f"not {SIGNATURE_LENGTH} (r ‖ s)")
    return wrap(signature)


def verify(public_key: PublicKeySource, message: bytes, signature_tlv: bytes, name: str) -> None:
    """Check a '5F37' signature over `message`; raises SignatureError naming `name`."""
    raw = unwrap(signature_tlv, name)
    key = public_key.public_key() if isinstance(public_key, x509.Certificate) else public_key
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureError(name, "malformed", "the signer's key is not an EC key")
    r = int.from_bytes(raw[:SCALAR_LENGTH], "big")
    s = int.from_bytes(raw[SCALAR_LENGTH:], "big")
    try:
        key.verify(utils.encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureError(name, "mismatch", "does not verify with the signer's "
                             "certificate") from None


# What each signature covers (SGP.22 §5.6, §5.7), given the received data objects.

def server_signature1_input(server_signed1: bytes) -> bytes:
    return server_signed1


def euicc_signature1_input(euicc_signed1: bytes) -> bytes:
    return euicc_signed1


def smdp_signature2_input(smdp_signed2: bytes, euicc_signature1_tlv: bytes) -> bytes:
    return smdp_signed2 + euicc_signature1_tlv


def euicc_signature2_input(euicc_signed2: bytes, smdp_signature2_tlv: bytes) -> bytes:
    return euicc_signed2 + smdp_signature2_tlv


def isc_signature_input(isc_data_objects: bytes, otpk_euicc: bytes) -> bytes:
    """BF23's 82 ‖ 80 ‖ A6 ‖ 5F49 data objects (as sent), then otPK.EUICC.ECKA as '5F49'."""
    if len(otpk_euicc) > 0x7F:
        raise ValueError("otPK.EUICC.ECKA is too long")
    return isc_data_objects + OTPK_TAG + bytes([len(otpk_euicc)]) + otpk_euicc


@dataclass(frozen=True)
class SignedObject:
    """A signed data object and its '5F37' signature, both exactly as received."""

    signed: bytes
    signature_tlv: bytes


def signed_pair(message: bytes, container: Tlv, name: str, index: int = 0) -> SignedObject:
    """Children `index` (the signed data object) and `index + 1` (its '5F37' signature) of
    `container` in `message`."""
    kids = children(message, container, name)
    if len(kids) < index + 2 or kids[index + 1].tag != SIGNATURE_TAG:
        raise SignatureError(name, "malformed", "no signed data object followed by '5F37'")
    return SignedObject(kids[index].raw(message), kids[index + 1].raw(message))


def authenticate_server_response_parts(message: bytes) -> SignedObject:
    """euiccSigned1 and euiccSignature1 of an AuthenticateServerResponse (BF38 A0 …)."""
    outer = read_tlv(message, where="AuthenticateServerResponse")
    ok = children(message, outer, "AuthenticateServerResponse")
    if outer.tag != b"\xbf\x38" or not ok or ok[0].tag != b"\xa0":
        raise SignatureError("euiccSignature1", "malformed",
                             "not an authenticateResponseOk (BF38 A0)")
    return signed_pair(message, ok[0], "euiccSignature1")


def prepare_download_response_parts(message: bytes) -> SignedObject:
    """euiccSigned2 and euiccSignature2 of a PrepareDownloadResponse (BF21 A0 …)."""
    outer = read_tlv(message, where="PrepareDownloadResponse")
    ok = children(message, outer, "PrepareDownloadResponse")
    if outer.tag != b"\xbf\x21" or not ok or ok[0].tag != b"\xa0":
        raise SignatureError("euiccSignature2", "malformed",
                             "not a downloadResponseOk (BF21 A0)")
    return signed_pair(message, ok[0], "euiccSignature2")


def profile_installation_result_parts(message: bytes) -> SignedObject:
    """profileInstallationResultData (BF27) and euiccSignPIR of a ProfileInstallationResult."""
    outer = read_tlv(message, where="ProfileInstallationResult")
    if outer.tag != b"\xbf\x37":
        raise SignatureError("euiccSignPIR", "malformed", "not a ProfileInstallationResult")
    return signed_pair(message, outer, "euiccSignPIR")
