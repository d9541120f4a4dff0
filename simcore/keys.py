"""The inventory store and the HSM together: a SIM's keys made in bulk, found again, and handed
to card and profile personalisation without a clear key ever leaving the HSM's methods.

- `generate_keys` gives SIMs without keys a Ki and an OPc (random, or derived from the
  operator's OP) and the access codes PIN1/PUK1/PIN2/PUK2/ADM1 (made inside the HSM), optionally
  the OTA keys of the profile's security domain; the store keeps only `KeyRef` tokens
  (`Sim.ki_ref`, `Sim.opc_ref`, `SimCredential`). SIMs that already have keys are skipped, so a
  run that stopped half-way is simply run again.
- `load_keys` reads one SIM's references back (`SimKeys`; its repr shows names only).
- `SimKeyWriter` is the cards' `KeyWriter`: ADM1, Ki and OPc are written by the HSM
  (`Hsm.patch_keys`) into the buffer of the APDU being built, at that moment only.
- `package_patcher` is esim's `patch_keys`: the HSM writes Ki/OPc/OTA keys and the PIN/PUK/ADM
  fields straight into the package buffer; esim only ever sees placeholders.
- `fresh_vectors` / `issue_vectors` give Milenage vectors computed inside the HSM for a stored
  SIM, at SQNs the store reserves; `resync_vector` answers a card's AUTS.
- `rewrap_keys` brings every stored reference to the HSM's current blob format (hsm_sim's v1
  RFC 5649 blobs to v2, docs/hsm.md "Blob format"), page by page (`simsmith hsm rewrap`).

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, bindparam, case, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from cards.profile import CardKeys
from cards.secret import Secret
from esim.params import SubscriberParams
from hsm_sim.binding import wrapped_length
from hsm_sim.hsm import DEFAULT_AMF, generate_sim_keys
from hsm_sim.keyref import KeyRef, KeyType
from simcore import audit
from simcore.db import connection_transaction, read_session, transaction
from simcore.errors import InvalidInput, NotFound, SimsmithError
from simcore.identifiers import Iccid
from simcore.inventory import SIM_TABLE, batch_id, list_sims
from simcore.models import Sim, SimCredential, SimSqn, utcnow

__all__ = [
    "CODES",
    "OTA_KEYS",
    "KeyGenResult",
    "MissingKeys",
    "RewrapResult",
    "SimKeyWriter",
    "SimKeys",
    "SqnExhausted",
    "SqnState",
    "batch_keys",
    "fresh_vectors",
    "generate_keys",
    "issue_resync_vector",
    "issue_vectors",
    "load_keys",
    "next_network_sqns",
    "package_params",
    "package_patcher",
    "reserve_sqns",
    "resync_vector",
    "sqn_state",
    "time_seq",
]

# Access codes per SIM: credential name -> (HSM key type, digits). PUKs and ADM1 have 8 digits
# (TS 102 221 §9.5.1; ADM1 as sysmocom and most vendors deliver it).
CODES: dict[str, tuple[str, int]] = {
    "PIN1": ("PIN", 4), "PUK1": ("PUK", 8), "PIN2": ("PIN", 4), "PUK2": ("PUK", 8),
    "ADM1": ("ADM", 8),
}
# The OTA keys of the built-in profile templates' security domain (GlobalPlatform key ids:
# 1 = KIc, 2 = KID, 3 = KIK), named as esim's key slots.
OTA_KEYS: dict[str, str] = {
    f"ota-kvn{kvn:02d}-kid{kid:02d}": kind
    for kvn in (1, 2) for kid, kind in ((1, "KIc"), (2, "KID"), (3, "KIK"))
}
# esim parameter -> credential name, for the code fields of a profile package.
PACKAGE_CODES = {"pin1": "PIN1", "puk1": "PUK1", "pin2": "PIN2", "puk2": "PUK2", "adm1": "ADM1"}

# SQN = SEQ || IND (TS 33.102 Annex C): a 5-bit IND (C.1.1, C.3.2; hsm_sim.milenage and the
# virtual card assume the same), so 43 bits of SEQ.
_SEQ_EPOCH = 1735689600  # 2025-01-01T00:00:00Z
_IND_BITS = 5
_IND_MOD = 1 << _IND_BITS
_SQN_MAX = (1 << 48) - 1
SEQ_MAX = _SQN_MAX >> _IND_BITS
DELTA = 1 << 28  # C.2.1: the largest SEQ jump a USIM accepts (the recommended Δ)
SQN_TABLE = SimSqn.__table__  # type: ignore[attr-defined]


class MissingKeys(NotFound):
    """A SIM has no key (or no credential) of the kind an operation needs."""


@dataclass(frozen=True)
class SimKeys:
    """One SIM's key references (opaque KeyRefs; no key bytes)."""

    iccid: str
    ki: KeyRef
    opc: KeyRef
    credentials: dict[str, KeyRef] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"SimKeys({self.iccid}, Ki, OPc, {', '.join(sorted(self.credentials)) or '-'})"

    def credential(self, name: str) -> Any:
        ref = self.credentials.get(name)
        if ref is None:
            raise MissingKeys(f"SIM {self.iccid} has no {name} in the store")
        return ref


