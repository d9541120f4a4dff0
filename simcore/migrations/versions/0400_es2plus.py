"""ES2+ tables: the SM-DP+ side's order book and the record of received calls.

Revision ID: 0400
Revises: 0001
Create Date: 2026-11-22 06:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0400'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('es2plus_order',
    sa.Column('iccid', sa.String(length=20), nullable=False),
    sa.Column('requester', sa.String(length=128), nullable=False),
    sa.Column('profile_type', sa.String(length=64), nullable=True),
    sa.Column('matching_id', sa.String(length=255), nullable=True),
    sa.Column('cc_hash', sa.String(length=64), nullable=True),
    sa.Column('smds_address', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['iccid'], ['sim.iccid'], ),
    sa.PrimaryKeyConstraint('iccid'),
    sa.UniqueConstraint('matching_id')
    )
    op.create_table('es2plus_call',
    sa.Column('requester', sa.String(length=128), nullable=False),
    sa.Column('call_id', sa.String(length=128), nullable=False),
    sa.Column('function', sa.String(length=32), nullable=False),
    sa.Column('iccid', sa.String(length=20), nullable=True),
    sa.Column('response', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('requester', 'call_id')
    )
    with op.batch_alter_table('es2plus_call', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_es2plus_call_iccid'), ['iccid'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('es2plus_call', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_es2plus_call_iccid'))
    op.drop_table('es2plus_call')
    op.drop_table('es2plus_order')
