"""simcore.db.DirectStatement: one compiled statement on a pooled DBAPI connection — values
converted by their column types, and the connection back in the pool whatever happened to it
(a connection the server closed mid-statement must not cost the pool a slot)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, bindparam, func, select

from simcore import db
from simcore.models import Sim


def test_a_read_converts_its_columns_and_returns_the_connection(engine: Engine) -> None:
    st = db.DirectStatement(engine, select(func.count()).select_from(Sim)
                            .where(Sim.iccid == bindparam("iccid")))  # type: ignore[arg-type]
    assert st.rows(iccid="8988211000000000000") == [(0,)]
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_connection_killed_mid_statement_goes_back_to_the_pool(pg_engine: Engine) -> None:
    """The statement ends its own server process: it fails, and the pool neither keeps a
    checked-out slot nor hands the dead connection out again."""
    before = pg_engine.pool.checkedout()  # type: ignore[attr-defined]
    kill = db.DirectStatement(pg_engine, select(func.pg_terminate_backend(func.pg_backend_pid())))
    psycopg = pytest.importorskip("psycopg")
    with pytest.raises(psycopg.OperationalError):  # the raw driver's: no SQLAlchemy wrapping
        kill.rows()
    assert pg_engine.pool.checkedout() == before  # type: ignore[attr-defined]
    ok = db.DirectStatement(pg_engine, select(func.pg_backend_pid()))
    for _ in range(pg_engine.pool.size() + 1):  # type: ignore[attr-defined]
        assert ok.rows()[0][0] > 0
