"""Engines, transactions and migrations for the inventory store.

One URL picks the database: SQLite (the embedded default; WAL, `BEGIN IMMEDIATE` so writers
queue instead of failing) or PostgreSQL (psycopg 3). Alembic migrations ship inside the package
(simcore/migrations) and run programmatically: `simsmith db upgrade`. Every command checks the
schema first and refuses an unmigrated database with a message saying what to run.
"""

from __future__ import annotations

import copy
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
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

try:
    import fcntl
except ImportError:  # not POSIX: threads of one process still queue on the Python lock
    fcntl = None  # type: ignore[assignment]

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
    else:
        # No pre-ping (a round trip per transaction); connections are recycled hourly instead.
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                               pool_recycle=3600)
    from simcore.telemetry import instrument_engine

    instrument_engine(engine)  # statement spans while tracing is on; nothing otherwise
    return engine


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


class SqliteWriterLock:
    """SQLite has one writer at a time. Writers queue here instead of in SQLite's busy handler,
    which polls in sleeps of up to 100 ms (a tail latency of hundreds of ms under load): threads
    of one process on a Python lock, processes (several API workers on one file) on an exclusive
    flock(2) of `<database>.writer-lock`, which the kernel hands to the next waiter at once and
    releases if its holder dies. Writers that do not take it (another program) still meet the
    busy timeout."""

    def __init__(self, path: str | None) -> None:
        self._thread_lock = threading.Lock()
        self._path = path
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int:
        # A forked child must not share its parent's open file description (and so its lock).
        if self._fd is None or self._pid != os.getpid():
            assert self._path is not None
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        if self._path is None or fcntl is None:
            return
        try:
            fcntl.flock(self._file(), fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._path is not None and fcntl is not None and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


_sqlite_writer_locks: weakref.WeakKeyDictionary[Engine, SqliteWriterLock] = (
    weakref.WeakKeyDictionary()
)
_locks_guard = threading.Lock()


def _writer_lock(engine: Engine) -> SqliteWriterLock | None:
    """The engine's SqliteWriterLock (None for other databases: they lock rows)."""
    if not is_sqlite(engine):
        return None
    with _locks_guard:
        lock = _sqlite_writer_locks.get(engine)
        if lock is None:
            database = engine.url.database
            on_disk = bool(database) and database != ":memory:" and "mode=memory" not in str(
                engine.url)
            lock = SqliteWriterLock(f"{database}.writer-lock" if on_disk else None)
            _sqlite_writer_locks[engine] = lock
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
        session.info[_CONNECTION] = None  # one transaction: core() may keep its connection
        yield session


# Work inside a transaction takes either an ORM session or a Core connection; hot paths use the
# connection (a third of the CPU per statement).
Tx = Session | Connection


_CONNECTION = "simsmith.connection"


def core(tx: Tx) -> Connection:
    """The Core connection under a session or connection. A transaction() session's is asked
    for once and kept (Session.connection() costs more than a simple statement on SQLite);
    other sessions may commit and move to another connection, so theirs is asked each time."""
    if not isinstance(tx, Session):
        return tx
    info = tx.info
    if _CONNECTION not in info:
        return tx.connection()
    conn: Connection | None = info[_CONNECTION]
    if conn is None:
        conn = info[_CONNECTION] = tx.connection()
    return conn


@contextmanager
def connection_transaction(engine: Engine) -> Iterator[Connection]:
    """transaction() without the ORM session: a Core connection that commits on success."""
    lock = _writer_lock(engine)
    with lock if lock is not None else nullcontext(), engine.begin() as conn:
        yield conn


class DirectStatement:
    """A Core statement compiled once for `engine`'s dialect and run straight on a pooled DBAPI
    connection, its parameters and columns converted by their SQLAlchemy types (UtcDateTime,
    Boolean, …) as Core would. For the hottest paths only (the SM-DP+'s ES9+ steps): the
    Connection's begin / commit / rollback events and per-execution bookkeeping cost four to
    six times a one-row statement. Not traced (no statement spans).

    Every statement runs alone in autocommit — one statement is atomic — so it is one round
    trip: no BEGIN, COMMIT or the pool's ROLLBACK (which psycopg skips when no transaction is
    open). A write (`write=True`) queues behind the SQLite writer lock like transaction(); a
    read takes no lock.

    It holds its engine weakly: the per-engine caches of statements (WeakKeyDictionary keyed
    by the engine) then let a discarded engine go, and its kept connections close with it.

    On a kept connection (PostgreSQL) the statement is compiled with PostgreSQL's own `$n`
    placeholders and run on a raw cursor with its parameters in order, the SQL as bytes, the
    cursor kept with the connection: psycopg then neither parses the query for `%(name)s` nor
    encodes and hashes it again, nor reorders a mapping, nor makes a cursor per statement —
    about 45 → 25 µs of client CPU for a one-row read (docs/benchmarks.md, smdp, fourth
    pass). The text is the one psycopg's conversion of the named form gives
    (tests/simcore/test_db_direct.py compares them)."""

    def __init__(self, engine: Engine, statement: Any, *, write: bool = False,
                 keep: bool = False, synchronous: bool = True) -> None:
        dialect = engine.dialect
        # PostgreSQL: on this thread's kept connection (KeptConnections), not the pool's —
        # one whose commits do not wait for the WAL flush when not `synchronous`
        self._keep = keep and dialect.name == "postgresql"
        compiled = statement.compile(dialect=_numeric_dollar(dialect) if self._keep
                                     else dialect)
        self._engine = weakref.ref(engine)
        self.statement = statement
        self.sql = str(compiled)
        self.write = write
        self._synchronous = synchronous
        self._kept: KeptConnections | None = None  # resolved on first use
        binds = {name: compiled.binds[name] for name in compiled.bind_names.values()}
        positional = self._keep or dialect.positional
        self._names: tuple[str, ...] = tuple(compiled.positiontup or ()) if positional \
            else tuple(binds)
        self._positional = positional
        # SQLite's connections run in autocommit already (isolation_level None, _configure_sqlite)
        self._set_autocommit = dialect.name == "postgresql"
        self._bind = {name: p for name, b in binds.items()
                      if (p := b.type.dialect_impl(dialect).bind_processor(dialect)) is not None}
        # Values fixed in the statement (literal(…), comparisons with constants).
        self._fixed = {name: b.value for name, b in binds.items() if b.value is not None}
        columns = getattr(statement, "selected_columns", None) or ()
        # Known here, not asked of the cursor per call (psycopg builds its description's
        # columns on each access).
        self._returns_rows = bool(getattr(statement, "is_select", False)
                                  or getattr(compiled, "effective_returning", None))
        self._result = [c.type.dialect_impl(dialect).result_processor(dialect, None)
                        for c in columns]
        # the columns to convert (the rest are the driver's values as they are)
        self._convert = tuple((i, p) for i, p in enumerate(self._result) if p is not None)
        self._plan = tuple((name, self._bind.get(name)) for name in self._names)

    def __repr__(self) -> str:
        return f"DirectStatement({self.sql!r})"

    @property
    def sql(self) -> str:
        """The statement's text for the driver."""
        return self._sql

    @sql.setter
    def sql(self, text: str) -> None:
        self._sql = text
        self._sql_bytes = text.encode()  # psycopg's form: encoded once, its hash kept

    @property
    def engine(self) -> Engine:
        engine = self._engine()
        if engine is None:
            raise RuntimeError("the engine of this statement is gone")
        return engine

    def _parameters(self, params: dict[str, Any]) -> Any:
        fixed = self._fixed
        values = []
        for name, process in self._plan:
            value = params[name] if name in params else fixed[name]
            values.append(value if process is None else process(value))
        return values if self._positional else dict(zip(self._names, values, strict=True))

    def _row(self, row: Any) -> tuple[Any, ...]:
        if len(row) != len(self._result):
            raise ValueError(f"{len(row)} columns, not {len(self._result)}")
        if not self._convert:
            return tuple(row)
        values = list(row)
        for i, process in self._convert:
            values[i] = process(values[i])
        return tuple(values)

    def rows(self, **params: Any) -> list[tuple[Any, ...]]:
        """Run the statement; its rows, each value converted by its column's type."""
        return self._run(params)[0]

    def count(self, **params: Any) -> int:
        """Run the statement; the rows it changed."""
        return self._run(params)[1]

    def _run(self, params: dict[str, Any]) -> tuple[list[tuple[Any, ...]], int]:
        rows: Sequence[Any]
        if self._keep:
            kept = self._kept
            if kept is None:
                kept = self._kept = kept_connections(self.engine, synchronous=self._synchronous)
            rows, changed = kept.run(self._sql_bytes, self._parameters(params),
                                     returns_rows=self._returns_rows, raw=True)
            return [self._row(r) for r in rows], changed
        lock = _writer_lock(self.engine) if self.write else None
        with lock if lock is not None else nullcontext():
            raw = self.engine.raw_connection()
            driver: Any = raw.driver_connection
            try:
                if self._set_autocommit:
                    driver.autocommit = True  # the pool hands out idle connections only
                cursor = raw.cursor()
                cursor.execute(self.sql, self._parameters(params))
                rows = cursor.fetchall() if self._returns_rows else []
                changed = cursor.rowcount
                cursor.close()
            finally:
                if self._set_autocommit:
                    driver.autocommit = False  # as SQLAlchemy expects it back
                raw.close()
        return [self._row(r) for r in rows], changed


def _numeric_dollar(dialect: Any) -> Any:
    """`dialect` (PostgreSQL's, initialised) compiling `$n` placeholders, each name's once."""
    raw = copy.copy(dialect)
    raw.paramstyle, raw.positional = "numeric_dollar", True
    raw.identifier_preparer = raw.preparer(raw)
    return raw


_DIRECT: weakref.WeakKeyDictionary[Engine, dict[tuple[int, bool], tuple[Any, DirectStatement]]] = (
    weakref.WeakKeyDictionary())


def direct(engine: Engine, statement: Any, *, write: bool = False) -> DirectStatement:
    """`statement` — a statement built once (a module constant) — as a DirectStatement for
    `engine`, compiled on first use and kept as long as the engine is (the statement is kept
    with it, so its id names it)."""
    cache = _DIRECT.get(engine)
    if cache is None:
        cache = _DIRECT.setdefault(engine, {})
    found = cache.get((id(statement), write))
    if found is None:  # two threads may both compile it: either result serves
        found = cache[id(statement), write] = (statement,
                                               DirectStatement(engine, statement, write=write))
    return found[1]


class KeptConnections:
    """PostgreSQL connections in autocommit kept open, one per thread, for an engine's hottest
    single statements (DirectStatement(keep=True): the SM-DP+'s ES9+ steps). Each is taken from
    the pool once and detached from it, so a statement costs its round trip only — the pool's
    checkout and return (the fairy's bookkeeping, its reset) cost more CPU than a one-row
    statement's own client work, and psycopg keeps the statements it prepared on it. A
    connection that failed is closed and replaced on the next use; a forked child never uses
    (nor closes) its parent's. Not counted in the pool's size: one more connection per thread
    that runs such statements; an ended thread's is closed when another thread next opens or
    takes over one.

    `synchronous=False`: the connections commit without waiting for the WAL to reach the disk
    (synchronous_commit off) — for writes a database crash may lose without harm, never for
    records: a commit is visible to every other connection at once all the same; only its
    durability waits for the WAL writer (a fraction of a second). A flush per commit cost
    PostgreSQL twice the CPU of a one-row upsert and ~1 ms of latency (docs/benchmarks.md,
    smdp)."""

    def __init__(self, engine: Engine, *, synchronous: bool = True) -> None:
        self._engine = weakref.ref(engine)
        self._synchronous = synchronous
        # thread ident -> (its DBAPI connection, detached from the pool, the thread). Only the
        # DBAPI connection: the pool's wrapper would hold the pool, whose first-connect listener
        # holds the engine — these connections would keep their engine alive for good.
        self._by_thread: dict[int, tuple[Any, threading.Thread]] = {}
        # thread ident -> its connection and the cursors kept on it (named form, raw form):
        # one cursor per statement was a fifth of a one-row read's client CPU
        self._cursors: dict[int, tuple[Any, Any, Any]] = {}
        self._pid = os.getpid()

    def connection(self) -> Any:
        """This thread's DBAPI (psycopg) connection, opened when it has none."""
        if self._pid != os.getpid():  # a forked child: the parent's connections are not its
            self._by_thread, self._cursors, self._pid = {}, {}, os.getpid()
        me, current = threading.get_ident(), threading.current_thread()
        kept = self._by_thread.get(me)
        if kept is not None and kept[1] is not current:  # an ended thread's ident, reused
            kept = self._by_thread[me] = (kept[0], current)  # its connection taken over
            self._close_ended_threads()
        if kept is None or kept[0].closed:
            engine = self._engine()
            if engine is None:
                raise RuntimeError("the engine of these kept connections is gone")
            self._close_ended_threads()
            raw = engine.raw_connection()
            driver: Any = raw.driver_connection
            raw.detach()  # closed, not returned, when dropped
            driver.autocommit = True
            if not self._synchronous:
                driver.execute("SET synchronous_commit = off")
            kept = self._by_thread[me] = (driver, current)
        return kept[0]

    def _cursor(self, raw: bool) -> Any:
        """A cursor of this thread's connection, kept with it: psycopg's RawCursor (`$n`
        placeholders, parameters in order) when `raw`, else its usual one (`%(name)s`)."""
        driver = self.connection()
        found = self._cursors.get(threading.get_ident())
        if found is None or found[0] is not driver:
            from psycopg import RawCursor

            found = self._cursors[threading.get_ident()] = (driver, driver.cursor(),
                                                           RawCursor(driver))
        return found[2] if raw else found[1]

    def run(self, sql: str | bytes, parameters: Any, *, returns_rows: bool = True,
            raw: bool = False) -> tuple[Sequence[Any], int]:
        """Run one statement (the driver's SQL and parameters; `raw`: with `$n` placeholders
        and the parameters in order) on this thread's connection: its rows (when
        `returns_rows`) and the rows it changed. After a failure the connection is dropped —
        its state is not known — and the next statement takes a new one."""
        try:
            cursor = self._cursor(raw)
            cursor.execute(sql, parameters)
            rows = cursor.fetchall() if returns_rows else []
            changed = cursor.rowcount
        except BaseException:
            self.drop()
            raise
        return rows, changed

    def _close_ended_threads(self) -> None:
        """Close the connections of threads that have ended (short-lived threads — a test
        client's, a thread pool's retired workers — must not leave a server process each)."""
        alive = {t.ident for t in threading.enumerate()}
        for ident in [i for i in list(self._by_thread) if i not in alive]:
            ended = self._by_thread.pop(ident, None)  # another thread may be pruning too
            self._cursors.pop(ident, None)
            if ended is not None:
                with suppress(Exception):
                    ended[0].close()

    def drop(self) -> None:
        """Close this thread's connection (after a failure: its state is not known)."""
        kept = self._by_thread.pop(threading.get_ident(), None)
        self._cursors.pop(threading.get_ident(), None)
        if kept is not None:
            with suppress(Exception):
                kept[0].close()

    def close(self) -> None:
        """Close every thread's connection (the engine is being disposed)."""
        for driver, _ in list(self._by_thread.values()):
            with suppress(Exception):
                driver.close()
        self._by_thread.clear()
        self._cursors.clear()


_kept: weakref.WeakKeyDictionary[Engine, dict[bool, KeptConnections]] = (
    weakref.WeakKeyDictionary())


def kept_connections(engine: Engine, *, synchronous: bool = True) -> KeptConnections:
    """The engine's KeptConnections (made on first use), synchronous or not."""
    kept = _kept.get(engine, {}).get(synchronous)
    if kept is None:
        with _locks_guard:
            both = _kept.setdefault(engine, {})
            kept = both.get(synchronous)
            if kept is None:
                kept = both[synchronous] = KeptConnections(engine, synchronous=synchronous)
                weakref.finalize(engine, kept.close)  # closed with the engine, not left to GC
    return kept


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only (on SQLite it does not take the write lock) whose
    transaction ends with COMMIT when the block succeeds. Not ROLLBACK: psycopg forgets every
    statement it prepared on a connection at each ROLLBACK (and sends DEALLOCATE ALL), so one
    read ended by a rollback made the server parse and plan every later statement of that
    connection again — about 2 ms of PostgreSQL CPU per activation (docs/benchmarks.md).
    For a transaction that only read, COMMIT and ROLLBACK do the same on the server."""
    with engine.connect().execution_options(readonly=True) as conn:
        yield conn
        if conn.in_transaction():
            conn.commit()


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reads only (read_connection: on SQLite it does not take the write lock;
    it ends with COMMIT). The transaction is the connection's, begun first: a session that
    began it itself would roll it back at close."""
    with read_connection(engine) as conn:
        conn.begin()
        with Session(bind=conn) as session:
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
    with read_connection(engine) as conn:
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
