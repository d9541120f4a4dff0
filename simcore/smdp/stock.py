"""The stock and order book of simsmith's SM-DP+ (GSMA SGP.22 v2.5 §5.3: the Profiles an
operator orders with DownloadOrder, §5.3.1, belong to that operator).

- `stock`: eSIM profiles generated or imported into the inventory become available at the
  SM-DP+ (profile state `available`, `stock_profiles`), optionally for one
  operator (functionRequesterIdentifier): the batch is recorded in `es2plus_stock`, and
  DownloadOrder by any other operator neither sees nor takes its profiles (8.2.1 / 1.2 by
  ICCID, 8.2.5 / 3.9 by Profile Type). A batch stocked without an operator is open to every
  operator (a one-operator deployment).
- `list_orders`: the orders the SM-DP+ holds (`es2plus_order`) with each profile's state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, select, update
from sqlmodel import Session, col

from simcore import audit
from simcore.db import read_session, transaction
from simcore.errors import InvalidInput
from simcore.inventory import batch_id as find_batch_id
from simcore.lifecycle import ProfileState, SimState
from simcore.models import Batch, Sim, utcnow
from simcore.smdp.es9plus_models import SmdpDownloadCounter
from simcore.smdp.models import Es2PlusOrder, Es2PlusStock


def assign_stock(s: Session, batch_ids: Iterable[int], operator: str) -> None:
    """Record that the profiles of `batch_ids` are stocked for `operator` (replacing any earlier
    owner), in the caller's transaction."""
    if not operator or len(operator) > 128:
        raise InvalidInput("operator", "empty or longer than 128 characters",
                           expected="a functionRequesterIdentifier of 1..128 characters")
    for batch_id in batch_ids:
        row = s.get(Es2PlusStock, batch_id)
        if row is None:
            s.add(Es2PlusStock(batch_id=batch_id, operator=operator))
        else:
            row.operator = operator
            s.add(row)
    s.flush()


def stock_owner(s: Session, batch_id: int | None) -> str | None:
    """The operator a batch was stocked for, None when open to every operator."""
    if batch_id is None:
        return None
    return s.execute(select(col(Es2PlusStock.operator)).where(
        col(Es2PlusStock.batch_id) == batch_id)).scalar_one_or_none()


def batches_open_to(s: Session, batch_ids: list[int], operator: str) -> list[int]:
    """Those of `batch_ids` (order kept) that `operator` may order from: its own and the
    unassigned."""
    if not batch_ids:
        return []
    rows = s.execute(select(col(Es2PlusStock.batch_id), col(Es2PlusStock.operator)).where(
        col(Es2PlusStock.batch_id).in_(batch_ids))).all()
    owned = {b: o for b, o in rows}
    return [b for b in batch_ids if owned.get(b, operator) == operator]


def stock_by_batch(s: Session) -> dict[int, str]:
    """batch id → operator for every assigned batch."""
    return {b: o for b, o in s.execute(select(col(Es2PlusStock.batch_id),
                                              col(Es2PlusStock.operator))).all()}




def stock(engine: Engine, *, actor: str, batch: str | None = None,
          operator: str | None = None) -> int:
    """Make in-stock eSIM profiles without an SM-DP+ state available at the SM-DP+ (all, or
    `batch`'s), for `operator` when given (then `batch` is required). Returns how many became
    available. The owner is recorded first: a crash in between leaves a batch assigned whose
    profiles are not yet available, and running the command again completes it."""
    if operator is not None:
        if batch is None:
            raise InvalidInput("batch", "missing", expected="--batch with --operator: stock is "
                               "assigned to an operator by batch")
        with transaction(engine) as s:
            assign_stock(s, [find_batch_id(s, batch)], operator)
    return stock_profiles(engine, actor=actor, batch=batch)


