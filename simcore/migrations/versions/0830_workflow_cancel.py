"""Cancelling a workflow run: who asked, when and why (`workflow.cancel_requested_at`,
`cancel_requested_by`, `cancel_reason`). The worker reads the request at the next step boundary
and compensates the finished steps; the run ends `cancelled` (docs/workflows.md).

Revision ID: 0830
Revises: 0800
Create Date: 2026-12-07 18:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0830'
down_revision = '0800'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('workflow') as b:
        b.add_column(sa.Column('cancel_requested_at', sa.DateTime(timezone=True),
                               nullable=True))
        b.add_column(sa.Column('cancel_requested_by', sa.String(length=128), nullable=True))
        b.add_column(sa.Column('cancel_reason', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('workflow') as b:
        b.drop_column('cancel_reason')
        b.drop_column('cancel_requested_by')
        b.drop_column('cancel_requested_at')
