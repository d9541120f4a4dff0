"""GSM interworking: SRES and Kc from a UMTS vector, and back (3GPP TS 33.102 §6.8.1.2).

c2: SRES = XRES*1 xor XRES*2 xor XRES*3 xor XRES*4, XRES padded with zeros to 128 bits and cut
into 32-bit words. c3: Kc = CK1 xor CK2 xor IK1 xor IK2 (64-bit halves). c4 / c5 give CK / IK from
Kc for a GSM subscriber on UTRAN. Test data: 3GPP TS 55.205 — tests/vectors/milenage/.
"""

from __future__ import annotations

from typing import NamedTuple

from hsm_sim.errors import BadLength

__all__ = ["GsmTriplet", "c2", "c3", "c4", "c5", "triplet_from_vector"]


class GsmTriplet(NamedTuple):
    """A GSM authentication triplet: RAND, SRES, Kc."""

    rand: bytes
    sres: bytes
    kc: bytes


def c2(xres: bytes) -> bytes:
    """SRES (32 bits) from XRES (4..16 bytes)."""
    if not 4 <= len(xres) <= 16:
        raise BadLength(f"XRES must be 4 to 16 bytes, got {len(xres)}")
    x = int.from_bytes(xres.ljust(16, b"\x00"), "big")
    m = 0xFFFFFFFF
    return (((x >> 96) ^ (x >> 64) ^ (x >> 32) ^ x) & m).to_bytes(4, "big")


def c3(ck: bytes, ik: bytes) -> bytes:
    """Kc (64 bits) from CK and IK (16 bytes each)."""
    if len(ck) != 16 or len(ik) != 16:
        raise BadLength("CK and IK must be 16 bytes each")
    c, i = int.from_bytes(ck, "big"), int.from_bytes(ik, "big")
    m = (1 << 64) - 1
    return (((c >> 64) ^ c ^ (i >> 64) ^ i) & m).to_bytes(8, "big")


def c4(kc: bytes) -> bytes:
    """CK = Kc || Kc."""
    if len(kc) != 8:
        raise BadLength(f"Kc must be 8 bytes, got {len(kc)}")
    return kc + kc


def c5(kc: bytes) -> bytes:
    """IK = (Kc1 xor Kc2) || Kc || (Kc1 xor Kc2), Kc1/Kc2 the 32-bit halves of Kc."""
    if len(kc) != 8:
        raise BadLength(f"Kc must be 8 bytes, got {len(kc)}")
    x = bytes(a ^ b for a, b in zip(kc[:4], kc[4:], strict=True))
    return x + kc + x


def triplet_from_vector(rand: bytes, xres: bytes, ck: bytes, ik: bytes) -> GsmTriplet:
    """The GSM triplet a 2G-only peer needs, derived from a UMTS quintet."""
    return GsmTriplet(rand, c2(xres), c3(ck, ik))
