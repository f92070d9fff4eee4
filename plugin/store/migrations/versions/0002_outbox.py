"""Outbound mail: the outbox, each link's polling cursor, and SMTP passwords.

Revision ID: 0002_outbox
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_outbox'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('comment_id', sa.String(length=50), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('issue_key', sa.String(length=50), nullable=False),
    sa.Column('message_id', sa.String(length=512), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('comment_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sending_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recipients', sa.Text(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['link_id'], ['links.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('comment_id')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_link_state', ['link_id', 'state'], unique=False)
    op.create_table('outbound_cursor',
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('looked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['link_id'], ['links.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('link_id')
    )
    # Existing links start looking now: answers agents wrote before outbound mail existed are never mailed.
    op.execute(sa.text("INSERT INTO outbound_cursor (link_id, looked_at, not_before) "
                       "SELECT id, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM links"))
    op.create_table('smtp_secrets',
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('password_encrypted', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['link_id'], ['links.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('link_id')
    )


def downgrade() -> None:
    op.drop_table('smtp_secrets')
    op.drop_table('outbound_cursor')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_link_state')
    op.drop_table('outbox')
