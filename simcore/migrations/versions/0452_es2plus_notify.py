"""ES2+ notifications sent by simsmith's SM-DP+ (HandleDownloadProgressInfo, issue 12 item 5):
each operator's receiver (es2plus_receiver), one notification per outbox event and operator
with its delivery state (es2plus_notification), and the outbox consumers' cursors
(outbox_cursor). A consumer's cursor is made when it first runs (simcore.events.consume).

Revision ID: 0452
Revises: 0451
Create Date: 2026-12-07 15:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0452'
down_revision = '0451'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_cursor',
    sa.Column('consumer', sa.String(length=64), nullable=False),
    sa.Column('last_id', sa.BigInteger(), nullable=False),
    sa.Column('gaps', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('consumer')
    )
    op.create_table('es2plus_receiver',
    sa.Column('operator', sa.String(length=128), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('cert', sa.String(length=1024), nullable=True),
    sa.Column('key', sa.String(length=1024), nullable=True),
    sa.Column('ca', sa.String(length=1024), nullable=True),
    sa.Column('requester_id', sa.String(length=128), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('operator')
    )
    op.create_table('es2plus_notification',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=False),
    sa.Column('operator', sa.String(length=128), nullable=False),
    sa.Column('iccid', sa.String(length=20), nullable=False),
    sa.Column('call_id', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=256), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id', 'operator', name='uq_es2plus_notification_event')
    )
    op.create_index('ix_es2plus_notification_due', 'es2plus_notification',
                    ['state', 'next_attempt_at'], unique=False)
    op.create_index(op.f('ix_es2plus_notification_operator'), 'es2plus_notification',
                    ['operator'], unique=False)
    op.create_index(op.f('ix_es2plus_notification_iccid'), 'es2plus_notification', ['iccid'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_es2plus_notification_iccid'), table_name='es2plus_notification')
    op.drop_index(op.f('ix_es2plus_notification_operator'), table_name='es2plus_notification')
    op.drop_index('ix_es2plus_notification_due', table_name='es2plus_notification')
    op.drop_table('es2plus_notification')
    op.drop_table('es2plus_receiver')
    op.drop_table('outbox_cursor')
