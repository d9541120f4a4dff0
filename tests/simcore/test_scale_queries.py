"""Inventory queries that must stay flat as the store grows (issue #14; migration 0020).

- The SIM counts `inventory summary` reads on PostgreSQL are kept by triggers: after every kind
  of write (COPY of a generated batch, ORM updates of one SIM, a swap's two rows, a failed
  transaction, a delete) they equal a real GROUP BY count.
- Each list filter has an index in ICCID order, so PostgreSQL pages it without a sort and
  without walking the primary key past rows that do not match (checked on the plan the server
  chooses when full scans and sorts are priced out, as they are at 10M rows).
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlmodel import col

from simcore import inventory
from simcore.db import read_session, transaction
from simcore.models import Sim
from tests.conftest import reset_pg

from .helpers import seed

pytestmark = pytest.mark.storage


def _true_counts(engine: Engine) -> dict[tuple[str, str], int]:
    with read_session(engine) as s:
        rows = s.execute(select(col(Sim.kind), col(Sim.state), func.count())
                         .group_by(col(Sim.kind), col(Sim.state))).all()
    return {(k, st): int(n) for k, st, n in rows}


def test_summary_counts_follow_every_write(engine: Engine) -> None:
    seed(engine, 30)
    seed(engine, 12, batch="e1", kind="esim")
    assert inventory.summary(engine).by_kind_state == _true_counts(engine) == {
        ("physical", "in_stock"): 30, ("esim", "in_stock"): 12}
    a = inventory.allocate(engine, "cust-1", actor="t")
    inventory.activate(engine, a.iccid, actor="t")
    b = inventory.allocate(engine, "cust-2", actor="t")
    inventory.allocate(engine, "cust-3", actor="t", kind="esim")
    inventory.swap(engine, a.iccid, actor="t")
    inventory.terminate(engine, b.iccid, actor="t", reason="churn")
    with pytest.raises(RuntimeError), transaction(engine) as s:  # rolled back: no count moves
        s.execute(text("UPDATE sim SET state = 'blank'"))
        raise RuntimeError("abort")
    got = inventory.summary(engine)
    assert got.by_kind_state == _true_counts(engine)
    assert got.total == 42
    assert got.by_kind_state[("physical", "active")] == 1
    with transaction(engine) as s:  # a bulk update of many rows in one statement
        s.execute(text("UPDATE sim SET state = 'blank' WHERE kind = 'esim' AND state = 'in_stock'"))
        s.execute(text("DELETE FROM sim_sqn"))
    assert inventory.summary(engine).by_kind_state == _true_counts(engine)
    assert ("esim", "in_stock") not in inventory.summary(engine).by_kind_state


@pytest.fixture(scope="module")
def clustered(pg_engine: Engine) -> Engine:
    """20,000 SIMs on PostgreSQL in four batches (physical, eSIM, physical, eSIM), the lowest
    half sold, as allocation in ICCID order leaves a store: the SIMs a filter matches sit
    together. Filled once for the plan tests below (they only read)."""
    engine = pg_engine
    reset_pg(engine)
    for i, kind in enumerate(("physical", "esim", "physical", "esim")):
        seed(engine, 5_000, batch=f"b{i}", kind=kind)
    with transaction(engine) as s:
        s.execute(text("UPDATE sim SET state = 'active' WHERE iccid IN "
                       "(SELECT iccid FROM sim ORDER BY iccid LIMIT 10000)"))
    with engine.begin() as c:  # committed: ANALYZE's statistics are transactional
        c.execute(text("ANALYZE sim"))
    return engine


@pytest.mark.parametrize(("filters", "index"), [
    ({"state": "in_stock"}, "ix_sim_state_iccid"),
    ({"kind": "esim"}, "ix_sim_kind_iccid"),
    ({"state": "in_stock", "kind": "esim"}, "ix_sim_state_kind_iccid"),
    ({"batch": "b3"}, "ix_sim_batch_iccid"),
])
def test_list_pages_walk_an_index_in_iccid_order(clustered: Engine, filters: dict[str, str],
                                                 index: str) -> None:
    """The statement list_sims sends, planned by PostgreSQL where the matching SIMs sit
    together: each filter reads its own index
    in ICCID order, never the primary key with a filter (which walks past every non-match).
    On PostgreSQL only (the scale target); SQLite has the same indexes from the models."""
    engine = clustered
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, params, _ctx, _many):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "FROM sim" in statement:
            statements.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        sims = inventory.list_sims(engine, limit=5, **filters)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert sims and all(getattr(x, k) == v for x in sims for k, v in filters.items()
                        if k != "batch")
    assert [x.iccid for x in sims] == sorted(x.iccid for x in sims)
    with engine.connect() as c:
        statement, params = statements[-1]
        plan = "\n".join(r[0] for r in c.exec_driver_sql("EXPLAIN " + statement, params))
    assert f"Index Scan using {index} on sim" in plan, plan
    assert "Sort" not in plan and "sim_pkey" not in plan, plan


@pytest.mark.parametrize("filters", [{"state": "in_stock"}, {"kind": "esim"},
                                     {"state": "in_stock", "kind": "esim"}])
def test_a_page_after_a_deep_cursor_starts_at_the_cursor(clustered: Engine,
                                                         filters: dict[str, str]) -> None:
    """The keyset bound positions the scan: a page after a cursor half-way through the matching
    SIMs (for eSIMs: the last of the sold batch, with 5,000 physical SIMs before the next one)
    touches about as many pages as the first page, instead of walking the matching SIMs before
    the cursor or the non-matching ones after it (on PostgreSQL the filter is a closed range,
    and a B-tree scan still starts at (value, cursor))."""
    engine = clustered
    with read_session(engine) as s:
        q = select(col(Sim.iccid))
        for k, v in filters.items():
            q = q.where(getattr(Sim, k) == v)
        matching = s.execute(q.order_by(col(Sim.iccid))).scalars().all()
    cursor = matching[len(matching) // 2 - 1]
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, params, _ctx, _many):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "FROM sim" in statement:
            statements.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        page = inventory.list_sims(engine, limit=5, after=cursor, **filters)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    start = len(matching) // 2
    assert [x.iccid for x in page] == matching[start:start + 5]
    statement, params = statements[-1]
    with engine.connect() as c:
        plan = "\n".join(r[0] for r in c.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) " + statement, params))
    # The top node's buffers are the execution's total (planning's catalog reads come after
    # "Planning:" and are not counted).
    top = next(line for line in plan.split("Planning")[0].splitlines() if "Buffers:" in line)
    touched = sum(int(n) for n in re.findall(r"(?:hit|read)=(\d+)", top))
    # 5 rows: an index descent (2-3 pages) plus the heap pages of 5 neighbouring rows. Walking
    # thousands of SIMs before or after the cursor would touch hundreds of pages.
    assert touched < 30, plan
