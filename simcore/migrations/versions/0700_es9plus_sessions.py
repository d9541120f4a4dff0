"""ES9+: the SM-DP+'s download sessions (smdp_download_session), kept in the store so several
API workers or machines serve one download (issue 16 item 7).

The es9plus area's own branch from 0001.

Revision ID: 0700
Revises: 0001
Create Date: 2026-12-07 13:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0700'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('smdp_download_session',
    sa.Column('transaction_id', sa.String(length=32), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('euicc_challenge', sa.LargeBinary(), nullable=False),
    sa.Column('server_challenge', sa.LargeBinary(), nullable=False),
    sa.Column('ci_key_id', sa.LargeBinary(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('matching_id', sa.String(length=255), nullable=True),
    sa.Column('eid', sa.String(length=32), nullable=True),
    sa.Column('iccid', sa.String(length=20), nullable=True),
    sa.Column('euicc_certificate', sa.LargeBinary(), nullable=True),
    sa.Column('smdp_signature2', sa.LargeBinary(), nullable=True),
    sa.Column('cc_required', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('transaction_id')
    )
    op.create_index(op.f('ix_smdp_download_session_expires_at'), 'smdp_download_session',
                    ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_smdp_download_session_expires_at'),
                  table_name='smdp_download_session')
    op.drop_table('smdp_download_session')
