"""Initial inventory schema: ranges, batches, SIMs, credentials, MSISDN pool, audit, outbox.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22 05:07:10.519036
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('audit_event',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('lane', sa.Integer(), nullable=False),
    sa.Column('lane_seq', sa.BigInteger(), nullable=False),
    sa.Column('ts', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject_type', sa.String(length=32), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('lane', 'lane_seq'),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_subject_id'), ['subject_id'], unique=False)

    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    # 16 lanes (simcore.audit), each chain starting from a genesis hash of zeros.
    zeros = "0" * 64
    op.execute("INSERT INTO audit_head (id, seq, hash, prev_hash) VALUES "
               + ", ".join(f"({lane}, 0, '{zeros}', '{zeros}')" for lane in range(16)))
    op.create_table('batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('vendor', sa.String(length=64), nullable=True),
    sa.Column('profile', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('form_factor', sa.String(length=16), nullable=True),
    sa.Column('file_sha256', sa.String(length=64), nullable=True),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('file_sha256'),
    sa.UniqueConstraint('name')
    )
    op.create_table('number_range',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('first', sa.String(length=20), nullable=False),
    sa.Column('last', sa.String(length=20), nullable=False),
    sa.Column('mnc_length', sa.Integer(), nullable=True),
    sa.Column('next_offset', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('number_range', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_number_range_kind'), ['kind'], unique=False)

    op.create_table('outbox_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('subject_type', sa.String(length=32), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outbox_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_event_topic'), ['topic'], unique=False)
        batch_op.create_index('ix_outbox_pending', ['published_at', 'id'], unique=False)

    op.create_table('free_imsi',
    sa.Column('imsi', sa.String(length=15), nullable=False),
    sa.Column('range_id', sa.Integer(), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['range_id'], ['number_range.id'], ),
    sa.PrimaryKeyConstraint('imsi')
    )
    op.create_table('msisdn',
    sa.Column('msisdn', sa.String(length=15), nullable=False),
    sa.Column('range_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('iccid', sa.String(length=20), nullable=True),
    sa.Column('quarantine_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['range_id'], ['number_range.id'], ),
    sa.PrimaryKeyConstraint('msisdn')
    )
    with op.batch_alter_table('msisdn', schema=None) as batch_op:
        batch_op.create_index('ix_msisdn_state_msisdn', ['state', 'msisdn'], unique=False)

    op.create_table('sim',
    sa.Column('iccid', sa.String(length=20), nullable=False),
    sa.Column('imsi', sa.String(length=15), nullable=True),
    sa.Column('former_imsi', sa.String(length=15), nullable=True),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('form_factor', sa.String(length=16), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('profile_state', sa.String(length=16), nullable=True),
    sa.Column('subscriber_ref', sa.String(length=128), nullable=True),
    sa.Column('msisdn', sa.String(length=15), nullable=True),
    sa.Column('eid', sa.String(length=32), nullable=True),
    sa.Column('ki_ref', sa.Text(), nullable=True),
    sa.Column('opc_ref', sa.Text(), nullable=True),
    sa.Column('auth_algorithm', sa.String(length=16), nullable=True),
    sa.Column('acc', sa.String(length=4), nullable=True),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('quarantine_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], ),
    sa.PrimaryKeyConstraint('iccid'),
    sa.UniqueConstraint('imsi'),
    sa.UniqueConstraint('msisdn')
    )
    with op.batch_alter_table('sim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sim_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sim_eid'), ['eid'], unique=False)
        batch_op.create_index('ix_sim_state_kind_iccid', ['state', 'kind', 'iccid'], unique=False)
        batch_op.create_index(batch_op.f('ix_sim_subscriber_ref'), ['subscriber_ref'], unique=False)

    op.create_table('sim_credential',
    sa.Column('iccid', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=16), nullable=False),
    sa.Column('ref', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['iccid'], ['sim.iccid'], ),
    sa.PrimaryKeyConstraint('iccid', 'name')
    )


def downgrade() -> None:

    op.drop_table('sim_credential')
    with op.batch_alter_table('sim', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sim_subscriber_ref'))
        batch_op.drop_index('ix_sim_state_kind_iccid')
        batch_op.drop_index(batch_op.f('ix_sim_eid'))
        batch_op.drop_index(batch_op.f('ix_sim_batch_id'))

    op.drop_table('sim')
    with op.batch_alter_table('msisdn', schema=None) as batch_op:
        batch_op.drop_index('ix_msisdn_state_msisdn')

    op.drop_table('msisdn')
    op.drop_table('free_imsi')
    with op.batch_alter_table('outbox_event', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_pending')
        batch_op.drop_index(batch_op.f('ix_outbox_event_topic'))

    op.drop_table('outbox_event')
    with op.batch_alter_table('number_range', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_number_range_kind'))

    op.drop_table('number_range')
    op.drop_table('batch')
    op.drop_table('audit_head')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_subject_id'))
        batch_op.drop_index(batch_op.f('ix_audit_event_action'))

    op.drop_table('audit_event')
