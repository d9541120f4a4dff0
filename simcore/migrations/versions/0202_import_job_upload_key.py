"""API: an import job's upload sealed at rest — its data key, wrapped by the HSM, on the job row
(simcore.import_uploads).

Revision ID: 0202
Revises: 0201
Create Date: 2026-12-07 20:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0202'
down_revision = '0201'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('import_job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('upload_key', sa.String(length=512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('import_job', schema=None) as batch_op:
        batch_op.drop_column('upload_key')
