"""ECIES protection schemes of the SUCI: 3GPP TS 33.501 V17.12.0 §6.12.2 and Annex C.3.

Annex C.3.2 (UE side, "conceal") and C.3.3 (home network side, "de-conceal"), with the two
profiles of C.3.4 (table C.1-1 gives the protection scheme identifiers):

- Profile A (0x1, C.3.4.1): X25519 (RFC 7748), ANSI X9.63 KDF with SHA-256, AES-128 in CTR mode,
  HMAC-SHA-256 truncated to 8 octets; the ephemeral public key is 32 octets.
- Profile B (0x2, C.3.4.2): ECDH on secp256r1 with the same KDF, cipher and MAC; the ephemeral
  public key is a compressed point (33 octets, SEC 1 §2.3.3).

For both, with Z the shared secret and R the ephemeral public key as it appears in the scheme
output (SEC 1 §5.1.3 with SharedInfo1 = R):

    K = X9.63-KDF-SHA-256(Z, SharedInfo1 = R, 64 octets)
    EncK = K[0:16], ICB = K[16:32], MacK = K[32:64]
    C = AES-128-CTR(EncK, ICB, plaintext); T = HMAC-SHA-256(MacK, C)[0:8]
    scheme output = R || C || T

The MAC is checked before anything is deciphered, in constant time, and a failure gives no
plaintext (MacFailure). Everything here takes and returns bytes; the SUCI framing around the
scheme output (TS 23.003 §2.2B, TS 24.501 §9.11.3.4) is simcore.suci's. `cryptography` does the
arithmetic; only the profile's glue is written here.
"""

from __future__ import annotations

import hmac as _hmac
from collections.abc import Callable
from enum import IntEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as c_hmac
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from hsm_sim.errors import AuthenticationFailure, BadLength, HsmError

__all__ = [
    "MAC_LENGTH",
    "EciesError",
    "HomeNetworkPrivateKey",
    "MacFailure",
    "MalformedSchemeOutput",
    "ProtectionScheme",
    "conceal",
    "deconceal",
    "ephemeral_key_length",
    "open_scheme_output",
    "public_key_of",
]

MAC_LENGTH = 8  # C.3.4.1/C.3.4.2: MAC tag length 64 bits
_ENC_KEY, _ICB, _MAC_KEY = 16, 16, 32  # enckeylen, icblen, mackeylen (C.3.4)
_P256 = ec.SECP256R1()


class ProtectionScheme(IntEnum):
    """Protection scheme identifiers, TS 33.501 Annex C.1 table C.1-1 (4 bits in the SUCI)."""

    NULL = 0x0
    PROFILE_A = 0x1
    PROFILE_B = 0x2

    @property
    def label(self) -> str:
        return {0: "null-scheme", 1: "Profile A", 2: "Profile B"}[self.value]


class EciesError(HsmError):
    """A scheme output or a home-network key that the ECIES profile does not accept."""


class MalformedSchemeOutput(EciesError, ValueError):
    """A scheme output of the wrong length or with an ephemeral key that is not a valid point."""


class MacFailure(EciesError, AuthenticationFailure):
    """The scheme output's MAC tag does not verify (C.3.3 step "MAC verification")."""


def ephemeral_key_length(scheme: ProtectionScheme) -> int:
    """The length of the ephemeral public key at the start of a scheme output."""
    if scheme is ProtectionScheme.PROFILE_A:
        return 32
    if scheme is ProtectionScheme.PROFILE_B:
        return 33  # compressed point (C.3.4.2 "point compression": UE shall use it)
    raise EciesError(f"{ProtectionScheme(scheme).label} is not an ECIES profile")


# --- keys ---------------------------------------------------------------------------------------

