"""Keys: each SIM's authentication sequence number (SQN = SEQ || IND, 3GPP TS 33.102 Annex C).

The keys area's own branch from 0001. A new table, not a column on `sim`: rows appear with a
SIM's first vector, so the upgrade touches no existing row (SQLite would rebuild a `sim` table of
millions of rows for a new column), and issuing vectors never locks the `sim` row.

Revision ID: 0600
Revises: 0001
Create Date: 2026-11-23 09:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0600'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sim_sqn',
    sa.Column('iccid', sa.String(length=20), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('ind', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['iccid'], ['sim.iccid'], ),
    sa.PrimaryKeyConstraint('iccid')
    )


def downgrade() -> None:
    op.drop_table('sim_sqn')
