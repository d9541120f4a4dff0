"""A throwaway database for one benchmark run: a SQLite file in a scratch directory, or a fresh
database on the PostgreSQL cluster named by SIMSMITH_TEST_PG_URL (scripts/services/postgres.sh;
scripts/bench.sh sources it) — dropped when the run is done, so the shared cluster keeps no
leftovers. Not a benchmark itself (scripts/bench.sh runs only bench_*.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def _admin() -> str:
    url = os.environ.get("SIMSMITH_TEST_PG_URL")
    if not url:
        raise SystemExit("SIMSMITH_TEST_PG_URL is not set: run through scripts/bench.sh, or "
                         "source build/services/postgres.env (scripts/services/postgres.sh start)")
    return url


def create(kind: str, directory: Path, prefix: str = "bench") -> str:
    """A new, empty database's URL: `kind` is "sqlite" (a file in `directory`) or "postgresql"."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    if kind == "sqlite":
        return f"sqlite:///{directory / f'{name}.db'}"
    admin = _admin()
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def drop(url: str) -> None:
    """Remove what `create` made: the SQLite file and its companions, or the PostgreSQL database
    (its connections closed by force)."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm", ".writer-lock"):
            Path(f"{u.database}{suffix}").unlink(missing_ok=True)
        return
    eng = create_engine(_admin(), isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
    eng.dispose()


@contextmanager
def database(kind: str, directory: Path, prefix: str = "bench") -> Iterator[str]:
    """`create`, then `drop` however the block ends."""
    url = create(kind, directory, prefix)
    try:
        yield url
    finally:
        drop(url)
