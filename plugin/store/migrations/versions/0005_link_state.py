"""Link state: last rounds, the current failure, a backlog's progress and the alert mail sent about it.

Revision ID: 0005_link_state
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = '0005_link_state'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('link_state',
                    sa.Column('link_id', sa.Integer(), nullable=False),
                    sa.Column('last_round_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('failing_reason', sa.Text(), nullable=True),
                    sa.Column('unread', sa.Integer(), nullable=False, server_default='0'),
                    sa.Column('unread_since', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('backlog_total', sa.Integer(), nullable=True),
                    sa.Column('backlog_done', sa.Integer(), nullable=False, server_default='0'),
                    sa.Column('alerted_at', sa.DateTime(timezone=True), nullable=True),
                    sa.ForeignKeyConstraint(['link_id'], ['links.id'], ondelete='CASCADE'),
                    sa.PrimaryKeyConstraint('link_id'))


def downgrade() -> None:
    op.drop_table('link_state')
