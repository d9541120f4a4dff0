"""Bulk writes of imported SIMs and their credentials, and the store-side duplicate check.

Like simcore.inventory's generator: COPY on PostgreSQL, executemany on SQLite, inside the
caller's transaction; timestamps stored exactly as the ORM column type would.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from simcore.models import Sim, UtcDateTime

SIM_COLUMNS = ("iccid", "imsi", "kind", "batch_id", "state", "ki_ref", "opc_ref",
               "auth_algorithm", "acc", "version", "created_at", "updated_at")
CREDENTIAL_COLUMNS = ("iccid", "name", "ref")
_IN_CHUNK = 5000


def stamp(session: Session, now: datetime) -> Any:
    """`now` as the driver should receive it for a raw insert."""
    dialect = session.get_bind().dialect
    if dialect.name != "sqlite":
        return now
    return UtcDateTime().dialect_impl(dialect).bind_processor(dialect)(now)  # type: ignore[misc]


def bulk_insert(session: Session, table: str, columns: Sequence[str],
                rows: Sequence[tuple[Any, ...]]) -> None:
    if not rows:
        return
    conn = session.connection()
    raw = conn.connection.driver_connection
    cols = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
        return
    cur = raw.cursor()  # type: ignore[union-attr]
    try:
        cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(columns))})",
                        rows)
    finally:
        cur.close()


def existing(session: Session, iccids: Sequence[str], imsis: Sequence[str]
             ) -> tuple[dict[str, int | None], dict[str, int | None]]:
    """Which of these ICCIDs and IMSIs the store already holds, each with its SIM's batch id
    (an import finds its own earlier chunks there: a duplicate inside the file). Former IMSIs
    of recycled SIMs are free again, so only current IMSIs count."""
    found_iccids: dict[str, int | None] = {}
    found_imsis: dict[str, int | None] = {}
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # One array parameter: thousands of IN placeholders cost more to build than to run.
        for column, values, found in (("iccid", iccids, found_iccids),
                                      ("imsi", imsis, found_imsis)):
            if values:
                found.update((r[0], r[1]) for r in conn.exec_driver_sql(
                    f"SELECT {column}, batch_id FROM sim WHERE {column} = ANY(%s)",
                    (list(values),)))
        return found_iccids, found_imsis
    for i in range(0, len(iccids), _IN_CHUNK):
        found_iccids.update((r[0], r[1]) for r in session.execute(
            select(col(Sim.iccid), col(Sim.batch_id))
            .where(col(Sim.iccid).in_(iccids[i : i + _IN_CHUNK]))))
    for i in range(0, len(imsis), _IN_CHUNK):
        found_imsis.update((r[0], r[1]) for r in session.execute(
            select(col(Sim.imsi), col(Sim.batch_id))
            .where(col(Sim.imsi).in_(imsis[i : i + _IN_CHUNK]))) if r[0] is not None)
    return found_iccids, found_imsis