@dataclass(frozen=True)
class KeyGenResult:
    sims: int  # SIMs given keys now
    skipped: int  # SIMs that had keys already
    credentials: tuple[str, ...]


@dataclass(frozen=True)
class _Slot:
    offset: int
    length: int


# --- generation ---------------------------------------------------------------------------------


def _keys_for(hsm: Any, iccid: str, op: Any, codes: dict[str, tuple[str, int]],
              ota: Iterable[str]) -> tuple[Any, Any, list[tuple[str, Any]]]:
    ki, opc = generate_sim_keys(hsm, iccid, op)
    creds = [(name, hsm.generate_code(iccid, KeyType(kt), digits))
             for name, (kt, digits) in codes.items()]
    creds += [(name, hsm.generate(iccid, KeyType(OTA_KEYS[name]))) for name in ota]
    return ki, opc, creds


def generate_keys(
    engine: Engine,
    hsm: Any,
    *,
    actor: str,
    batch: str | None = None,
    iccids: Sequence[str] | None = None,
    op: Any = None,
    codes: Iterable[str] = tuple(CODES),
    ota: bool = False,
    chunk: int = 500,
    progress: Callable[[int], None] | None = None,
) -> KeyGenResult:
    """Give every SIM of `batch` (or the listed `iccids`) that has no Ki yet its keys, `chunk`
    SIMs per transaction, one audit event per chunk (names and counts, no key material)."""
    if (batch is None) == (iccids is None):
        raise InvalidInput("keys", "give a batch or a list of ICCIDs, not both or neither")
    code_set = {n: CODES[n] for n in codes}
    ota_names = tuple(OTA_KEYS) if ota else ()
    with read_session(engine) as s:
        stmt = select(col(Sim.iccid), col(Sim.ki_ref))
        if batch is not None:
            stmt = stmt.where(col(Sim.batch_id) == batch_id(s, batch))
            rows: list[tuple[str, str | None]] = [
                (r[0], r[1]) for r in s.execute(stmt.order_by(col(Sim.iccid))).all()]
        else:
            wanted = [Iccid.parse(i).digits for i in iccids or ()]
            found = dict(s.execute(stmt.where(col(Sim.iccid).in_(wanted))).all())
            missing = [i for i in wanted if i not in found]
            if missing:
                raise NotFound(f"no SIM with ICCID {missing[0]}")
            rows = [(i, found[i]) for i in wanted]
    todo = [iccid for iccid, ki in rows if ki is None]
    skipped = len(rows) - len(todo)
    done = 0
    subject = batch or (todo[0] if todo else "-")
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        made = [(iccid, *_keys_for(hsm, iccid, op, code_set, ota_names)) for iccid in part]
        done += _store_chunk(engine, made, actor=actor, subject=subject,
                             credentials=(*code_set, *ota_names))
        if progress:
            progress(done)
    return KeyGenResult(done, skipped + len(todo) - done, (*code_set, *ota_names))


