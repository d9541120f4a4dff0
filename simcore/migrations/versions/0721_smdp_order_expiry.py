"""SM-DP+ download orders expire: `smdp_download_counter.expires_at`, the end of the released
order's validity (SIMSMITH_SMDP_ORDER_VALIDITY; NULL: never), indexed for the sweeper
(SGP.22 §3.1.3; simcore.smdp.order_validity, simcore.smdp.download_orders).

Revision ID: 0721
Revises: 0720
Create Date: 2026-12-07 18:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0721'
down_revision = '0720'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('smdp_download_counter',
                  sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_smdp_download_counter_expires_at', 'smdp_download_counter',
                    ['expires_at'])


def downgrade() -> None:
    op.drop_index('ix_smdp_download_counter_expires_at', table_name='smdp_download_counter')
    with op.batch_alter_table('smdp_download_counter') as batch:
        batch.drop_column('expires_at')
