"""Exactly once: which mailbox copy a ledger row handled, when it began waiting, and link leases.

Revision ID: 0003
Revises: 0002_outbox
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002_outbox'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ledger') as batch:
        batch.add_column(sa.Column('mailbox_uid', sa.String(length=512), nullable=True))
        batch.add_column(sa.Column('waiting_since', sa.DateTime(timezone=True), nullable=True))
    op.create_table('leases',
                    sa.Column('link_id', sa.Integer(), nullable=False),
                    sa.Column('holder', sa.String(length=200), nullable=False),
                    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
                    sa.ForeignKeyConstraint(['link_id'], ['links.id'], ondelete='CASCADE'),
                    sa.PrimaryKeyConstraint('link_id'))


def downgrade() -> None:
    op.drop_table('leases')
    with op.batch_alter_table('ledger') as batch:
        batch.drop_column('waiting_since')
        batch.drop_column('mailbox_uid')
