"""SUCI: the home-network key registry (issue 20; simcore/models_suci.py, docs/suci.md).

The suci area's own branch from 0001.

Revision ID: 0630
Revises: 0001
Create Date: 2026-12-07 13:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0630'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('suci_key',
    sa.Column('key_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('scheme', sa.Integer(), nullable=False),
    sa.Column('public_key', sa.String(length=130), nullable=False),
    sa.Column('key_ref', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key_id')
    )


def downgrade() -> None:
    op.drop_table('suci_key')
