"""Engines, transactions and migrations for the inventory store.

One URL picks the database: SQLite (the embedded default; WAL, `BEGIN IMMEDIATE` so writers
queue instead of failing) or PostgreSQL (psycopg 3). Alembic migrations ship inside the package
(simcore/migrations) and run programmatically: `simsmith db upgrade`. Every command checks the
schema first and refuses an unmigrated database with a message saying what to run.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from simcore.errors import SimsmithError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class SchemaNotCurrent(SimsmithError):
    """The database is not at the schema revision this simsmith expects."""


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, pool_size: int = 40) -> Engine:
    """An engine for `url`. SQLite files get their directory created, WAL and a busy timeout."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 60},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _configure_sqlite(engine)
        return engine
    # No pre-ping (a round trip per transaction); connections are recycled hourly instead.
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=3600)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: concurrent writers wait their turn (busy
        # timeout) instead of failing with SQLITE_BUSY when a read lock would need upgrading.
        # Read-only work (execution option readonly=True) begins deferred and never queues.
        if conn.get_execution_options().get("readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


_sqlite_writer_locks: weakref.WeakKeyDictionary[Engine, threading.Lock] = (
    weakref.WeakKeyDictionary()
)
_locks_guard = threading.Lock()


def _writer_lock(engine: Engine) -> threading.Lock | None:
    """SQLite has one writer at a time. Threads of one process queue on a Python lock (woken at
    once) rather than on SQLite's busy handler (which sleeps in steps of up to 100 ms); other
    processes still wait through the busy timeout."""
    if not is_sqlite(engine):
        return None
    with _locks_guard:
        lock = _sqlite_writer_locks.get(engine)
        if lock is None:
            lock = _sqlite_writer_locks[engine] = threading.Lock()
        return lock


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any exception."""
    lock = _writer_lock(engine)
    with (
        lock if lock is not None else nullcontext(),
        Session(engine, expire_on_commit=False) as session,
        session.begin(),
    ):
        yield session


# Work inside a transaction takes either an ORM session or a Core connection; hot paths use the
# connection (a third of the CPU per statement).
Tx = Session | Connection


def core(tx: Tx) -> Connection:
    """The Core connection under a session or connection."""
    return tx.connection() if isinstance(tx, Session) else tx


@contextmanager
def connection_transaction(engine: Engine) -> Iterator[Connection]:
    """transaction() without the ORM session: a Core connection that commits on success."""
    lock = _writer_lock(engine)
    with lock if lock is not None else nullcontext(), engine.begin() as conn:
        yield conn


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reads only: on SQLite it does not take the write lock."""
    with engine.connect().execution_options(readonly=True) as conn, Session(bind=conn) as session:
        yield session


# --- migrations -------------------------------------------------------------------------------


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def head_revisions() -> set[str]:
    """The latest revision of every migration branch (each area of simsmith may own one)."""
    return set(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())


def head_revision() -> str:
    """The heads as one printable string."""
    return ",".join(sorted(head_revisions()))


def current_revisions(engine: Engine) -> set[str]:
    with engine.connect().execution_options(readonly=True) as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def current_revision(engine: Engine) -> str | None:
    current = current_revisions(engine)
    return ",".join(sorted(current)) if current else None


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Migrate the database to `revision` (default: the latest of every branch)."""
    command.upgrade(alembic_config(engine), "heads" if revision == "head" else revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def check_schema(engine: Engine) -> None:
    """Raise SchemaNotCurrent unless the database is at every head revision."""
    current = current_revisions(engine)
    if current == head_revisions():
        return
    where = engine.url.render_as_string(hide_password=True)
    if not current:
        raise SchemaNotCurrent(
            f"database {where} is not initialised (no schema): run `simsmith db upgrade`"
        )
    raise SchemaNotCurrent(
        f"database {where} is at schema revision {current_revision(engine)}, this simsmith "
        f"needs {head_revision()}: run `simsmith db upgrade`"
    )
