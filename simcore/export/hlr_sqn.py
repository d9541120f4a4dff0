"""Keeping osmo-hlr's SQN when subscribers are exported again (issue 13 item 6).

osmo-hlr stores, per subscriber, the last SQN it used (`aud3g.sqn` in `info-aud`; SQN = SEQ‖IND,
TS 33.102 Annex C) and replaces the whole auc_3g row — SQN back to 0 — whenever `aud3g` is SET.
A card accepts only SQNs above the highest it has seen (TS 33.102 §6.3.3, C.2.2), so a network
whose SQN went backwards must resynchronise every card. Therefore a re-export:

- reads `info-aud` first and does not SET `aud3g` when K, OPc and the IND length are already what
  it would set (the SQN is kept as it is);
- otherwise (new keys, a new subscriber), and whenever the SQN osmo-hlr holds is below a floor
  — the SQN it held before, or the last SQN simsmith itself issued for the SIM
  (simcore.sqn_store.next_network_sqns) — raises it the only way osmo-hlr offers: a resync. The
  export sends SendAuthInfo with AUTS = (SQN_MS ⊕ AK*) ‖ MAC-S for SQN_MS = the floor
  (TS 33.102 §6.3.3, computed with Milenage f1*/f5*, TS 35.206, from the keys this insecure
  target receives in clear anyway); osmo-hlr verifies MAC-S, takes SQN_MS as the card's and
  issues one vector above it, so its stored SQN ends above the floor. That vector is discarded
  (an unused SQN costs the card nothing).

Nothing here lowers an SQN.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass

from hsm_sim.milenage import Milenage
from simcore.export.gsup import GsupClient
from simcore.export.keys import ExportedSim

IND_BITS = 5  # simsmith's IND length (TS 33.102 C.3.2), also what the export sets in aud3g


@dataclass(frozen=True, slots=True, repr=False)
class Aud3g:
    """What osmo-hlr holds for a subscriber's 3G authentication (from `info-aud`)."""

    algo: str
    k: bytes
    opc: bytes | None  # None when osmo-hlr holds an OP instead
    ind_bitlen: int
    sqn: int

    def __repr__(self) -> str:
        return f"Aud3g(algo={self.algo}, ind_bitlen={self.ind_bitlen}, sqn={self.sqn})"

    def same_keys(self, s: ExportedSim, ind_bitlen: int) -> bool:
        """K, OPc and the IND length equal what the export would set (constant-time compares)."""
        return (self.algo.upper().startswith("MILENAGE") and self.opc is not None
                and self.ind_bitlen == ind_bitlen
                and hmac.compare_digest(self.k, s.k) & hmac.compare_digest(self.opc, s.opc))


def parse_info_aud(text: str) -> Aud3g | None:
    """The aud3g part of a `subscriber.by-imsi-….info-aud` reply (tab-separated `name value`
    lines); None when the subscriber has no 3G authentication data (or does not exist)."""
    f: dict[str, str] = {}
    for line in text.splitlines():
        name, _, value = line.partition("\t")
        if name.startswith("aud3g."):
            f[name[6:]] = value.strip()
    if "algo" not in f or "k" not in f:
        return None
    try:
        return Aud3g(f["algo"], bytes.fromhex(f["k"]),
                     bytes.fromhex(f["opc"]) if "opc" in f else None,
                     int(f.get("ind_bitlen", "0")), int(f.get("sqn", "0")))
    except ValueError:
        return None


def floor_sqn(s: ExportedSim, before: Aud3g | None) -> int:
    """The lowest SQN osmo-hlr may hold after the export: the one it held, and the last SQN
    simsmith issued (`s.sqn` is where a network starts, one SEQ above it)."""
    issued = max(0, s.sqn - (1 << IND_BITS)) if s.sqn else 0
    return max(issued, before.sqn if before is not None else 0)


def raise_sqn(gsup: GsupClient, s: ExportedSim, sqn_ms: int) -> int:
    """Make osmo-hlr take `sqn_ms` as the card's SQN (a resync, TS 33.102 §6.3.5): returns the
    SQN of the vector it then issues, which it stores as its own (above `sqn_ms`)."""
    m = Milenage(s.k, s.opc)
    rand = os.urandom(16)
    tuples = gsup.send_auth_info(s.imsi, 1, auts=m.auts(rand, sqn_ms), rand=rand)
    t = tuples[0]
    if t.autn is None:
        raise ValueError("osmo-hlr answered the resync without a UMTS vector")
    ak = m.f2345(t.rand)[3]
    return int.from_bytes(bytes(a ^ b for a, b in zip(t.autn[:6], ak, strict=True)), "big")
