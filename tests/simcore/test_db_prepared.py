"""simcore.db.read_connection / read_session end their transaction with COMMIT, so psycopg
keeps the statements it prepared on the connection (it forgets them all at every ROLLBACK):
the server then runs the hot statements from their cached plans instead of parsing and
planning each again (docs/benchmarks.md, workflows)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, bindparam, event, select, text

from simcore import db
from simcore.models import Sim
from tests.conftest import create_pg_database, drop_pg_database

_PREPARED = text("SELECT count(*) FROM pg_prepared_statements")
_BY_ICCID = select(Sim.iccid).where(Sim.iccid == bindparam("iccid"))  # type: ignore[arg-type]


@pytest.fixture
def one_connection() -> Iterator[Engine]:
    """A migrated database behind a pool of one connection: every block below uses it."""
    url = create_pg_database("simsmith_prep")
    eng = db.make_engine(url, pool_size=1)
    db.upgrade(eng)
    eng.dispose()
    eng = db.make_engine(url, pool_size=1)
    try:
        yield eng
    finally:
        eng.dispose()
        drop_pg_database(url)


def test_reads_keep_the_connections_prepared_statements(one_connection: Engine) -> None:
    eng = one_connection
    for _ in range(8):  # psycopg prepares a statement at its 6th execution on a connection
        with db.read_connection(eng) as c:
            assert c.execute(_BY_ICCID, {"iccid": "1"}).first() is None
        with db.read_session(eng) as s:
            assert s.execute(_BY_ICCID, {"iccid": "1"}).first() is None
    with db.read_connection(eng) as c:
        assert c.execute(_PREPARED).scalar_one() >= 1
    with db.read_session(eng) as s:
        assert s.execute(_PREPARED).scalar_one() >= 1


def test_a_read_that_fails_still_rolls_back(one_connection: Engine) -> None:
    """Only a read that succeeds commits; one that raises is rolled back as before."""
    eng = one_connection
    with pytest.raises(KeyError), db.read_connection(eng) as c:
        c.execute(text("CREATE TEMP TABLE t_read (x int)"))  # would survive a COMMIT
        raise KeyError("x")
    with db.read_connection(eng) as c:
        assert c.execute(text("SELECT to_regclass('pg_temp.t_read')")).scalar() is None
    with db.read_session(eng) as s:
        s.execute(text("CREATE TEMP TABLE t_read2 (x int)"))
    with db.read_connection(eng) as c:
        assert c.execute(text("SELECT to_regclass('pg_temp.t_read2')")).scalar() is not None



def test_the_skip_locked_picks_carry_their_limit_in_the_text(one_connection: Engine) -> None:
    """The claims that pick rows with `LIMIT n FOR UPDATE SKIP LOCKED` (a SIM from stock, a
    free MSISDN, due workflow runs) send their LIMIT as part of the statement: as a parameter
    (SQLAlchemy's default) PostgreSQL kept custom plans for them at the benchmark's scale and
    planned each claim again on every execution (docs/benchmarks.md)."""
    from simcore import inventory, msisdn_pool
    from simcore.workflows import engine as wf
    from simcore.workflows.service import start_activation
    from tests.simcore.helpers import seed

    eng = one_connection
    seed(eng, 4)
    msisdn_pool.add_msisdn_range(eng, "+447700000000", "+447700000009", name="n", actor="t")
    sent: list[str] = []

    def capture(_c, _cur, statement, *_):  # type: ignore[no-untyped-def]
        if "SKIP LOCKED" in statement:
            sent.append(" ".join(statement.split()))

    event.listen(eng, "before_cursor_execute", capture)
    try:
        sim = inventory.allocate(eng, "c1", actor="t")
        msisdn_pool.assign(eng, "auto", sim.iccid, actor="t")
        start_activation(eng, {"subscriber_ref": "r1"}, actor="t")
        assert len(wf.claim(eng, "o", limit=2, peek=False)) == 1
    finally:
        event.remove(eng, "before_cursor_execute", capture)
    # The workflow claim is one statement run straight on the DBAPI connection on PostgreSQL
    # (engine._claim_direct: no SQLAlchemy events): its text read from it.
    sent.append(" ".join(wf._claim_direct(eng, 2).sql.split()))
    assert len(sent) == 3, sent
    assert all(re.search(r"LIMIT \d+ FOR UPDATE SKIP LOCKED", q) for q in sent), sent
