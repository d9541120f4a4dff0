"""The embedded HLR's subscriber register `hlr_subscriber` (IMSI, MSISDN, ICCID, K/OPc as HSM
references, CS/PS access): the HLR `make run` provisions when no osmo-hlr is configured
(simcore.ports.embedded_hlr; issue 18).

Revision ID: 0801
Revises: 0800
Create Date: 2026-12-07 18:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0801'
down_revision = '0800'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hlr_subscriber',
    sa.Column('imsi', sa.String(length=15), nullable=False),
    sa.Column('msisdn', sa.String(length=15), nullable=True),
    sa.Column('iccid', sa.String(length=20), nullable=False),
    sa.Column('ki_ref', sa.Text(), nullable=False),
    sa.Column('opc_ref', sa.Text(), nullable=False),
    sa.Column('cs_allowed', sa.Boolean(), nullable=False),
    sa.Column('ps_allowed', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('imsi'),
    sa.UniqueConstraint('msisdn')
    )
    with op.batch_alter_table('hlr_subscriber', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hlr_subscriber_iccid'), ['iccid'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hlr_subscriber', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hlr_subscriber_iccid'))
    op.drop_table('hlr_subscriber')
