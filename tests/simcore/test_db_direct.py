"""simcore.db.DirectStatement: one compiled statement on a pooled DBAPI connection — values
converted by their column types, and the connection back in the pool whatever happened to it
(a connection the server closed mid-statement must not cost the pool a slot)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, bindparam, column, func, select, table

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


def test_kept_statements_share_this_threads_connection(engine: Engine) -> None:
    """keep=True (PostgreSQL): every statement of a thread on one connection kept out of the
    pool, in autocommit; another thread has its own. SQLite: the pool, as without it."""
    import threading

    pid = db.DirectStatement(engine, select(func.count()), keep=True)
    before = engine.pool.checkedout()  # type: ignore[attr-defined]
    first = pid.rows()
    assert pid.rows() == first
    assert engine.pool.checkedout() == before  # type: ignore[attr-defined]
    if engine.dialect.name != "postgresql":
        return
    backend = db.DirectStatement(engine, select(func.pg_backend_pid()), keep=True)
    mine = backend.rows()[0][0]
    assert backend.rows()[0][0] == mine
    autocommit = db.DirectStatement(engine, select(func.current_setting("transaction_isolation"),
                                                   func.txid_current_if_assigned()), keep=True)
    assert autocommit.rows()[0][1] is None  # no transaction left open between statements
    theirs: list[int] = []
    worker = threading.Thread(target=lambda: theirs.append(backend.rows()[0][0]))
    worker.start()
    worker.join()
    assert theirs and theirs[0] != mine
    assert backend.rows()[0][0] == mine


def test_a_kept_connection_that_failed_is_replaced(pg_engine: Engine) -> None:
    backend = db.DirectStatement(pg_engine, select(func.pg_backend_pid()), keep=True)
    first = backend.rows()[0][0]
    kill = db.DirectStatement(pg_engine, select(func.pg_terminate_backend(func.pg_backend_pid())),
                              keep=True)
    psycopg = pytest.importorskip("psycopg")
    with pytest.raises(psycopg.OperationalError):
        kill.rows()
    second = backend.rows()[0][0]
    assert second != first and backend.rows()[0][0] == second


def test_an_ended_threads_kept_connection_is_closed(pg_engine: Engine) -> None:
    """Threads that ran kept statements and ended leave no server process behind: the next
    thread that needs a connection takes one of theirs over (the same thread ident) or closes
    them."""
    import threading

    backend = db.DirectStatement(pg_engine, select(func.pg_backend_pid()), keep=True)
    activity = table("pg_stat_activity", column("pid"))
    alive = db.DirectStatement(pg_engine, select(func.count()).select_from(activity).where(
        activity.c.pid == bindparam("pid")))
    together = threading.Barrier(2)
    ended: list[int] = []

    def run() -> None:
        ended.append(backend.rows()[0][0])
        together.wait()  # both alive at once: two threads, two connections

    workers = [threading.Thread(target=run) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(set(ended)) == 2
    later: list[int] = []
    worker = threading.Thread(target=lambda: later.append(backend.rows()[0][0]))
    worker.start()
    worker.join()
    assert [p for p in ended if p not in later and alive.rows(pid=p)[0][0]] == []


def test_kept_connections_not_synchronous_commit_without_waiting_for_the_flush(
        pg_engine: Engine) -> None:
    """synchronous=False: the statement runs on a kept connection of its own whose commits do
    not wait for the WAL flush (an RSP session's writes); the default ones do (the reports)."""
    setting = select(func.current_setting("synchronous_commit"), func.pg_backend_pid())
    lazy = db.DirectStatement(pg_engine, setting, keep=True, synchronous=False)
    strict = db.DirectStatement(pg_engine, setting, keep=True)
    (off, lazy_pid), = lazy.rows()
    (on, strict_pid), = strict.rows()
    assert (off, on) == ("off", "on") and lazy_pid != strict_pid
    assert db.DirectStatement(pg_engine, setting).rows()[0][0] == "on"  # the pool's: untouched


def test_a_discarded_engine_goes_with_its_cached_statements_and_kept_connections(
        pg_engine: Engine) -> None:
    """Hot paths cache their DirectStatements per engine (WeakKeyDictionary keyed by it, e.g.
    the workflow engine's peek). Before, each statement held its engine, so such an entry kept
    the engine alive for good — and with it the connections kept out of its pool, one server
    process each. Now the engine goes when discarded, and its kept connections are closed."""
    import gc
    import weakref

    from sqlalchemy import text

    from simcore.models import utcnow
    from simcore.workflows import engine as workflows

    cache: weakref.WeakKeyDictionary[Engine, db.DirectStatement] = weakref.WeakKeyDictionary()
    other = db.make_engine(pg_engine.url.render_as_string(hide_password=False))
    cache[other] = db.DirectStatement(other, select(func.pg_backend_pid()), keep=True)
    (backend,), = cache[other].rows()
    assert workflows._any_due(other).rows(now=utcnow()) == []  # cached for `other` too
    gone = weakref.ref(other)
    del other
    gc.collect()
    assert gone() is None
    assert not cache
    with pg_engine.connect() as c:
        alive = c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                          {"p": backend}).scalar()
    assert alive == 0


