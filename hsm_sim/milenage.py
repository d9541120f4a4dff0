"""Milenage: the 3GPP authentication and key generation functions f1, f1*, f2, f3, f4, f5, f5*.

3GPP TS 35.206 (Milenage algorithm specification) §4.1 (OPc) and §4.1 figure 2 (the functions);
authentication vectors, AUTN and AUTS resynchronisation per 3GPP TS 33.102 §6.3.2, §6.3.3, §6.3.5.
Test data: TS 35.207 (implementors') and TS 35.208 (conformance) — tests/vectors/milenage/.

The kernel E_K is AES-128. One ECB encryptor is created per subscriber key and reused; the four
(or five) output blocks OUT1..OUT5 are encrypted in one call after TEMP; XOR and rotation work on
Python integers. Keys are `bytes` here; this module never logs or formats them.

Creating that encryptor is most of a vector's cost when every vector has its own subscriber:
`_ecb_encryptor` asks `cryptography`'s Rust layer for the context directly (the call its public
`Cipher(...).encryptor()` ends in, without the Python wrappers around it: ~40 % of a vector),
checked at import against the public API, which it falls back to if the call is missing or
answers differently.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hsm_sim.errors import AuthenticationFailure, BadLength

__all__ = [
    "STANDARD",
    "AuthVector",
    "Constants",
    "Kernel",
    "Milenage",
    "derive_opc",
    "sqn_after_resync",
    "vector",
    "vector_on",
]

_MASK = (1 << 128) - 1
_SQN_MAX = (1 << 48) - 1
_AMF_RESYNC = b"\x00\x00"  # TS 33.102 §6.3.3: dummy AMF* used in MAC-S


@dataclass(frozen=True)
class Constants:
    """Operator-configurable constants c1..c5 (128-bit) and r1..r5 (0..127), TS 35.206 §4.1."""

    c: tuple[int, int, int, int, int] = (0, 1, 2, 4, 8)
    r: tuple[int, int, int, int, int] = (64, 0, 32, 64, 96)

    def __post_init__(self) -> None:
        if len(self.c) != 5 or len(self.r) != 5:
            raise BadLength("Milenage needs exactly five c constants and five r constants")
        if any(not 0 <= c <= _MASK for c in self.c):
            raise BadLength("each Milenage constant c1..c5 must fit in 128 bits")
        if any(not 0 <= r < 128 for r in self.r):
            raise BadLength("each Milenage rotation r1..r5 must be in 0..127")


STANDARD = Constants()


class Kernel(Protocol):
    """The block cipher E_K: AES-128-ECB over whole 16-byte blocks (TS 35.206 §2, kernel)."""

    def update(self, data: bytes) -> bytes: ...


class AuthVector(NamedTuple):
    """A UMTS authentication vector (TS 33.102 §6.3.2): RAND, XRES, CK, IK, AUTN."""

    rand: bytes
    xres: bytes
    ck: bytes
    ik: bytes
    autn: bytes


def _rot(x: int, r: int) -> int:
    # TS 35.206 §4.1: rot(x, r) cyclically rotates x by r bit positions towards the most
    # significant bit.
    return ((x << r) | (x >> (128 - r))) & _MASK if r else x


def _check(name: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise BadLength(f"{name} must be {size} bytes, got {len(value)}")


_ECB = modes.ECB()


def _public_encryptor(k: bytes) -> Kernel:
    return Cipher(algorithms.AES(k), _ECB).encryptor()


def _fast_encryptor_factory() -> Callable[[bytes], Kernel]:
    """The public API unless cryptography's Rust context constructor exists and agrees with it
    (FIPS-197 appendix C.1 example vector and a second key, two calls on one context)."""
    try:
        from cryptography.hazmat.bindings._rust import openssl as rust_openssl

        create = rust_openssl.ciphers.create_encryption_ctx
        aes = algorithms.AES

        def fast(k: bytes) -> Kernel:
            return create(aes(k), _ECB)

        for k in (bytes(range(16)), bytes(range(255, 239, -1))):
            pt = bytes.fromhex("00112233445566778899aabbccddeeff")
            a, b = fast(k), _public_encryptor(k)
            if (a.update(pt), a.update(pt * 4)) != (b.update(pt), b.update(pt * 4)):
                return _public_encryptor
        if fast(bytes(range(16))).update(bytes.fromhex("00112233445566778899aabbccddeeff")) \
                != bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a"):
            return _public_encryptor
        return fast
    except Exception:  # any surprise in a private API: the public one
        return _public_encryptor


_ecb_encryptor = _fast_encryptor_factory()


def _encryptor(k: bytes) -> Kernel:
    _check("K", k, 16)
    return _ecb_encryptor(k)


def derive_opc(k: bytes, op: bytes) -> bytes:
    """OPc = OP xor E_K(OP) (TS 35.206 §4.1)."""
    _check("OP", op, 16)
    e = _encryptor(k).update(op)
    return (int.from_bytes(e, "big") ^ int.from_bytes(op, "big")).to_bytes(16, "big")


_REP4 = (1 << 384) | (1 << 256) | (1 << 128) | 1


def vector(k: bytes, opc: bytes, rand: bytes, sqn: int, amf: bytes) -> AuthVector:
    """One authentication vector with the standard constants and no per-subscriber object.

    The hot path for distinct subscribers: TEMP, then OUT1..OUT4 in one ECB call, with c1..c4
    and r1..r4 of TS 35.206 §4.1 folded in. Equal to `Milenage(k, opc).vector(...)` (tested).
    """
    if len(k) != 16:
        _check("K", k, 16)
    return vector_on(_ecb_encryptor(k), opc, rand, sqn, amf)


def vector_on(kernel: Kernel, opc: bytes, rand: bytes, sqn: int, amf: bytes) -> AuthVector:
    """`vector()` over a given E_K (an encryptor, or C_Encrypt in a PKCS#11 token): two kernel
    calls, TEMP then OUT1..OUT4 as one 64-byte call."""
    if len(opc) != 16 or len(rand) != 16 or len(amf) != 2:
        for name, value, size in (("OPc", opc, 16), ("RAND", rand, 16), ("AMF", amf, 2)):
            _check(name, value, size)
    if not 0 <= sqn <= _SQN_MAX:
        raise BadLength("SQN must fit in 48 bits")
    fb = int.from_bytes
    enc = kernel
    o = fb(opc, "big")
    t = fb(enc.update((fb(rand, "big") ^ o).to_bytes(16, "big")), "big")
    s = sqn.to_bytes(6, "big")
    in1 = fb(s + amf + s + amf, "big") ^ o
    x = t ^ o
    blk = (
        ((t ^ (((in1 << 64) | (in1 >> 64)) & _MASK)) << 384)  # r1 = 64, c1 = 0
        | ((x ^ 1) << 256)  # r2 = 0, c2 = 1
        | (((((x << 32) | (x >> 96)) & _MASK) ^ 2) << 128)  # r3 = 32, c3 = 2
        | ((((x << 64) | (x >> 64)) & _MASK) ^ 4)  # r4 = 64, c4 = 4
    )
    ob = (fb(enc.update(blk.to_bytes(64, "big")), "big") ^ (o * _REP4)).to_bytes(64, "big")
    autn = (sqn ^ fb(ob[16:22], "big")).to_bytes(6, "big") + amf + ob[0:8]
    return AuthVector(rand, ob[24:32], ob[32:48], ob[48:64], autn)


def sqn_after_resync(sqn_ms: int, ind_bits: int = 5, ind: int = 0) -> int:
    """Next SQN_HE after a resynchronisation: SEQ_MS + 1 with the given IND (TS 33.102 C.3.4)."""
    if not 0 <= sqn_ms <= _SQN_MAX:
        raise BadLength("SQN_MS must fit in 48 bits")
    if not 0 <= ind < (1 << ind_bits):
        raise BadLength(f"IND must fit in {ind_bits} bits")
    return ((((sqn_ms >> ind_bits) + 1) << ind_bits) | ind) & _SQN_MAX


class Milenage:
    """Milenage bound to one subscriber (K, OPc): the AES key schedule is built once.

    The instance holds key material; its repr shows none of it.
    """

    __slots__ = ("_c", "_enc", "_opc", "_opc4", "_r")

    def __init__(self, k: bytes, opc: bytes, constants: Constants = STANDARD) -> None:
        _check("OPc", opc, 16)
        self._enc = _encryptor(k)
        self._opc = int.from_bytes(opc, "big")
        self._opc4 = self._opc * ((1 << 384) | (1 << 256) | (1 << 128) | 1)
        self._c = constants.c
        self._r = constants.r

    @classmethod
    def from_op(cls, k: bytes, op: bytes, constants: Constants = STANDARD) -> Milenage:
        return cls(k, derive_opc(k, op), constants)

    @classmethod
    def with_kernel(cls, kernel: Kernel, opc: bytes, constants: Constants = STANDARD) -> Milenage:
        """Milenage over an external E_K, e.g. C_Encrypt (CKM_AES_ECB) inside a PKCS#11 token."""
        _check("OPc", opc, 16)
        self = cls.__new__(cls)
        self._enc = kernel
        self._opc = int.from_bytes(opc, "big")
        self._opc4 = self._opc * ((1 << 384) | (1 << 256) | (1 << 128) | 1)
        self._c, self._r = constants.c, constants.r
        return self

    def __repr__(self) -> str:
        return "Milenage(<key material hidden>)"

    def _temp(self, rand: bytes) -> int:
        _check("RAND", rand, 16)
        x = int.from_bytes(rand, "big") ^ self._opc
        return int.from_bytes(self._enc.update(x.to_bytes(16, "big")), "big")

    def _out1(self, temp: int, sqn: bytes, amf: bytes) -> int:
        _check("SQN", sqn, 6)
        _check("AMF", amf, 2)
        in1 = int.from_bytes(sqn + amf + sqn + amf, "big")
        c, r, o = self._c, self._r, self._opc
        blk = temp ^ _rot(in1 ^ o, r[0]) ^ c[0]
        return int.from_bytes(self._enc.update(blk.to_bytes(16, "big")), "big") ^ o

    def _outs(self, temp: int, first: int, last: int) -> bytes:
        # OUTi = E_K(rot(TEMP xor OPc, ri) xor ci) xor OPc for i in first..last, one ECB call.
        x = temp ^ self._opc
        c, r = self._c, self._r
        blk = 0
        for i in range(first - 1, last):
            blk = (blk << 128) | (_rot(x, r[i]) ^ c[i])
        n = last - first + 1
        out = int.from_bytes(self._enc.update(blk.to_bytes(16 * n, "big")), "big")
        return (out ^ (self._opc4 >> (128 * (4 - n)))).to_bytes(16 * n, "big")

    # --- the functions of TS 35.206 ---------------------------------------------------------

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-A = OUT1[0..63]."""
        return (self._out1(self._temp(rand), sqn, amf) >> 64).to_bytes(8, "big")

    def f1star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-S = OUT1[64..127]."""
        return (self._out1(self._temp(rand), sqn, amf) & ((1 << 64) - 1)).to_bytes(8, "big")

    def f2345(self, rand: bytes) -> tuple[bytes, bytes, bytes, bytes]:
        """(RES, CK, IK, AK): RES = OUT2[64..127], AK = OUT2[0..47], CK = OUT3, IK = OUT4."""
        out = self._outs(self._temp(rand), 2, 4)
        return out[8:16], out[16:32], out[32:48], out[0:6]

    def f5star(self, rand: bytes) -> bytes:
        """AK* = OUT5[0..47]."""
        return self._outs(self._temp(rand), 5, 5)[0:6]

    def all_functions(self, rand: bytes, sqn: bytes, amf: bytes) -> dict[str, bytes]:
        """Every output at once (calculators, tests): f1, f1*, f2, f3, f4, f5, f5*."""
        temp = self._temp(rand)
        out1 = self._out1(temp, sqn, amf).to_bytes(16, "big")
        out = self._outs(temp, 2, 5)
        return {
            "f1": out1[:8],
            "f1star": out1[8:],
            "f2": out[8:16],
            "f3": out[16:32],
            "f4": out[32:48],
            "f5": out[0:6],
            "f5star": out[48:54],
        }

    # --- TS 33.102 procedures ----------------------------------------------------------------

    def vector(self, rand: bytes, sqn: int, amf: bytes) -> AuthVector:
        """One authentication vector; AUTN = (SQN xor AK) || AMF || MAC-A (TS 33.102 §6.3.2)."""
        if not 0 <= sqn <= _SQN_MAX:
            raise BadLength("SQN must fit in 48 bits")
        _check("AMF", amf, 2)
        temp = self._temp(rand)
        x = temp ^ self._opc
        c, r, o = self._c, self._r, self._opc
        s = sqn.to_bytes(6, "big")
        in1 = int.from_bytes(s + amf + s + amf, "big")
        blk = (
            ((temp ^ _rot(in1 ^ o, r[0]) ^ c[0]) << 384)
            | ((_rot(x, r[1]) ^ c[1]) << 256)
            | ((_rot(x, r[2]) ^ c[2]) << 128)
            | (_rot(x, r[3]) ^ c[3])
        )
        out = (int.from_bytes(self._enc.update(blk.to_bytes(64, "big")), "big") ^ self._opc4)
        ob = out.to_bytes(64, "big")
        ak = int.from_bytes(ob[16:22], "big")
        autn = (sqn ^ ak).to_bytes(6, "big") + amf + ob[0:8]
        return AuthVector(rand, ob[24:32], ob[32:48], ob[48:64], autn)

    def auts(self, rand: bytes, sqn_ms: int) -> bytes:
        """AUTS = (SQN_MS xor AK*) || MAC-S, MAC-S = f1*(SQN_MS||RAND||AMF*), TS 33.102 §6.3.3."""
        if not 0 <= sqn_ms <= _SQN_MAX:
            raise BadLength("SQN_MS must fit in 48 bits")
        s = sqn_ms.to_bytes(6, "big")
        temp = self._temp(rand)
        mac_s = (self._out1(temp, s, _AMF_RESYNC) & ((1 << 64) - 1)).to_bytes(8, "big")
        ak_star = int.from_bytes(self._outs(temp, 5, 5)[0:6], "big")
        return (sqn_ms ^ ak_star).to_bytes(6, "big") + mac_s

    def resync(self, rand: bytes, auts: bytes) -> int:
        """Recover SQN_MS from AUTS and verify MAC-S (TS 33.102 §6.3.5); raises on a bad MAC-S."""
        _check("AUTS", auts, 14)
        temp = self._temp(rand)
        ak_star = int.from_bytes(self._outs(temp, 5, 5)[0:6], "big")
        sqn_ms = int.from_bytes(auts[:6], "big") ^ ak_star
        mac_s = (self._out1(temp, sqn_ms.to_bytes(6, "big"), _AMF_RESYNC) & ((1 << 64) - 1))
        if not hmac.compare_digest(mac_s.to_bytes(8, "big"), auts[6:]):
            raise AuthenticationFailure("AUTS: MAC-S does not verify")
        return sqn_ms

    def check_autn(self, rand: bytes, autn: bytes) -> tuple[int, bytes, bytes, bytes]:
        """USIM side (TS 33.102 §6.3.3): verify MAC-A in AUTN; return (SQN, RES, CK, IK)."""
        _check("AUTN", autn, 16)
        temp = self._temp(rand)
        out = self._outs(temp, 2, 4)
        sqn = bytes(a ^ b for a, b in zip(autn[:6], out[0:6], strict=True))
        mac_a = (self._out1(temp, sqn, autn[6:8]) >> 64).to_bytes(8, "big")
        if not hmac.compare_digest(mac_a, autn[8:]):
            raise AuthenticationFailure("AUTN: MAC-A does not verify")
        return int.from_bytes(sqn, "big"), out[8:16], out[16:32], out[32:48]
