"""Console: users (argon2id hashes), server-side sessions and failed logins (issue 19).

Revision ID: 0870
Revises: 0001
Create Date: 2026-12-07 15:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0870'
down_revision = '0001'
branch_labels = None
depends_on = '0200'  # the api_key table a key's session points to


def upgrade() -> None:
    op.create_table(
        'console_user',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('password_hash', sa.Text(), nullable=False),
        sa.Column('scopes', sa.String(length=512), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('username'),
    )
    op.create_table(
        'console_session',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('api_key_id', sa.Integer(), nullable=True),
        sa.Column('actor', sa.String(length=128), nullable=False),
        sa.Column('scopes', sa.String(length=512), nullable=False),
        sa.Column('csrf_token', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['console_user.id']),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_key.id']),
        sa.PrimaryKeyConstraint('token_hash'),
    )
    with op.batch_alter_table('console_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_session_user_id'), ['user_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_console_session_api_key_id'), ['api_key_id'],
                              unique=False)
    op.create_table(
        'console_login_failure',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subject', sa.String(length=128), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('console_login_failure', schema=None) as batch_op:
        batch_op.create_index('ix_console_login_failure_subject_at', ['subject', 'at'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('console_login_failure')
    op.drop_table('console_session')
    op.drop_table('console_user')