def _es9plus_kept_statements(engine: Engine) -> dict[str, db.DirectStatement]:
    """Every kept statement of a download (simcore.smdp): sessions, orders, reports."""
    from simcore.smdp.download_orders import StoreDownloadOrders
    from simcore.smdp.es9plus import StoreSessions

    sessions = StoreSessions(engine)
    orders = StoreDownloadOrders(engine, "smdp.example", sessions=sessions)
    assert orders._one is not None
    return {"session get": sessions._get, "session put": sessions._put,
            "session delete": sessions._delete, "released": orders._released,
            "session with order": orders._session_with_order,
            "session with released": orders._session_with_released,
            "delivered": orders._one._delivered, **{
                f"install {target}": st for target, st in orders._one._install.items()}}


def test_kept_statements_are_postgresqls_own_text(pg_engine: Engine) -> None:
    """A kept statement is compiled with `$n` placeholders (one per name, in order) — exactly
    the text psycopg would make of the named form on every call — and runs on a raw cursor."""
    from psycopg._queries import PostgresQuery
    from psycopg.adapt import Transformer

    for name, kept in _es9plus_kept_statements(pg_engine).items():
        named = db.DirectStatement(pg_engine, kept.statement)  # the pool's: the named form
        assert "%(" in named.sql and "%(" not in kept.sql and "$1" in kept.sql, name
        converted = PostgresQuery(Transformer())
        converted.convert(named.sql, {n: None for n in named._names})
        assert converted.query.decode() == kept.sql, name
        assert list(kept._names) == list(dict.fromkeys(named._names)), name  # in $n order


def test_a_kept_connection_keeps_its_cursors(pg_engine: Engine) -> None:
    """Each statement on a kept connection runs on the cursor kept with it (psycopg's
    RawCursor for DirectStatements), not a new one per statement; a failure drops both."""
    from psycopg import RawCursor

    from simcore.smdp.es9plus import StoreSessions

    sessions = StoreSessions(pg_engine)
    assert sessions.get(bytes(16)) is None
    kept = db.kept_connections(pg_engine, synchronous=False)
    cursor = kept._cursor(raw=True)
    assert isinstance(cursor, RawCursor) and cursor.connection is kept.connection()
    sessions.delete(bytes(16))
    assert sessions.get(bytes(16)) is None
    assert kept._cursor(raw=True) is cursor and not cursor.closed
    kill = db.DirectStatement(pg_engine, select(func.pg_terminate_backend(func.pg_backend_pid())),
                              keep=True, synchronous=False)
    psycopg = pytest.importorskip("psycopg")
    with pytest.raises(psycopg.OperationalError):
        kill.rows()
    assert sessions.get(bytes(16)) is None  # on a new connection, with a new cursor
    assert kept._cursor(raw=True) is not cursor
