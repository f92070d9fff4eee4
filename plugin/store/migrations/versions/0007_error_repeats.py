"""Error log: an error seen again counts on its row (count, last seen) instead of adding rows.

Revision ID: 0007_error_repeats
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = '0007_error_repeats'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('error_log') as batch:
        batch.add_column(sa.Column('count', sa.Integer(), server_default='1', nullable=False))
        batch.add_column(sa.Column('last_seen', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('error_log') as batch:
        batch.drop_column('last_seen')
        batch.drop_column('count')