def _store_chunk(engine: Engine, made: list[tuple[str, Any, Any, list[tuple[str, Any]]]], *,
                 actor: str, subject: str, credentials: tuple[str, ...]) -> int:
    now = utcnow()
    with transaction(engine) as s:
        # Only SIMs still without keys (another run may have given them keys meanwhile).
        free = set(s.execute(
            select(col(Sim.iccid)).where(col(Sim.iccid).in_([m[0] for m in made]),
                                         col(Sim.ki_ref).is_(None)).with_for_update()
        ).scalars())
        made = [m for m in made if m[0] in free]
        if not made:
            return 0
        t = SIM_TABLE
        s.connection().execute(
            update(t).where(t.c.iccid == bindparam("b_iccid"))
            .values(ki_ref=bindparam("b_ki"), opc_ref=bindparam("b_opc"),
                    auth_algorithm="milenage", version=t.c.version + 1, updated_at=now),
            [{"b_iccid": iccid, "b_ki": ki.to_token(), "b_opc": opc.to_token()}
             for iccid, ki, opc, _ in made],
        )
        creds = [{"iccid": iccid, "name": name, "ref": ref.to_token()}
                 for iccid, _, _, refs in made for name, ref in refs]
        if creds:
            s.connection().execute(SimCredential.__table__.insert(), creds)  # type: ignore[attr-defined]
        details = {"sims": len(made), "first_iccid": made[0][0], "last_iccid": made[-1][0],
                   "key_types": ["Ki", "OPc", *credentials], "backend": made[0][1].backend}
        audit.append(s, actor=actor, action="keys.generate", subject_type="batch",
                     subject_id=subject, details=details,
                     outbox=audit.Outbox("keys.generated", "batch", subject, details))
    return len(made)


# --- blob format migration -----------------------------------------------------------------


@dataclass(frozen=True)
class RewrapResult:
    """What `rewrap_keys` did: references read (of the HSM's backend) and references changed."""

    references: int
    rewrapped: int

    def as_dict(self) -> dict[str, int]:
        return {"references": self.references, "rewrapped": self.rewrapped}


def _rewrap_tokens(hsm: Any, tokens: Sequence[str]) -> dict[str, str]:
    """{old token: new token} for the tokens of `hsm`'s backend that `hsm.rewrap` changed."""
    refs = [KeyRef.from_token(t) for t in tokens]
    mine = [(t, r) for t, r in zip(tokens, refs, strict=True) if r.backend == hsm.backend]
    new = hsm.rewrap([r for _, r in mine]) if mine else []
    return {t: n.to_token() for (t, r), n in zip(mine, new, strict=True) if n.blob != r.blob}


def rewrap_keys(engine: Engine, hsm: Any, *, actor: str, page: int = 1000) -> RewrapResult:
    """Every stored key reference (`sim.ki_ref`, `sim.opc_ref`, `sim_credential.ref`) of `hsm`'s
    backend in its current blob format, `hsm.rewrap` doing the work inside the HSM.

    Keyset pages of `page` rows, each updated in a transaction of its own with an audit event
    (`keys.rewrap`, counts only): a row holds its old reference or its new one, both valid, so a
    run stopped anywhere leaves a consistent store and the next run carries on. An update needs
    the token it read, so a reference another writer changed meanwhile is left to that writer. A
    blob that does not verify raises TamperedBlob (naming owner and type) and ends the run."""
    if page < 1:
        raise InvalidInput("page", f"must be at least 1, got {page}", expected="1 or more")
    seen = changed = 0
    t = SIM_TABLE
    after = ""
    while True:
        with read_session(engine) as s:
            rows = s.execute(
                select(t.c.iccid, t.c.ki_ref, t.c.opc_ref)
                .where(t.c.iccid > after, or_(t.c.ki_ref.is_not(None), t.c.opc_ref.is_not(None)))
                .order_by(t.c.iccid).limit(page)
            ).all()
        if not rows:
            break
        after = rows[-1][0]
        tokens = [x for r in rows for x in (r[1], r[2]) if x]
        new = _rewrap_tokens(hsm, tokens)
        seen += sum(1 for x in tokens if KeyRef.from_token(x).backend == hsm.backend)
        if new:
            with connection_transaction(engine) as conn:
                n = 0
                for column in ("ki_ref", "opc_ref"):
                    c = t.c[column]
                    params = [{"b_iccid": r[0], "b_old": old, "b_new": new[old]}
                              for r in rows for old in [r[1] if column == "ki_ref" else r[2]]
                              if old in new]
                    if params:
                        n += conn.execute(update(t).where(t.c.iccid == bindparam("b_iccid"),
                                                          c == bindparam("b_old"))
                                          .values({column: bindparam("b_new")}),
                                          params).rowcount or 0
                audit.append(conn, actor=actor, action="keys.rewrap", subject_type="sim",
                             subject_id=f"{rows[0][0]}..{rows[-1][0]}",
                             details={"table": "sim", "references": len(tokens),
                                      "rewrapped": n, "backend": hsm.backend})
                changed += n
    ct = SimCredential.__table__  # type: ignore[attr-defined]
    last = ("", "")
    while True:
        with read_session(engine) as s:
            crows = s.execute(
                select(ct.c.iccid, ct.c.name, ct.c.ref)
                .where(or_(ct.c.iccid > last[0], and_(ct.c.iccid == last[0], ct.c.name > last[1])))
                .order_by(ct.c.iccid, ct.c.name).limit(page)
            ).all()
        if not crows:
            break
        last = (crows[-1][0], crows[-1][1])
        new = _rewrap_tokens(hsm, [r[2] for r in crows])
        seen += sum(1 for r in crows if KeyRef.from_token(r[2]).backend == hsm.backend)
        if new:
            params = [{"b_iccid": r[0], "b_name": r[1], "b_old": r[2], "b_new": new[r[2]]}
                      for r in crows if r[2] in new]
            with connection_transaction(engine) as conn:
                n = conn.execute(update(ct).where(ct.c.iccid == bindparam("b_iccid"),
                                                  ct.c.name == bindparam("b_name"),
                                                  ct.c.ref == bindparam("b_old"))
                                 .values(ref=bindparam("b_new")), params).rowcount or 0
                audit.append(conn, actor=actor, action="keys.rewrap", subject_type="sim",
                             subject_id=f"{crows[0][0]}..{crows[-1][0]}",
                             details={"table": "sim_credential", "references": len(crows),
                                      "rewrapped": n, "backend": hsm.backend})
                changed += n
    return RewrapResult(seen, changed)


