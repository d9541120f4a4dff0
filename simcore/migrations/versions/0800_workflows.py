"""Durable workflows: `workflow` (one run: kind, status, input, data, lease) and
`workflow_step` (one row per step: idempotency key, attempts, timestamps, last error).

The workflows area's own branch from 0001 (issue 18).

Revision ID: 0800
Revises: 0001
Create Date: 2026-12-07 15:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0800'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('workflow',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=128), nullable=True),
    sa.Column('input', sa.Text(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=255), nullable=True),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('trace_id', sa.String(length=32), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_token', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key')
    )
    op.create_index('ix_workflow_due', 'workflow', ['next_attempt_at'], unique=False)
    op.create_index('ix_workflow_kind_created', 'workflow', ['kind', 'created_at'], unique=False)
    op.create_index(op.f('ix_workflow_status'), 'workflow', ['status'], unique=False)
    op.create_index(op.f('ix_workflow_subject'), 'workflow', ['subject'], unique=False)
    op.create_table('workflow_step',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('workflow_id', sa.String(length=36), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('idempotency_key', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('compensation_attempts', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('compensated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('result', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflow.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key'),
    sa.UniqueConstraint('workflow_id', 'seq')
    )
    op.create_index(op.f('ix_workflow_step_workflow_id'), 'workflow_step', ['workflow_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_workflow_step_workflow_id'), table_name='workflow_step')
    op.drop_table('workflow_step')
    op.drop_index(op.f('ix_workflow_subject'), table_name='workflow')
    op.drop_index(op.f('ix_workflow_status'), table_name='workflow')
    op.drop_index('ix_workflow_kind_created', table_name='workflow')
    op.drop_index('ix_workflow_due', table_name='workflow')
    op.drop_table('workflow')
