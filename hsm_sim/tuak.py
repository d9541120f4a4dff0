"""TUAK: the second 3GPP authentication algorithm set, built on Keccak-f[1600].

3GPP TS 35.231 (TUAK algorithm specification) §6: TOPc, f1, f1*, f2, f3, f4, f5, f5*, with 128- or
256-bit K, MAC of 64/128/256 bits, RES of 32/64/128/256, CK and IK of 128/256, and a configurable
number of Keccak iterations. Test data: TS 35.233 — tests/vectors/tuak/.

Keccak-f[1600] is FIPS 202 §3 (hashlib does not expose the bare permutation), written here on 25
integer lanes. The 200-byte state follows TS 35.231's bit numbering: each input field enters
byte-reversed (IN's least significant byte first) and each output leaves byte-reversed.
"""

from __future__ import annotations

import hmac
from typing import NamedTuple

from hsm_sim.errors import AuthenticationFailure, BadLength

__all__ = ["Tuak", "TuakVector", "derive_topc", "keccak_f1600"]

_M64 = (1 << 64) - 1
_ALGONAME = b"TUAK1.0"
_SQN_MAX = (1 << 48) - 1


def _round_constants() -> tuple[int, ...]:
    # FIPS 202 §3.2.5, Algorithm 5 (rc) — generated rather than transcribed.
    r = 1
    bits = []
    for _ in range(7 * 24):
        bits.append(r & 1)
        r <<= 1
        if r & 0x100:
            r ^= 0x171
    out = []
    for i in range(24):
        rc = 0
        for j in range(7):
            if bits[7 * i + j]:
                rc |= 1 << ((1 << j) - 1)
        out.append(rc)
    return tuple(out)


def _rho_pi() -> tuple[tuple[int, int, int], ...]:
    # FIPS 202 §3.2.2 (rho offsets) and §3.2.3 (pi): lane (x, y) moves to (y, 2x + 3y).
    offsets = [0] * 25
    x, y = 1, 0
    for t in range(24):
        offsets[x + 5 * y] = ((t + 1) * (t + 2) // 2) % 64
        x, y = y, (2 * x + 3 * y) % 5
    moves = []
    for x in range(5):
        for y in range(5):
            moves.append((x + 5 * y, y + 5 * ((2 * x + 3 * y) % 5), offsets[x + 5 * y]))
    return tuple(moves)


_RC = _round_constants()
_RHO_PI = _rho_pi()


def keccak_f1600(state: bytes) -> bytes:
    """One Keccak-f[1600] permutation of a 200-byte state (lanes little-endian, FIPS 202 §3.1)."""
    if len(state) != 200:
        raise BadLength(f"the Keccak state is 200 bytes, got {len(state)}")
    a = [int.from_bytes(state[8 * i : 8 * i + 8], "little") for i in range(25)]
    b = [0] * 25
    for rc in _RC:
        c = [a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] for x in range(5)]
        for x in range(5):
            d = c[(x - 1) % 5] ^ (((c[(x + 1) % 5] << 1) | (c[(x + 1) % 5] >> 63)) & _M64)
            for y in range(0, 25, 5):
                a[x + y] ^= d
        for src, dst, r in _RHO_PI:
            v = a[src]
            b[dst] = ((v << r) | (v >> (64 - r))) & _M64 if r else v
        for y in range(0, 25, 5):
            b0, b1, b2, b3, b4 = b[y : y + 5]
            a[y] = b0 ^ (~b1 & b2)
            a[y + 1] = b1 ^ (~b2 & b3)
            a[y + 2] = b2 ^ (~b3 & b4)
            a[y + 3] = b3 ^ (~b4 & b0)
            a[y + 4] = b4 ^ (~b0 & b1)
        a[0] ^= rc
    return b"".join((v & _M64).to_bytes(8, "little") for v in a)


_LEN_BITS = {4: 0x00, 8: 0x08, 16: 0x10, 32: 0x20}


def _check(name: str, value: bytes, sizes: tuple[int, ...]) -> None:
    if len(value) not in sizes:
        allowed = " or ".join(str(s) for s in sizes)
        raise BadLength(f"{name} must be {allowed} bytes, got {len(value)}")


def _core(
    top: bytes, instance: int, rand: bytes, amf: bytes, sqn: bytes, k: bytes, iterations: int
) -> bytes:
    # TS 35.231 §6 (figure of IN): TOP(c) | INSTANCE | ALGONAME | RAND | AMF | SQN | KEY | PADDING.
    state = b"".join(
        (
            top[::-1],
            bytes((instance,)),
            _ALGONAME[::-1],
            rand[::-1],
            amf[::-1],
            sqn[::-1],
            k[::-1],
            bytes(32 - len(k)),
            b"\x1f",
            bytes(38),
            b"\x80",
            bytes(64),
        )
    )
    for _ in range(iterations):
        state = keccak_f1600(state)
    return state


def derive_topc(k: bytes, top: bytes, iterations: int = 1) -> bytes:
    """TOPc from TOP and K (TS 35.231 §6.1)."""
    _check("K", k, (16, 32))
    _check("TOP", top, (32,))
    out = _core(top, 0x01 if len(k) == 32 else 0x00, bytes(16), bytes(2), bytes(6), k, iterations)
    return out[31::-1]


