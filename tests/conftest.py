"""Shared fixtures: a migrated store on every configured database.

`engine` runs a test on SQLite and again on PostgreSQL (SIMSMITH_TEST_PG_URL, set by
scripts/test.sh after it starts a throwaway cluster). Without that variable the PostgreSQL
half is skipped, unless SIMSMITH_REQUIRE_SERVICES=1 (the full suite), where it fails instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import simcore.all_models  # noqa: F401
from simcore import db
from tests.helpers.services import services_required

# Emptied between PostgreSQL tests; audit_head is reset instead (its lane rows must stay).
TABLES = tuple(t.name for t in SQLModel.metadata.sorted_tables if t.name != "audit_head")


def pg_admin_url() -> str:
    url = os.environ.get("SIMSMITH_TEST_PG_URL")
    if not url:
        if services_required():
            pytest.fail("SIMSMITH_TEST_PG_URL is not set but the full suite requires PostgreSQL")
        pytest.skip("PostgreSQL not configured (SIMSMITH_TEST_PG_URL)")
    return url


def create_pg_database(prefix: str) -> str:
    """A new empty database on the test cluster; returns its URL."""
    admin = pg_admin_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    admin = pg_admin_url()
    name = make_url(url).database
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    eng = db.make_engine(f"sqlite:///{path}")
    db.upgrade(eng)
    eng.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not path.with_name("template.db-wal").exists()
    return path


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    url = create_pg_database("simsmith_test")
    eng = db.make_engine(url)
    db.upgrade(eng)
    yield eng
    eng.dispose()
    drop_pg_database(url)


def reset_pg(eng: Engine) -> None:
    from simcore.lifecycle import _claim_cursors

    _claim_cursors.clear()  # hints into the emptied tables would send the first claims astray
    with eng.begin() as c:
        c.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        c.execute(text("UPDATE audit_head SET seq = 0, hash = :h, prev_hash = :h"),
                  {"h": "0" * 64})


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[Engine]:
    """A migrated, empty store: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "simsmith.db"
        shutil.copy(sqlite_template, path)
        eng = db.make_engine(f"sqlite:///{path}")
        yield eng
        eng.dispose()
    else:
        eng = request.getfixturevalue("pg_engine")
        reset_pg(eng)
        yield eng


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        url = create_pg_database("simsmith_empty")
        yield url
        drop_pg_database(url)
