"""The inventory store and the HSM together: a SIM's keys made in bulk, found again, and brought
to the HSM's current blob format, without a clear key ever leaving the HSM's methods.

- `generate_keys` gives SIMs without keys a Ki and an OPc (random, or derived from the
  operator's OP) and the access codes PIN1/PUK1/PIN2/PUK2/ADM1 (made inside the HSM), optionally
  the OTA keys of the profile's security domain; the store keeps only `KeyRef` tokens
  (`Sim.ki_ref`, `Sim.opc_ref`, `SimCredential`). SIMs that already have keys are skipped, so a
  run that stopped half-way is simply run again.
- `load_keys` reads one SIM's references back (`SimKeys`; its repr shows names only).
- `rewrap_keys` brings every stored reference to the HSM's current blob format (hsm_sim's v1
  RFC 5649 blobs to v2, docs/hsm.md "Blob format"), page by page (`simsmith hsm rewrap`).

Handing keys to cards and packages: simcore.key_writers. SQN and vectors: simcore.sqn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, bindparam, or_, select, update
from sqlmodel import col

from hsm_sim.hsm import Hsm, generate_sim_keys
from hsm_sim.keyref import KeyRef, KeyType
from simcore import audit
from simcore.db import connection_transaction, read_session, transaction
from simcore.errors import InvalidInput, NotFound
from simcore.identifiers import Iccid
from simcore.inventory import SIM_TABLE, batch_id, list_sims
from simcore.models import Sim, SimCredential, utcnow

__all__ = [
    "CODES",
    "OTA_KEYS",
    "KeyGenResult",
    "MissingKeys",
    "RewrapResult",
    "SimKeys",
    "batch_keys",
    "generate_keys",
    "load_keys",
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


# --- generation ---------------------------------------------------------------------------------


def _keys_for(hsm: Hsm, iccid: str, op: Any, codes: dict[str, tuple[str, int]],
              ota: Iterable[str]) -> tuple[Any, Any, list[tuple[str, Any]]]:
    ki, opc = generate_sim_keys(hsm, iccid, op)
    creds = [(name, hsm.generate_code(iccid, KeyType(kt), digits))
             for name, (kt, digits) in codes.items()]
    creds += [(name, hsm.generate(iccid, KeyType(OTA_KEYS[name]))) for name in ota]
    return ki, opc, creds


def generate_keys(
    engine: Engine,
    hsm: Hsm,
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


def _rewrap_tokens(hsm: Hsm, tokens: Sequence[str]) -> dict[str, str]:
    """{old token: new token} for the tokens of `hsm`'s backend that `hsm.rewrap` changed."""
    refs = [KeyRef.from_token(t) for t in tokens]
    mine = [(t, r) for t, r in zip(tokens, refs, strict=True) if r.backend == hsm.backend]
    new = hsm.rewrap([r for _, r in mine]) if mine else []
    return {t: n.to_token() for (t, r), n in zip(mine, new, strict=True) if n.blob != r.blob}


def rewrap_keys(engine: Engine, hsm: Hsm, *, actor: str, page: int = 1000) -> RewrapResult:
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
