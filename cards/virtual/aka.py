"""Card-side AKA (3GPP TS 33.102 §6.3.3 and Annex C.3): check MAC and SQN freshness, answer
RES/CK/IK, or AUTS on a synchronisation failure. SQN = SEQ || IND with a 5-bit IND (32 slots).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from cards.virtual.milenage_card import Milenage, c3_kc

IND_BITS = 5
DELTA = 1 << 28  # Annex C.2.1: maximum accepted jump of SEQ


class MacFailure(Exception):
    """XMAC != MAC: the network's keys differ from the card's."""


class SyncFailure(Exception):
    def __init__(self, auts: bytes) -> None:
        self.auts = auts


@dataclass
class CardAka:
    seq: list[int] = field(default_factory=lambda: [0] * (1 << IND_BITS))

    def highest_sqn(self) -> int:
        ind = max(range(len(self.seq)), key=lambda i: self.seq[i])
        return (self.seq[ind] << IND_BITS) | ind

    def authenticate(self, m: Milenage, rand: bytes, autn: bytes) -> tuple[bytes, bytes, bytes,
                                                                           bytes]:
        """(RES, CK, IK, Kc) or raise MacFailure / SyncFailure."""
        res, ck, ik, ak, ak_star = m.f2345(rand)
        sqn = bytes(a ^ b for a, b in zip(autn[:6], ak, strict=True))
        amf, mac = autn[6:8], autn[8:16]
        xmac, _ = m.f1(rand, sqn, amf)
        if not hmac.compare_digest(xmac, mac):
            raise MacFailure()
        value = int.from_bytes(sqn, "big")
        seq, ind = value >> IND_BITS, value & ((1 << IND_BITS) - 1)
        top = self.highest_sqn() >> IND_BITS
        if seq <= self.seq[ind] or seq - top > DELTA:
            sqn_ms = self.highest_sqn().to_bytes(6, "big")
            _, mac_s = m.f1(rand, sqn_ms, b"\x00\x00")
            raise SyncFailure(bytes(a ^ b for a, b in zip(sqn_ms, ak_star, strict=True)) + mac_s)
        self.seq[ind] = seq
        return res, ck, ik, c3_kc(ck, ik)
