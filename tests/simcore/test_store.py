"""The store itself: migrations on an empty database, models and migrations in agreement, the
refusal to work on an unmigrated database."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import simcore.all_models  # noqa: F401
from simcore import db

pytestmark = pytest.mark.storage


def test_migrating_an_empty_database(empty_url: str) -> None:
    eng = db.make_engine(empty_url)
    with pytest.raises(db.SchemaNotCurrent, match=r"not initialised .*simsmith db upgrade"):
        db.check_schema(eng)
    db.upgrade(eng)
    db.check_schema(eng)
    assert db.current_revision(eng) == db.head_revision()
    tables = set(inspect(eng).get_table_names())
    assert {"sim", "batch", "number_range", "msisdn", "audit_event", "audit_head",
            "outbox_event", "sim_credential", "free_imsi"} <= tables
    # The schema the migrations build is the schema the models describe.
    with eng.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), SQLModel.metadata) == []
    db.downgrade(eng, "base")
    assert db.current_revision(eng) is None
    assert "sim" not in inspect(eng).get_table_names()
    eng.dispose()


def test_an_older_revision_is_refused(empty_url: str) -> None:
    eng = db.make_engine(empty_url)
    db.upgrade(eng)
    with eng.begin() as c:
        c.exec_driver_sql("DELETE FROM alembic_version")
        c.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES ('0000')")
    with pytest.raises(db.SchemaNotCurrent, match=r"revision 0000.*simsmith db upgrade"):
        db.check_schema(eng)
    eng.dispose()
