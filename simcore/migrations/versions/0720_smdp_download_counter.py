"""ES9+: per-order download counters (smdp_download_counter): wrong confirmation codes and BPPs
delivered, for the retry limits of SGP.22 §3.1.3 (simcore.smdp.download_orders).

Revision ID: 0720
Revises: 0700
Create Date: 2026-12-07 15:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0720'
down_revision = '0700'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('smdp_download_counter',
    sa.Column('iccid', sa.String(length=20), nullable=False),
    sa.Column('matching_id', sa.String(length=255), nullable=False),
    sa.Column('cc_failures', sa.Integer(), nullable=False),
    sa.Column('downloads', sa.Integer(), nullable=False),
    sa.Column('last_transaction_id', sa.String(length=32), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('iccid')
    )


def downgrade() -> None:
    op.drop_table('smdp_download_counter')
