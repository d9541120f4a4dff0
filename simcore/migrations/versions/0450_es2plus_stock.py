"""ES2+ access: which operator a batch of eSIM profiles was stocked for (es2plus_stock).

Revision ID: 0450
Revises: 0400
Create Date: 2026-12-07 07:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0450'
down_revision = '0400'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('es2plus_stock',
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('operator', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], ),
    sa.PrimaryKeyConstraint('batch_id')
    )


def downgrade() -> None:
    op.drop_table('es2plus_stock')
