"""GSM/UMTS conversion functions c2 and c3 (3GPP TS 33.102 §6.8.1.2): the SRES and Kc a USIM
answers in GSM context, derived from RES and CK/IK."""

from __future__ import annotations


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def c2_sres(res: bytes) -> bytes:
    """c2: SRES = XOR of the 4-byte words of RES (RES of 4..16 bytes, zero-padded)."""
    padded = res + b"\x00" * (-len(res) % 4)
    out = b"\x00" * 4
    for i in range(0, len(padded), 4):
        out = _xor(out, padded[i : i + 4])
    return out


def c3_kc(ck: bytes, ik: bytes) -> bytes:
    """c3: Kc = CK1 xor CK2 xor IK1 xor IK2 (64-bit halves)."""
    return _xor(_xor(ck[:8], ck[8:]), _xor(ik[:8], ik[8:]))