# --- lookup -------------------------------------------------------------------------------------


def load_keys(engine: Engine, iccid: str) -> SimKeys:
    """The key references of one SIM; MissingKeys when it has no Ki/OPc."""
    iccid = Iccid.parse(iccid).digits
    with read_session(engine) as s:
        sim = s.get(Sim, iccid)
        if sim is None:
            raise NotFound(f"no SIM with ICCID {iccid}")
        if not sim.ki_ref or not sim.opc_ref:
            raise MissingKeys(f"SIM {iccid} has no Ki/OPc in the store: generate them "
                              "(`simsmith inventory generate --with-keys`) or import them")
        creds = dict(s.execute(select(col(SimCredential.name), col(SimCredential.ref))
                               .where(col(SimCredential.iccid) == iccid)).all())
        ki_token, opc_token = sim.ki_ref, sim.opc_ref
    return SimKeys(iccid, KeyRef.from_token(ki_token), KeyRef.from_token(opc_token),
                   {name: KeyRef.from_token(tok) for name, tok in creds.items()})


def batch_keys(engine: Engine, batch: str, *, page: int = 1000) -> Iterator[tuple[Sim, SimKeys]]:
    """Every SIM of a batch with its key references, in ICCID order, two queries per page.
    MissingKeys on the first SIM without Ki/OPc."""
    after: str | None = None
    while True:
        sims = list_sims(engine, batch=batch, after=after, limit=page)
        if not sims:
            return
        with read_session(engine) as s:
            rows = s.execute(select(col(SimCredential.iccid), col(SimCredential.name),
                                    col(SimCredential.ref))
                             .where(col(SimCredential.iccid).in_([x.iccid for x in sims]))).all()
        creds: dict[str, dict[str, KeyRef]] = {}
        for iccid, name, tok in rows:
            creds.setdefault(iccid, {})[name] = KeyRef.from_token(tok)
        for sim in sims:
            if not sim.ki_ref or not sim.opc_ref:
                raise MissingKeys(f"SIM {sim.iccid} has no Ki/OPc in the store")
            yield sim, SimKeys(sim.iccid, KeyRef.from_token(sim.ki_ref),
                               KeyRef.from_token(sim.opc_ref), creds.get(sim.iccid, {}))
        after = sims[-1].iccid


# --- handing keys to cards and packages -----------------------------------------------------------


