"""Inventory at scale: list indexes in ICCID order per filter, and SIM counts kept by triggers.

The inventory area's own branch from 0001 (0002–0019 are the vendor-import area's).
- `ix_sim_state_iccid`, `ix_sim_kind_iccid` and `ix_sim_batch_iccid` (replacing
  `ix_sim_batch_id`): a page of SIMs filtered by state, kind or batch, in ICCID order after a
  keyset cursor, reads about `limit` index entries instead of walking the primary key past every
  SIM that does not match (first in-stock page at 10M SIMs with 5M sold: 1.3 s before).
- `sim_state_count` with statement-level triggers on PostgreSQL (transition tables: one
  aggregated upsert per statement, so a COPY of a million rows costs one statement, not a million
  row triggers). Shards by backend pid mod 64 keep concurrent transactions off each other's
  counter rows; upserts go in (kind, state) order so two backends on one shard cannot deadlock
  within a statement. SQLite keeps no counters (its summary counts the covering index).

Revision ID: 0020
Revises: 0001
Create Date: 2026-12-07 07:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0001'
branch_labels = None
depends_on = None

SHARDS = 64

_FUNCTIONS = f"""
CREATE FUNCTION sim_state_count_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO sim_state_count (kind, state, shard, n)
      SELECT kind, state, pg_backend_pid() % {SHARDS}, count(*) FROM new_rows
      GROUP BY kind, state ORDER BY kind, state
      ON CONFLICT (kind, state, shard) DO UPDATE SET n = sim_state_count.n + EXCLUDED.n;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO sim_state_count (kind, state, shard, n)
      SELECT kind, state, pg_backend_pid() % {SHARDS}, -count(*) FROM old_rows
      GROUP BY kind, state ORDER BY kind, state
      ON CONFLICT (kind, state, shard) DO UPDATE SET n = sim_state_count.n + EXCLUDED.n;
  ELSE
    INSERT INTO sim_state_count (kind, state, shard, n)
      SELECT kind, state, pg_backend_pid() % {SHARDS}, sum(d) FROM (
        SELECT kind, state, 1 AS d FROM new_rows
        UNION ALL SELECT kind, state, -1 AS d FROM old_rows) AS delta
      GROUP BY kind, state HAVING sum(d) <> 0 ORDER BY kind, state
      ON CONFLICT (kind, state, shard) DO UPDATE SET n = sim_state_count.n + EXCLUDED.n;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION sim_state_count_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM sim_state_count;
  RETURN NULL;
END $$;

CREATE TRIGGER sim_state_count_ins AFTER INSERT ON sim
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sim_state_count_apply();
CREATE TRIGGER sim_state_count_upd AFTER UPDATE ON sim
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION sim_state_count_apply();
CREATE TRIGGER sim_state_count_del AFTER DELETE ON sim
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION sim_state_count_apply();
CREATE TRIGGER sim_state_count_trunc AFTER TRUNCATE ON sim
  FOR EACH STATEMENT EXECUTE FUNCTION sim_state_count_truncate();
"""

_DROP = """
DROP TRIGGER IF EXISTS sim_state_count_ins ON sim;
DROP TRIGGER IF EXISTS sim_state_count_upd ON sim;
DROP TRIGGER IF EXISTS sim_state_count_del ON sim;
DROP TRIGGER IF EXISTS sim_state_count_trunc ON sim;
DROP FUNCTION IF EXISTS sim_state_count_apply();
DROP FUNCTION IF EXISTS sim_state_count_truncate();
"""


def upgrade() -> None:
    op.create_index('ix_sim_state_iccid', 'sim', ['state', 'iccid'], unique=False)
    op.create_index('ix_sim_kind_iccid', 'sim', ['kind', 'iccid'], unique=False)
    op.create_index('ix_sim_batch_iccid', 'sim', ['batch_id', 'iccid'], unique=False)
    op.drop_index('ix_sim_batch_id', table_name='sim')
    op.create_table('sim_state_count',
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('shard', sa.Integer(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'state', 'shard')
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("LOCK TABLE sim IN SHARE MODE")  # no change slips between count and trigger
        op.execute(_FUNCTIONS)
        op.execute("INSERT INTO sim_state_count (kind, state, shard, n) "
                   "SELECT kind, state, 0, count(*) FROM sim GROUP BY kind, state")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_DROP)
    op.drop_table('sim_state_count')
    op.create_index('ix_sim_batch_id', 'sim', ['batch_id'], unique=False)
    op.drop_index('ix_sim_batch_iccid', table_name='sim')
    op.drop_index('ix_sim_kind_iccid', table_name='sim')
    op.drop_index('ix_sim_state_iccid', table_name='sim')
