"""The virtual card's own Milenage (3GPP TS 35.206 V17 §4.1, functions f1, f1*, f2-f5, f5*)
re-exporting the GSM conversion functions c2/c3 (TS 33.102 §6.8.1.2).

A physical card carries its own implementation; so does this one. Built on AES-128 from
`cryptography`. Constants r1..r5 / c1..c5 are the defaults of TS 35.206 §4.1.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cards.conversion import c2_sres, c3_kc

__all__ = ["Milenage", "c2_sres", "c3_kc", "opc_from_op"]

_R = (64, 0, 32, 64, 96)
_C = tuple(((i and 1 << (i - 1)) or 0).to_bytes(16, "big") for i in range(5))  # 0,1,2,4,8


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _rot(x: bytes, r: int) -> bytes:
    n = r // 8
    return x[n:] + x[:n]


class Milenage:
    """Milenage for one subscriber key K and operator variant OPc (both 16 bytes)."""

    def __init__(self, k: bytes, opc: bytes) -> None:
        if len(k) != 16 or len(opc) != 16:
            raise ValueError("K and OPc are 16 bytes each")
        self._enc = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
        self._opc = opc

    def __repr__(self) -> str:
        return "Milenage(<keys hidden>)"

    def _e(self, block: bytes) -> bytes:
        return self._enc.update(block)

    def _out(self, temp: bytes, i: int) -> bytes:
        return _xor(self._e(_xor(_rot(_xor(temp, self._opc), _R[i]), _C[i])), self._opc)

    def _temp(self, rand: bytes) -> bytes:
        return self._e(_xor(rand, self._opc))

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> tuple[bytes, bytes]:
        """(MAC-A, MAC-S) for SQN (6 bytes) and AMF (2 bytes)."""
        temp = self._temp(rand)
        in1 = sqn + amf + sqn + amf
        out1 = _xor(self._e(_xor(temp, _rot(_xor(in1, self._opc), _R[0]))), self._opc)
        return out1[:8], out1[8:]

    def f2345(self, rand: bytes) -> tuple[bytes, bytes, bytes, bytes, bytes]:
        """(RES, CK, IK, AK, AK*) for RAND."""
        temp = self._temp(rand)
        out2 = self._out(temp, 1)
        return out2[8:], self._out(temp, 2), self._out(temp, 3), out2[:6], self._out(temp, 4)[:6]


def opc_from_op(k: bytes, op: bytes) -> bytes:
    """OPc = E_K(OP) xor OP (TS 35.206 §4.1)."""
    enc = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
    return _xor(enc.update(op), op)