class SimKeyWriter:
    """cards.profile.KeyWriter for one stored SIM: the HSM writes each secret into the buffer the
    APDU is built from, when the driver asks for it."""

    def __init__(self, hsm: Any, keys: SimKeys, *, adm1: Secret | None = None) -> None:
        self._hsm = hsm
        self._keys = keys
        self._adm1 = adm1  # an ADM1 given by the operator instead of the stored one

    def __repr__(self) -> str:
        return f"SimKeyWriter({self._keys.iccid})"

    def _check(self, iccid: str) -> None:
        if iccid != self._keys.iccid:
            raise SimsmithError(f"keys of SIM {self._keys.iccid} asked for card {iccid}")

    def _secret(self, refs: Sequence[Any], label: str) -> Any:
        buf = bytearray(sum(_len(r) for r in refs))
        slots, pos = [], 0
        for r in refs:
            slots.append(_Slot(pos, _len(r)))
            pos += _len(r)
        try:
            self._hsm.patch_keys(buf, slots, list(refs), owner=self._keys.iccid)
            return Secret(bytes(buf), label)
        finally:
            buf[:] = bytes(len(buf))

    def adm1(self, iccid: str) -> Any:
        self._check(iccid)
        if self._adm1 is not None:
            return self._adm1
        return self._secret([self._keys.credential("ADM1")], "ADM1")

    def card_keys(self, iccid: str) -> Any:
        self._check(iccid)
        return CardKeys(self._secret([self._keys.ki], "Ki"), self._secret([self._keys.opc], "OPc"))


def _len(ref: KeyRef) -> int:
    """The wrapped key's length, from its blob's (either format, hsm_sim.binding)."""
    return wrapped_length(ref.blob)


def package_params(iccid: str, imsi: str) -> SubscriberParams:
    """esim parameters for a stored SIM. The code fields get placeholders that the HSM
    overwrites in `package_patcher`: esim never holds the SIM's PINs, PUKs or ADM1."""
    return SubscriberParams(iccid=iccid, imsi=imsi, pin1="0000", puk1="00000000", pin2="0000",
                            puk2="00000000", adm1="00000000")


def package_patcher(hsm: Any, keys: SimKeys, compiled: Any) -> Callable[[bytearray,
                                                                          Sequence[Any]], None]:
    """esim's `patch_keys` for one SIM: Ki, OPc and OTA keys at their key slots, and the
    PIN/PUK/ADM fields of `compiled` (an esim CompiledTemplate) over their placeholders, all in
    one HSM call."""
    code_slots: list[tuple[Any, Any]] = [
        (_Slot(offset, f.length), keys.credential(PACKAGE_CODES[f.param]))
        for f, offset in zip(compiled.fields, compiled.offsets, strict=True)
        if f.param in PACKAGE_CODES
    ]

    def patch(buf: bytearray, slots: Sequence[Any]) -> None:
        refs: list[Any] = []
        for slot in slots:
            if slot.name == "ki":
                refs.append(keys.ki)
            elif slot.name == "opc":
                refs.append(keys.opc)
            else:
                refs.append(keys.credential(slot.name))
        hsm.patch_keys(buf, [*slots, *(s for s, _ in code_slots)],
                       [*refs, *(r for _, r in code_slots)], owner=keys.iccid)

    return patch


# --- SQN and vectors ------------------------------------------------------------------------------


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


def issue_vectors(engine: Engine, hsm: Any, keys: SimKeys, *, count: int = 1,
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


def fresh_vectors(engine: Engine, hsm: Any, keys: SimKeys, *, count: int = 1,
                  sqn: int | None = None, rand: bytes | None = None) -> list[Any]:
    """`count` Milenage vectors (hsm_sim.milenage.AuthVector) computed inside the HSM, at SQNs
    reserved in the store (`issue_vectors`)."""
    return [v for _, v in issue_vectors(engine, hsm, keys, count=count, sqn=sqn, rand=rand)]


def _after_resync(seq_he: int, seq_ms: int) -> int:
    # C.3.4: SEQ_HE := SEQ_MS. Kept when the store is already above SEQ_MS and within the card's
    # window Δ: vectors issued meanwhile to other callers keep their SQNs unique.
    return seq_ms if seq_he < seq_ms or seq_he - seq_ms >= DELTA else seq_he


def resync_vector(engine: Engine, hsm: Any, keys: SimKeys, rand: bytes, auts: bytes, *,
                  actor: str) -> Any:
    """After a card's synchronisation failure (TS 33.102 §6.3.5): the HSM verifies AUTS (MAC-S)
    and recovers SQN_MS; the store takes SEQ_HE := SEQ_MS (Annex C.3.4; unless it is already
    above it, within Δ) and reserves the next SQN from there, audited as `keys.sqn_resync`; the
    answer is one vector the card accepts (its SEQ is above every SEQ the card has seen)."""
    return issue_resync_vector(engine, hsm, keys, rand, auts, actor=actor)[1]


def issue_resync_vector(engine: Engine, hsm: Any, keys: SimKeys, rand: bytes, auts: bytes, *,
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
