"""Outbox relay to NATS JetStream and trace context on events (issue 18 items 3 and 4).

outbox_event gains `traceparent` (the W3C trace context of the change) and `relayed_at` (the NATS
relay's own marker, independent of the webhook fan-out's `published_at`); webhook_delivery keeps
the event's traceparent; outbox_relay holds each relay's start point and lease.

The observability area's own branch from 0001 (after 0200, which made webhook_delivery).

Revision ID: 0850
Revises: 0001
Create Date: 2026-12-07 15:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0850'
down_revision = '0001'
branch_labels = None
depends_on = ('0200',)  # webhook_delivery


def upgrade() -> None:
    with op.batch_alter_table('outbox_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('traceparent', sa.String(length=55), nullable=True))
        batch_op.add_column(sa.Column('relayed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_outbox_relay', ['relayed_at', 'id'], unique=False)
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('traceparent', sa.String(length=55), nullable=True))
    op.create_table('outbox_relay',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('start_after', sa.BigInteger(), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_event_id', sa.BigInteger(), nullable=True),
    sa.Column('relayed_count', sa.BigInteger(), nullable=False),
    sa.Column('last_relayed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=256), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('outbox_relay')
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.drop_column('traceparent')
    with op.batch_alter_table('outbox_event', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_relay')
        batch_op.drop_column('relayed_at')
        batch_op.drop_column('traceparent')