@dataclass(frozen=True)
class SmdpOrder:
    """An order at the SM-DP+: who placed it, the profile's state, the Matching ID."""

    iccid: str
    requester: str
    profile_state: str | None
    profile_type: str | None
    matching_id: str | None
    eid: str | None
    confirmation_code_required: bool
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None  # the download order's validity (order_validity)


def list_orders(engine: Engine, *, state: str | None = None, requester: str | None = None,
                after: str | None = None, limit: int = 100) -> list[SmdpOrder]:
    """The SM-DP+'s orders in ICCID order, from after ICCID `after` (for paging)."""
    stmt = (select(Es2PlusOrder, col(Sim.profile_state), col(Sim.eid),
                   col(SmdpDownloadCounter.expires_at))
            .join(Sim, col(Sim.iccid) == col(Es2PlusOrder.iccid))
            .outerjoin(SmdpDownloadCounter,
                       (col(SmdpDownloadCounter.iccid) == col(Es2PlusOrder.iccid))
                       & (col(SmdpDownloadCounter.matching_id) == col(Es2PlusOrder.matching_id))))
    if state is not None:
        stmt = stmt.where(col(Sim.profile_state) == state)
    if requester is not None:
        stmt = stmt.where(col(Es2PlusOrder.requester) == requester)
    if after is not None:
        stmt = stmt.where(col(Es2PlusOrder.iccid) > after)
    with read_session(engine) as s:
        rows = s.execute(stmt.order_by(col(Es2PlusOrder.iccid)).limit(limit)).all()
    return [SmdpOrder(o.iccid, o.requester, st, o.profile_type, o.matching_id, eid,
                      o.cc_hash is not None, o.created_at, o.updated_at, expires)
            for o, st, eid, expires in rows]


def stock_summary(engine: Engine) -> list[dict[str, object]]:
    """Per eSIM batch: its operator (None: open to all) and profiles per SM-DP+ state."""
    from sqlalchemy import func

    with read_session(engine) as s:
        owners = stock_by_batch(s)
        rows = s.execute(select(col(Batch.id), col(Batch.name), col(Batch.profile),
                                col(Sim.profile_state), func.count())
                         .join(Sim, col(Sim.batch_id) == col(Batch.id))
                         .where(col(Batch.kind) == "esim")
                         .group_by(col(Batch.id), col(Batch.name), col(Batch.profile),
                                   col(Sim.profile_state))
                         .order_by(col(Batch.id))).all()
    out: dict[int, dict[str, object]] = {}
    for bid, name, profile_type, st, n in rows:
        entry = out.setdefault(bid, {"batch": name, "profile_type": profile_type,
                                     "operator": owners.get(bid), "profiles": {}})
        entry["profiles"][st or "none"] = int(n)  # type: ignore[index]
    return list(out.values())


__all__ = ["SmdpOrder", "assign_stock", "batches_open_to", "list_orders", "stock",
           "stock_by_batch", "stock_owner", "stock_summary"]


def stock_profiles(engine: Engine, *, actor: str, batch: str | None = None) -> int:
    """Put in-stock eSIM profiles without an SM-DP+ state (e.g. just generated) into the
    SM-DP+'s pool: profile state `available`. Returns how many."""
    with transaction(engine) as s:
        cond = and_(col(Sim.kind) == "esim", col(Sim.state) == SimState.IN_STOCK,
                    col(Sim.profile_state).is_(None))
        if batch:
            cond = and_(cond, col(Sim.batch_id) == find_batch_id(s, batch))
        n = int(s.execute(update(Sim).where(cond).values(
            profile_state=ProfileState.AVAILABLE.value, version=col(Sim.version) + 1,
            updated_at=utcnow())).rowcount)  # type: ignore[attr-defined]
        if n:
            audit.append(s, actor=actor, action="esim.profiles_available",
                         subject_type="batch", subject_id=batch or "*", details={"count": n},
                         outbox=audit.Outbox("esim.profiles_available", "batch", batch or "*",
                                             {"count": n}))
    return n
