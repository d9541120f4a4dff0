"""ES2+ call log: the digest of each call's body, so a reused functionCallIdentifier with
another request is refused instead of answered with the earlier result (issue 12 item 1).

Revision ID: 0451
Revises: 0450
Create Date: 2026-12-07 13:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0451'
down_revision = '0450'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('es2plus_call') as batch:
        batch.add_column(sa.Column('body_digest', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('es2plus_call') as batch:
        batch.drop_column('body_digest')
