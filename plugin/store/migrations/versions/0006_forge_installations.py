"""Forge installations: each Jira site that called jsm-mail through Forge, and its latest system token.

Revision ID: 0006
Revises: 0005_link_state
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005_link_state'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('forge_installations',
    sa.Column('installation_id', sa.String(length=255), nullable=False),
    sa.Column('cloud_id', sa.String(length=100), nullable=True),
    sa.Column('site_url', sa.String(length=255), nullable=True),
    sa.Column('api_base_url', sa.String(length=255), nullable=True),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('system_token_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('system_token_expires', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('installation_id')
    )


def downgrade() -> None:
    op.drop_table('forge_installations')
