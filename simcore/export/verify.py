"""Proof that a network element holds the right keys: its authentication vectors for a SIM equal
the HSM's Milenage (3GPP TS 35.206) for the same RAND, SQN and AMF.

The HLR picks RAND and SQN. SQN is recovered from its AUTN: AUTN = SQN ⊕ AK ‖ AMF ‖ MAC-A
(TS 33.102 §6.3.2) and AK = f5_K(RAND) does not depend on SQN, so the HSM's AUTN for the same
RAND with SQN = 0 carries AK itself; XOR gives SQN. Then RES, CK, IK and AUTN (hence MAC-A) must
match bit for bit, and SRES/Kc the c2/c3 conversion (TS 33.102 §6.8.1.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from hsm_sim.hsm import Hsm
from hsm_sim.keyref import KeyRef
from simcore.export.gsup import AuthTuple
from simcore.models import Sim


@dataclass(frozen=True, slots=True)
class VectorCheck:
    iccid: str
    imsi: str
    sqn: int
    ok: bool
    mismatched: tuple[str, ...] = ()  # names of fields that differ, never their values


def check_vector(hsm: Hsm, sim: Sim, t: AuthTuple) -> VectorCheck:
    ki, opc = KeyRef.from_token(sim.ki_ref or ""), KeyRef.from_token(sim.opc_ref or "")
    if t.autn is None:
        raise ValueError("a GSM-only tuple has no AUTN to check")
    amf = t.autn[6:8]
    zero = hsm.milenage_vectors(ki, opc, [0], amf, [t.rand])[0]
    sqn = int.from_bytes(bytes(a ^ b for a, b in zip(t.autn[:6], zero.autn[:6], strict=True)),
                         "big")
    v = hsm.milenage_vectors(ki, opc, [sqn], amf, [t.rand])[0]
    bad = [name for name, ours, theirs in (("RES", v.xres, t.res), ("CK", v.ck, t.ck),
                                           ("IK", v.ik, t.ik), ("AUTN", v.autn, t.autn))
           if ours != theirs]
    if t.sres is not None or t.kc is not None:
        g = hsm.gsm_triplets(ki, opc, [t.rand])[0]
        bad += [n for n, ours, theirs in (("SRES", g.sres, t.sres), ("Kc", g.kc, t.kc))
                if theirs is not None and ours != theirs]
    return VectorCheck(sim.iccid, sim.imsi or "", sqn, not bad, tuple(bad))
