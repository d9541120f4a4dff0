"""Audit: signed checkpoints, so `audit verify` walks only the events after the last one.

The audit area's own branch from 0001 (simcore.audit_checkpoint).

Revision ID: 0040
Revises: 0001
Create Date: 2026-12-07 08:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0040'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_checkpoint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('events', sa.BigInteger(), nullable=False),
    sa.Column('heads', sa.Text(), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_checkpoint', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_checkpoint_key_id'), ['key_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_checkpoint', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_checkpoint_key_id'))
    op.drop_table('audit_checkpoint')