class TuakVector(NamedTuple):
    """An authentication vector computed with TUAK: RAND, XRES, CK, IK, AUTN."""

    rand: bytes
    xres: bytes
    ck: bytes
    ik: bytes
    autn: bytes


class Tuak:
    """TUAK bound to one subscriber (K, TOPc) and one choice of output lengths (in bytes)."""

    __slots__ = ("_k", "_kbit", "_topc", "ck_len", "ik_len", "iterations", "mac_len", "res_len")

    def __init__(
        self,
        k: bytes,
        topc: bytes,
        *,
        mac_len: int = 8,
        res_len: int = 8,
        ck_len: int = 16,
        ik_len: int = 16,
        iterations: int = 1,
    ) -> None:
        _check("K", k, (16, 32))
        _check("TOPc", topc, (32,))
        if mac_len not in (8, 16, 32):
            raise BadLength("the TUAK MAC length must be 8, 16 or 32 bytes")
        if res_len not in (4, 8, 16, 32):
            raise BadLength("the TUAK RES length must be 4, 8, 16 or 32 bytes")
        if ck_len not in (16, 32) or ik_len not in (16, 32):
            raise BadLength("the TUAK CK and IK lengths must be 16 or 32 bytes")
        if iterations < 1:
            raise BadLength("the Keccak iteration count must be at least 1")
        self._k, self._topc = k, topc
        self._kbit = 0x01 if len(k) == 32 else 0x00
        self.mac_len, self.res_len, self.ck_len, self.ik_len = mac_len, res_len, ck_len, ik_len
        self.iterations = iterations

    @classmethod
    def from_top(cls, k: bytes, top: bytes, **lengths: int) -> Tuak:
        return cls(k, derive_topc(k, top, lengths.get("iterations", 1)), **lengths)

    def __repr__(self) -> str:
        return f"Tuak(<key material hidden>, mac_len={self.mac_len}, res_len={self.res_len})"

    def _run(self, instance: int, rand: bytes, amf: bytes, sqn: bytes) -> bytes:
        _check("RAND", rand, (16,))
        _check("AMF", amf, (2,))
        _check("SQN", sqn, (6,))
        return _core(self._topc, instance | self._kbit, rand, amf, sqn, self._k, self.iterations)

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-A (TS 35.231 §6.2)."""
        out = self._run(_LEN_BITS[self.mac_len], rand, amf, sqn)
        return out[self.mac_len - 1 :: -1]

    def f1star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-S (TS 35.231 §6.3)."""
        out = self._run(0x80 | _LEN_BITS[self.mac_len], rand, amf, sqn)
        return out[self.mac_len - 1 :: -1]

    def f2345(self, rand: bytes) -> tuple[bytes, bytes, bytes, bytes]:
        """(RES, CK, IK, AK) (TS 35.231 §6.4)."""
        inst = 0x40 | _LEN_BITS[self.res_len]
        inst |= 0x04 if self.ck_len == 32 else 0
        inst |= 0x02 if self.ik_len == 32 else 0
        out = self._run(inst, rand, bytes(2), bytes(6))
        res = out[self.res_len - 1 :: -1]
        ck = out[32 + self.ck_len - 1 : 31 : -1]
        ik = out[64 + self.ik_len - 1 : 63 : -1]
        return res, ck, ik, out[101:95:-1]

    def f5star(self, rand: bytes) -> bytes:
        """AK* (TS 35.231 §6.5)."""
        return self._run(0xC0, rand, bytes(2), bytes(6))[101:95:-1]

    def vector(self, rand: bytes, sqn: int, amf: bytes) -> TuakVector:
        """AUTN = (SQN xor AK) || AMF || MAC-A (TS 33.102 §6.3.2)."""
        if not 0 <= sqn <= _SQN_MAX:
            raise BadLength("SQN must fit in 48 bits")
        s = sqn.to_bytes(6, "big")
        mac = self.f1(rand, s, amf)
        res, ck, ik, ak = self.f2345(rand)
        autn = (sqn ^ int.from_bytes(ak, "big")).to_bytes(6, "big") + amf + mac
        return TuakVector(rand, res, ck, ik, autn)

    def auts(self, rand: bytes, sqn_ms: int) -> bytes:
        """AUTS = (SQN_MS xor AK*) || MAC-S with AMF* = 0000 (TS 33.102 §6.3.3)."""
        if not 0 <= sqn_ms <= _SQN_MAX:
            raise BadLength("SQN_MS must fit in 48 bits")
        s = sqn_ms.to_bytes(6, "big")
        ak_star = int.from_bytes(self.f5star(rand), "big")
        return (sqn_ms ^ ak_star).to_bytes(6, "big") + self.f1star(rand, s, bytes(2))

    def resync(self, rand: bytes, auts: bytes) -> int:
        """SQN_MS from AUTS after verifying MAC-S (TS 33.102 §6.3.5)."""
        _check("AUTS", auts, (6 + self.mac_len,))
        sqn_ms = int.from_bytes(auts[:6], "big") ^ int.from_bytes(self.f5star(rand), "big")
        mac_s = self.f1star(rand, sqn_ms.to_bytes(6, "big"), bytes(2))
        if not hmac.compare_digest(mac_s, auts[6:]):
            raise AuthenticationFailure("AUTS: MAC-S does not verify")
        return sqn_ms