class HomeNetworkPrivateKey:
    """A home-network private key loaded for de-concealment. It lives inside the HSM boundary
    only (hsm_sim backends hold it; callers hold a KeyRef); repr never shows the key."""

    __slots__ = ("_key", "scheme")

    def __init__(self, scheme: ProtectionScheme, private: bytes) -> None:
        self.scheme = ProtectionScheme(scheme)
        if len(private) != 32:
            raise BadLength(f"a {self.scheme.label} home-network private key is 32 octets, "
                            f"not {len(private)}")
        self._key: x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey
        if self.scheme is ProtectionScheme.PROFILE_A:
            self._key = x25519.X25519PrivateKey.from_private_bytes(private)
        elif self.scheme is ProtectionScheme.PROFILE_B:
            try:
                self._key = ec.derive_private_key(int.from_bytes(private, "big"), _P256)
            except ValueError:
                raise EciesError("a Profile B home-network private key must lie in "
                                 "[1, n-1] of secp256r1") from None
        else:
            raise EciesError(f"{self.scheme.label} has no home-network key")

    def __repr__(self) -> str:
        return f"HomeNetworkPrivateKey({self.scheme.label}, <hidden>)"

    @classmethod
    def generate(cls, scheme: ProtectionScheme) -> HomeNetworkPrivateKey:
        """A fresh key pair of the profile (the library's CSPRNG)."""
        self = object.__new__(cls)
        self.scheme = ProtectionScheme(scheme)
        if self.scheme is ProtectionScheme.PROFILE_A:
            self._key = x25519.X25519PrivateKey.generate()
        elif self.scheme is ProtectionScheme.PROFILE_B:
            self._key = ec.generate_private_key(_P256)
        else:
            raise EciesError(f"{self.scheme.label} has no home-network key")
        return self

    def private_bytes(self) -> bytes:
        """The 32-octet private key: for wrapping inside the HSM and audited exports only."""
        if isinstance(self._key, x25519.X25519PrivateKey):
            return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return self._key.private_numbers().private_value.to_bytes(32, "big")

    def public_bytes(self, *, compressed: bool = True) -> bytes:
        """The public key as the card and the UE take it: 32 octets (A); a compressed point of
        33 octets (B), or 65 uncompressed octets when asked."""
        pub = self._key.public_key()
        if isinstance(pub, x25519.X25519PublicKey):
            return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)
        fmt = PublicFormat.CompressedPoint if compressed else PublicFormat.UncompressedPoint
        return pub.public_bytes(Encoding.X962, fmt)

    def _exchange(self, peer: bytes) -> bytes:
        """Z with a peer public key (ValueError for one the profile does not take)."""
        if isinstance(self._key, x25519.X25519PrivateKey):
            return self._key.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
        if peer[:1] not in (b"\x02", b"\x03"):
            raise ValueError("not a compressed point")
        point = ec.EllipticCurvePublicKey.from_encoded_point(_P256, peer)
        return self._key.exchange(ec.ECDH(), point)

    def shared_secret(self, ephemeral: bytes) -> bytes:
        """Z of C.3.3 from the ephemeral public key R of a scheme output."""
        try:
            return self._exchange(ephemeral)
        except ValueError:
            raise MalformedSchemeOutput(
                f"{self.scheme.label}: the ephemeral public key (octets 0-{len(ephemeral) - 1} "
                "of the scheme output) is not a valid "
                + ("X25519 public key (low-order point)" if self.scheme is
                   ProtectionScheme.PROFILE_A else "compressed secp256r1 point")) from None

    def deconceal(self, scheme_output: bytes) -> bytes:
        """The scheme input (plaintext) of a scheme output made with this key's public key."""
        return deconceal(self, scheme_output)


def public_key_of(scheme: ProtectionScheme, public: bytes) -> bytes:
    """`public` checked for the profile and normalised to the form a SUCI_Calc_Info carries
    (32 octets for A; the compressed point for B, from either SEC 1 form)."""
    scheme = ProtectionScheme(scheme)
    if scheme is ProtectionScheme.PROFILE_A:
        if len(public) != 32:
            raise BadLength(f"a Profile A home-network public key is 32 octets, not {len(public)}")
        return public
    if scheme is ProtectionScheme.PROFILE_B:
        if not ((len(public) == 33 and public[0] in (2, 3)) or (len(public) == 65
                                                               and public[0] == 4)):
            raise BadLength("a Profile B home-network public key is a compressed (33 octets, "
                            "02/03) or uncompressed (65 octets, 04) secp256r1 point")
        try:
            point = ec.EllipticCurvePublicKey.from_encoded_point(_P256, public)
        except ValueError:
            raise EciesError("the Profile B home-network public key is not on secp256r1") from None
        return point.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    raise EciesError(f"{scheme.label} has no home-network key")


