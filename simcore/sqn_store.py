"""Milenage vectors for a stored SIM, computed inside the HSM at SQNs the store reserves.

- `fresh_vectors` / `issue_vectors` give Milenage vectors for a stored SIM; `resync_vector`
  answers a card's AUTS.

SQN (3GPP TS 33.102 §6.3, Annex C): the store keeps each SIM's SQN as an AuC does, in `sim_sqn`
(SEQ_HE, the highest SEQ issued, and the IND of the last vector). SQN = SEQ || IND with a 5-bit
IND (C.1.1; as hsm_sim.milenage and the virtual card assume).

- `reserve_sqns` takes the next SEQs in one statement (an upsert that adds `count` to SEQ_HE and
  to IND mod 32, RETURNING the result): on PostgreSQL concurrent callers queue on the row lock,
  on SQLite on the writer lock, so no two callers get the same SQN. Each vector has a SEQ above
  every SQN issued before it and the next IND (C.3.2), so vectors used out of order still pass
  the card's per-IND check.
- A SIM with no row yet starts at the time-based SEQ + 1 (seconds since 2025-01-01, within the
  card's Δ = 2^28 for eight years). Vectors made before the store kept SQNs used that time-based
  SEQ, so a card programmed or checked then has seen nothing above the current time's SEQ and
  accepts the first stored-SQN vector without a resync.
- `resync_vector`: the HSM checks AUTS (MAC-S) and recovers SQN_MS; the store sets SEQ_HE :=
  SEQ_MS (C.3.4), unless it is already above SEQ_MS by less than Δ (then vectors issued meanwhile
  keep their SQNs unique), and the vector returned uses SEQ_HE + 1. Audited (`keys.sqn_resync`:
  SEQ_MS, SEQ_HE before and after; SQNs are not secrets, and no key enters the record).
- Vectors at an SQN the caller chooses (`sqn=`, `simsmith hsm vector --sqn`) raise SEQ_HE to
  their highest SEQ, so later vectors stay above them.

Networks keep their own SQN (an HSS resynchronises on the first attach); a card used both with an
HSS and here answers AUTS once when the other side has moved it on, and resynchronises.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, case, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hsm_sim.hsm import DEFAULT_AMF, Hsm
from simcore import audit
from simcore.db import connection_transaction, read_session
from simcore.errors import InvalidInput, SimsmithError
from simcore.identifiers import Iccid
from simcore.keys import SimKeys
from simcore.models import SimSqn, utcnow

# SQN = SEQ || IND (TS 33.102 Annex C): a 5-bit IND (C.1.1, C.3.2; hsm_sim.milenage and the
# virtual card assume the same), so 43 bits of SEQ.
_SEQ_EPOCH = 1735689600  # 2025-01-01T00:00:00Z
_IND_BITS = 5
_IND_MOD = 1 << _IND_BITS
_SQN_MAX = (1 << 48) - 1
SEQ_MAX = _SQN_MAX >> _IND_BITS
DELTA = 1 << 28  # C.2.1: the largest SEQ jump a USIM accepts (the recommended Δ)
SQN_TABLE = SimSqn.__table__  # type: ignore[attr-defined]



class SqnExhausted(SimsmithError):
    """A SIM's SEQ would no longer fit in SQN's 48 bits (43 bits of SEQ with a 5-bit IND)."""


@dataclass(frozen=True)
class SqnState:
    """A SIM's stored sequence number: SEQ_HE (the highest SEQ issued or learnt from an AUTS)
    and the IND of the last vector issued."""

    iccid: str
    seq: int
    ind: int
    updated_at: datetime

    @property
    def sqn(self) -> int:
        """SQN = SEQ || IND of the last vector issued."""
        return _sqn(self.seq, self.ind)


def time_seq(now: float | None = None) -> int:
    """The time-based SEQ (TS 33.102 C.1.1.2 style): seconds since 2025-01-01. The SEQ vectors
    used before the store kept SQNs, and the floor of a SIM the store has not seen yet."""
    return int((time.time() if now is None else now) - _SEQ_EPOCH)


def _sqn(seq: int, ind: int) -> int:
    return (seq << _IND_BITS) | ind


def next_network_sqns(engine: Engine, iccids: Sequence[str]) -> dict[str, int]:
    """For SIMs with a stored SQN: the SQN a core network's HSS/UDM should start from, SEQ_HE + 1
    with the last IND — above every SEQ simsmith issued, so the card accepts the network's first
    vector without a resync (TS 33.102 C.2.2). SIMs without a stored SQN are left out (the
    network starts from 0, as for a new card)."""
    digits = [Iccid.parse(i).digits for i in iccids]
    if not digits:
        return {}
    with read_session(engine) as s:
        rows = s.execute(select(SQN_TABLE.c.iccid, SQN_TABLE.c.seq, SQN_TABLE.c.ind)
                         .where(SQN_TABLE.c.iccid.in_(digits))).all()
    return {iccid: _sqn(seq + 1, ind) for iccid, seq, ind in rows}


def sqn_state(engine: Engine, iccid: str) -> SqnState | None:
    """The stored SQN of one SIM; None if no vector was issued for it yet."""
    iccid = Iccid.parse(iccid).digits
    with read_session(engine) as s:
        row = s.execute(select(SQN_TABLE).where(SQN_TABLE.c.iccid == iccid)).mappings().first()
    return None if row is None else SqnState(row["iccid"], row["seq"], row["ind"],
                                             row["updated_at"])


def _upsert(conn: Any, iccid: str, *, insert: tuple[int, int], seq: Any, ind: Any
            ) -> tuple[int, int]:
    """Insert the SIM's row with `insert` (seq, ind), or update it to the expressions `seq` and
    `ind` (over the row's current values), in one statement; returns the stored (seq, ind). On
    PostgreSQL the conflicting row is locked until the commit, so concurrent callers queue on
    it and each sees the one before; on SQLite the writer lock serialises the transactions."""
    t = SQN_TABLE
    now = utcnow()
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = (ins(t).values(iccid=iccid, seq=insert[0], ind=insert[1], updated_at=now)
            .on_conflict_do_update(index_elements=[t.c.iccid],
                                   set_={"seq": seq, "ind": ind, "updated_at": now})
            .returning(t.c.seq, t.c.ind))
    got_seq, got_ind = conn.execute(stmt).one()
    if got_seq > SEQ_MAX:
        raise SqnExhausted(f"SIM {iccid}: SEQ {got_seq} no longer fits in SQN (48 bits with a "
                           f"{_IND_BITS}-bit IND); the card's SQN space is used up")
    return int(got_seq), int(got_ind)


def reserve_sqns(engine: Engine, iccid: str, count: int = 1, *,
                 now: float | None = None) -> list[int]:
    """Reserve the next `count` SQNs of a SIM, atomically (TS 33.102 Annex C.3.2): SEQ_HE
    advances by one per vector and IND by one mod 2^5, so no two callers ever get the same SQN
    and every SQN is above the last one issued. A SIM without a stored SQN starts at the
    time-based SEQ + 1 (`time_seq`): above every SEQ the time-based scheme may already have
    given its card. SQNs taken but never used leave gaps, which a card accepts."""
    if count < 1:
        raise InvalidInput("count", "at least one vector", expected="1 or more")
    iccid = Iccid.parse(iccid).digits
    t = SQN_TABLE
    with connection_transaction(engine) as conn:
        seq, ind = _upsert(conn, iccid, insert=(time_seq(now) + count, (count - 1) % _IND_MOD),
                           seq=t.c.seq + count, ind=(t.c.ind + count) % _IND_MOD)
    return [_sqn(seq - count + 1 + i, (ind - count + 1 + i) % _IND_MOD) for i in range(count)]


def _record_issued(engine: Engine, iccid: str, sqns: Sequence[int]) -> None:
    """Vectors made at SQNs the caller chose: raise SEQ_HE to the highest SEQ among them, so
    later vectors stay above every vector issued (a SIM not seen yet gets the time-based floor)."""
    top = max(s >> _IND_BITS for s in sqns)
    t = SQN_TABLE
    with connection_transaction(engine) as conn:
        _upsert(conn, iccid, insert=(max(top, time_seq()), sqns[-1] & (_IND_MOD - 1)),
                seq=case((t.c.seq < top, top), else_=t.c.seq), ind=t.c.ind)


def issue_vectors(engine: Engine, hsm: Hsm, keys: SimKeys, *, count: int = 1,
                  sqn: int | None = None, rand: bytes | None = None) -> list[tuple[int, Any]]:
    """`count` (SQN, Milenage vector) pairs for a stored SIM, computed inside the HSM.

    By default the SQNs come from the store (`reserve_sqns`: the next SEQs, IND rotating per
    vector). With `sqn` given, vector i uses sqn + (i << 5) (same IND, next SEQs: a calculator
    for a chosen SQN) and the store's SEQ_HE is raised to the highest of them. RAND is random per
    vector unless `rand` is given. The reservation commits before the HSM computes, so the
    database lock is held for one statement only."""
    if sqn is None:
        sqns = reserve_sqns(engine, keys.iccid, count)
    else:
        if count < 1:
            raise InvalidInput("count", "at least one vector", expected="1 or more")
        sqns = [sqn + (i << _IND_BITS) for i in range(count)]
        if sqn < 0 or sqns[-1] > _SQN_MAX:
            raise InvalidInput("sqn", f"SQN {sqn:#x} + {count - 1} SEQ steps leaves 48 bits",
                               expected="an SQN of up to 12 hex digits")
        _record_issued(engine, keys.iccid, sqns)
    rands = [rand] * count if rand is not None else [os.urandom(16) for _ in range(count)]
    return list(zip(sqns, hsm.milenage_vectors(keys.ki, keys.opc, sqns, DEFAULT_AMF, rands),
                    strict=True))


def fresh_vectors(engine: Engine, hsm: Hsm, keys: SimKeys, *, count: int = 1,
                  sqn: int | None = None, rand: bytes | None = None) -> list[Any]:
    """`count` Milenage vectors (hsm_sim.milenage.AuthVector) computed inside the HSM, at SQNs
    reserved in the store (`issue_vectors`)."""
    return [v for _, v in issue_vectors(engine, hsm, keys, count=count, sqn=sqn, rand=rand)]


def _after_resync(seq_he: int, seq_ms: int) -> int:
    # C.3.4: SEQ_HE := SEQ_MS. Kept when the store is already above SEQ_MS and within the card's
    # window Δ: vectors issued meanwhile to other callers keep their SQNs unique.
    return seq_ms if seq_he < seq_ms or seq_he - seq_ms >= DELTA else seq_he


def resync_vector(engine: Engine, hsm: Hsm, keys: SimKeys, rand: bytes, auts: bytes, *,
                  actor: str) -> Any:
    """After a card's synchronisation failure (TS 33.102 §6.3.5): the HSM verifies AUTS (MAC-S)
    and recovers SQN_MS; the store takes SEQ_HE := SEQ_MS (Annex C.3.4; unless it is already
    above it, within Δ) and reserves the next SQN from there, audited as `keys.sqn_resync`; the
    answer is one vector the card accepts (its SEQ is above every SEQ the card has seen)."""
    return issue_resync_vector(engine, hsm, keys, rand, auts, actor=actor)[1]


def issue_resync_vector(engine: Engine, hsm: Hsm, keys: SimKeys, rand: bytes, auts: bytes, *,
                        actor: str) -> tuple[int, Any]:
    """`resync_vector` with the SQN of the vector: (SQN, vector)."""
    sqn_ms = hsm.milenage_resync(keys.ki, keys.opc, rand, auts)
    seq_ms, ind_ms = sqn_ms >> _IND_BITS, sqn_ms & (_IND_MOD - 1)
    t = SQN_TABLE
    with connection_transaction(engine) as conn:
        before = conn.execute(select(t.c.seq).where(t.c.iccid == keys.iccid).with_for_update()
                              ).scalar_one_or_none()
        base = case(((t.c.seq < seq_ms) | (t.c.seq - seq_ms >= DELTA), seq_ms), else_=t.c.seq)
        seq, ind = _upsert(conn, keys.iccid,
                           insert=(_after_resync(time_seq(), seq_ms) + 1, 0),
                           seq=base + 1, ind=(t.c.ind + 1) % _IND_MOD)
        details = {"seq_ms": seq_ms, "ind_ms": ind_ms, "seq_he_before": before,
                   "seq_he": seq, "ind": ind}
        audit.append(conn, actor=actor, action="keys.sqn_resync", subject_type="sim",
                     subject_id=keys.iccid, details=details)
    sqn = _sqn(seq, ind)
    return sqn, hsm.milenage_vectors(keys.ki, keys.opc, [sqn], DEFAULT_AMF, [os.urandom(16)])[0]
