"""The BPP's security: key agreement, key derivation and segment protection.

GSMA SGP.22 v2.x §2.6.4 (ECKA: the SM-DP+'s one-time key otSK.DP.ECKA with the eUICC's
otPK.EUICC.ECKA, BSI TR-03111 ECKA-DH, shared secret = the x-coordinate; both keys on the
session's curve, NIST P-256 or brainpoolP256r1 — the curve of CERT.DPpb, esim.sgp22.curves),
§2.6.5 / Annex G (the
KDF: ANSI X9.63 with SHA-256 over the shared secret, SharedInfo = keyType ‖ keyLength ‖
L(hostId) ‖ hostId ‖ L(EID) ‖ EID; 48 bytes = initial MAC chaining value ‖ S-ENC ‖ S-MAC) and
§2.6.6 (the BSP, GlobalPlatform Card Specification Amendment F "SCP03t"):

* encrypted segments: ICV = AES(S-ENC, block counter as 16 bytes big-endian); the payload is
  padded with '80' then '00's to a multiple of 16 (always: a full block when already aligned)
  and encrypted with AES-128-CBC;
* every segment carries a C-MAC: the first 8 bytes of AES-CMAC(S-MAC, MCV ‖ tag ‖ length ‖
  data), where the length counts the 8 MAC bytes; the full 16-byte CMAC is the next MCV;
* the block counter advances once per segment, MAC-only segments included (as the recorded
  reference session in tests/vectors/sgp22/download shows);
* ReplaceSessionKeys (§2.5.5, `BF26`) installs the Profile Protection Keys PPK-ENC / PPK-MAC
  and a new initial MCV for the segments that follow, and restarts the block counter.

`SegmentProtector` is the SM-DP+ side, `SegmentVerifier` the eUICC side; both are small state
machines over (keys, MCV, block counter). Segment size limits belong to the BPP (esim.sgp22.bpp).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from esim.sgp22.curves import check_curve
from esim.sgp22.errors import KeyAgreementError, SegmentError
from esim.sgp22.tlv import encode_length

KEY_TYPE_AES = 0x88  # GPC Card Specification Table 11-16
KEY_LENGTH = 16  # SGP.22: AES-128 session keys
MAC_LENGTH = 8
TAG_ENCRYPTED_87 = 0x87  # ConfigureISDP, ReplaceSessionKeys
TAG_MAC_ONLY_88 = 0x88  # StoreMetadata
TAG_PROFILE_86 = 0x86  # the profile package (LoadProfileElements)


@dataclass(frozen=True, repr=False)
class SessionKeys:
    """S-ENC, S-MAC and the initial MAC chaining value (never shown in a repr)."""

    s_enc: bytes
    s_mac: bytes
    initial_mcv: bytes

    def __post_init__(self) -> None:
        for name in ("s_enc", "s_mac", "initial_mcv"):
            if len(getattr(self, name)) != KEY_LENGTH:
                raise ValueError(f"{name} must be {KEY_LENGTH} bytes")

    def __repr__(self) -> str:
        return "SessionKeys(<secret>)"


def load_public_key(point: bytes, field: str,
                    curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePublicKey:
    """An X9.62 encoded point (otPK.EUICC.ECKA, otPK.DP.ECKA) on `curve` (default P-256; any
    curve but SGP.22's two is refused with UnsupportedCurveError naming `field`)."""
    curve = check_curve(curve or ec.SECP256R1(), field)
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except ValueError:
        raise KeyAgreementError(field, f"{len(point)} bytes are not a point on "
                                f"{curve.name}") from None


def ecka(private_key: ec.EllipticCurvePrivateKey, peer_public: bytes,
         field: str = "otPK.EUICC.ECKA") -> bytes:
    """ECKA-DH (BSI TR-03111 §4.3.1): the shared secret Z, the x-coordinate of d·Q. The peer's
    point must be on the private key's curve (the session's: SGP.22 §2.6.4)."""
    peer = load_public_key(peer_public, field, private_key.curve)
    return private_key.exchange(ec.ECDH(), peer)


def shared_info(host_id: bytes, eid: bytes, key_type: int = KEY_TYPE_AES,
                key_length: int = KEY_LENGTH) -> bytes:
    """SharedInfo of the KDF (SGP.22 Annex G): keyType ‖ keyLength ‖ L ‖ hostId ‖ L ‖ EID."""
    if not 1 <= len(host_id) <= 16:
        raise ValueError("hostId is 1 to 16 bytes (SGP.22 ControlRefTemplate)")
    if len(eid) != 16:
        raise ValueError("the EID is 16 bytes")
    return bytes([key_type, key_length, len(host_id)]) + host_id + bytes([len(eid)]) + eid


def derive_session_keys(shared_secret: bytes, host_id: bytes, eid: bytes,
                        key_type: int = KEY_TYPE_AES,
                        key_length: int = KEY_LENGTH) -> SessionKeys:
    """X9.63 KDF with SHA-256 (SGP.22 §2.6.5): initial MCV ‖ S-ENC ‖ S-MAC."""
    if key_type != KEY_TYPE_AES or key_length != KEY_LENGTH:
        raise ValueError("SGP.22 v2 session keys are AES-128 (keyType '88', keyLength '10')")
    out = X963KDF(algorithm=hashes.SHA256(), length=3 * key_length,
                  sharedinfo=shared_info(host_id, eid, key_type, key_length)).derive(shared_secret)
    return SessionKeys(initial_mcv=out[:16], s_enc=out[16:32], s_mac=out[32:48])


def _pad(data: bytes) -> bytes:
    # ISO/IEC 9797-1 padding method 2, applied even to a block-aligned payload.
    data = data + b"\x80"
    return data + bytes(-len(data) % 16)


def _aes_ecb(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def _cmac(key: bytes, data: bytes) -> bytes:
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


class _Channel:
    def __init__(self, keys: SessionKeys) -> None:
        self.replace_keys(keys)

    def replace_keys(self, keys: SessionKeys) -> None:
        """Switch to new keys (ReplaceSessionKeys): their MCV, block counter back to 0."""
        self._keys = keys
        self.mcv = keys.initial_mcv
        self.block_counter = 0

    def _icv(self) -> bytes:
        return _aes_ecb(self._keys.s_enc, self.block_counter.to_bytes(16, "big"))

    def _mac(self, header: bytes, data: bytes) -> bytes:
        full = _cmac(self._keys.s_mac, self.mcv + header + data)
        self.mcv = full
        return full[:MAC_LENGTH]


class SegmentProtector(_Channel):
    """The SM-DP+ side of the BSP: turns payloads into protected segments (TLVs)."""

    def __repr__(self) -> str:
        return f"SegmentProtector(block_counter={self.block_counter})"

    def encrypt_and_mac(self, tag: int, payload: bytes) -> bytes:
        """A '87' or '86' segment: tag ‖ L ‖ AES-CBC(payload ‖ padding) ‖ C-MAC."""
        self.block_counter += 1
        enc = Cipher(algorithms.AES(self._keys.s_enc), modes.CBC(self._icv())).encryptor()
        body = enc.update(_pad(payload)) + enc.finalize()
        header = bytes([tag]) + encode_length(len(body) + MAC_LENGTH)
        return header + body + self._mac(header, body)

    def mac_only(self, tag: int, payload: bytes) -> bytes:
        """An '88' segment: tag ‖ L ‖ payload ‖ C-MAC."""
        self.block_counter += 1
        header = bytes([tag]) + encode_length(len(payload) + MAC_LENGTH)
        return header + payload + self._mac(header, payload)


def split_tlv(segment: bytes, where: str) -> tuple[int, bytes, bytes]:
    """(tag, header, value) of one single-byte-tag TLV that must fill `segment` exactly."""
    if len(segment) < 2:
        raise SegmentError(where, "structure", "a segment is at least a tag and a length")
    first = segment[1]
    if first < 0x80:
        length, offset = first, 2
    else:
        n = first & 0x7F
        if n == 0 or n > 3 or len(segment) < 2 + n:
            raise SegmentError(where, "structure", "bad length field")
        length, offset = int.from_bytes(segment[2:2 + n], "big"), 2 + n
    if offset + length != len(segment):
        raise SegmentError(where, "structure",
                           f"length field says {length} bytes, {len(segment) - offset} follow")
    return segment[0], segment[:offset], segment[offset:]


class SegmentVerifier(_Channel):
    """The eUICC side of the BSP: checks each segment's C-MAC, then decrypts it."""

    def __repr__(self) -> str:
        return f"SegmentVerifier(block_counter={self.block_counter})"

    def _check(self, segment: bytes, tag: int, where: str) -> tuple[bytes, bytes]:
        got, header, value = split_tlv(segment, where)
        if got != tag:
            raise SegmentError(where, "structure", f"tag {got:02X} where {tag:02X} was expected")
        if len(value) < MAC_LENGTH:
            raise SegmentError(where, "structure", "shorter than its C-MAC")
        data, mac = value[:-MAC_LENGTH], value[-MAC_LENGTH:]
        full = _cmac(self._keys.s_mac, self.mcv + header + data)
        if not hmac.compare_digest(full[:MAC_LENGTH], mac):
            raise SegmentError(where, "security", "C-MAC does not verify")
        self.mcv = full
        self.block_counter += 1
        return header, data

    def decrypt_and_verify(self, tag: int, segment: bytes, where: str = "segment") -> bytes:
        """The payload of a '87' / '86' segment, after its C-MAC verified."""
        _, data = self._check(segment, tag, where)
        if not data or len(data) % 16:
            raise SegmentError(where, "structure", "ciphertext is not a whole number of blocks")
        dec = Cipher(algorithms.AES(self._keys.s_enc), modes.CBC(self._icv())).decryptor()
        padded = dec.update(data) + dec.finalize()
        end = padded.rstrip(b"\x00")
        if not end.endswith(b"\x80") or len(padded) - len(end) >= 16:
            raise SegmentError(where, "structure", "bad padding after decryption")
        return end[:-1]

    def verify_mac_only(self, tag: int, segment: bytes, where: str = "segment") -> bytes:
        """The payload of a '88' segment, after its C-MAC verified."""
        return self._check(segment, tag, where)[1]