# --- the scheme ---------------------------------------------------------------------------------

def _keys(shared: bytes, ephemeral: bytes) -> tuple[bytes, bytes, bytes]:
    k = X963KDF(hashes.SHA256(), _ENC_KEY + _ICB + _MAC_KEY, ephemeral).derive(shared)
    return k[:16], k[16:32], k[32:]


def _ctr(enc_key: bytes, icb: bytes, data: bytes) -> bytes:
    return Cipher(algorithms.AES(enc_key), modes.CTR(icb)).encryptor().update(data)


def _tag(mac_key: bytes, ciphertext: bytes) -> bytes:
    h = c_hmac.HMAC(mac_key, hashes.SHA256())
    h.update(ciphertext)
    return h.finalize()[:MAC_LENGTH]


def conceal(
    scheme: ProtectionScheme, hn_public: bytes, plaintext: bytes,
    *, ephemeral_private: bytes | None = None,
) -> bytes:
    """The scheme output of `plaintext` for the home-network public key (C.3.2, the UE side).

    `ephemeral_private` fixes the ephemeral key (the Annex C.4 vectors); left out, a fresh one is
    drawn, as a UE must for every SUCI."""
    scheme = ProtectionScheme(scheme)
    if not plaintext:
        raise BadLength("the scheme input is empty")
    if scheme is ProtectionScheme.NULL:
        return plaintext  # C.2: the null-scheme output is its input
    if ephemeral_private is None:
        eph = HomeNetworkPrivateKey.generate(scheme)
    else:
        eph = HomeNetworkPrivateKey(scheme, ephemeral_private)
    r = eph.public_bytes()
    peer = public_key_of(scheme, hn_public)  # BadLength/EciesError for a malformed key
    try:
        z = eph._exchange(peer)
    except ValueError:
        raise EciesError(f"the {scheme.label} home-network public key is a low-order point") \
            from None
    enc_key, icb, mac_key = _keys(z, r)
    c = _ctr(enc_key, icb, plaintext)
    return r + c + _tag(mac_key, c)


def deconceal(key: HomeNetworkPrivateKey, scheme_output: bytes) -> bytes:
    """The scheme input of `scheme_output` (C.3.3, the home network side): MalformedSchemeOutput
    for a wrong length or ephemeral key, MacFailure when the tag does not verify; never a partial
    result."""
    return open_scheme_output(key.scheme, key.shared_secret, scheme_output)


def open_scheme_output(
    scheme: ProtectionScheme, shared_secret: Callable[[bytes], bytes], scheme_output: bytes,
) -> bytes:
    """`deconceal` with Z computed by `shared_secret(R)`: for a backend whose key agreement runs
    elsewhere (a PKCS#11 token)."""
    n = ephemeral_key_length(scheme)
    if len(scheme_output) < n + 1 + MAC_LENGTH:
        raise MalformedSchemeOutput(
            f"a {scheme.label} scheme output is the {n}-octet ephemeral public key, at least "
            f"1 octet of ciphertext and the {MAC_LENGTH}-octet MAC tag: {len(scheme_output)} "
            f"octets is too short")
    r, c, t = scheme_output[:n], scheme_output[n:-MAC_LENGTH], scheme_output[-MAC_LENGTH:]
    enc_key, icb, mac_key = _keys(shared_secret(r), r)
    if not _hmac.compare_digest(_tag(mac_key, c), t):
        raise MacFailure(f"{scheme.label}: the MAC tag (last {MAC_LENGTH} octets of the "
                         "scheme output) does not verify: wrong home-network key or altered SUCI")
    return _ctr(enc_key, icb, c)
