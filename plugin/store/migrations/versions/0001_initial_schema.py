"""Initial schema: links, ledger, mail index, logs, sender budget, quarantine, undeliverable.

Revision ID: 0001
Revises: 
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('error_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('link_name', sa.String(length=100), nullable=False),
    sa.Column('message_id', sa.String(length=512), nullable=True),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('traceback', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('protocol', sa.String(length=10), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('security', sa.String(length=10), nullable=False),
    sa.Column('username', sa.String(length=255), nullable=False),
    sa.Column('password_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('folder', sa.String(length=255), nullable=False),
    sa.Column('service_desk_id', sa.String(length=50), nullable=False),
    sa.Column('request_type_id', sa.String(length=50), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('processing_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('link_name', sa.String(length=100), nullable=False),
    sa.Column('message_id', sa.String(length=512), nullable=True),
    sa.Column('sender', sa.String(length=512), nullable=True),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=50), nullable=True),
    sa.Column('issue_key', sa.String(length=50), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('evidence', sa.Text(), nullable=True),
    sa.Column('raw_path', sa.String(length=1024), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('processing_log', schema=None) as batch_op:
        batch_op.create_index('ix_processing_log_time', ['time'], unique=False)

    op.create_table('undeliverable',
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('issue_key', sa.String(length=50), nullable=True),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('address')
    )
    op.create_table('ledger',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('ledger_id', sa.String(length=512), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('issue_key', sa.String(length=50), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['link_id'], ['links.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('link_id', 'ledger_id')
    )
    op.create_table('mail_index',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('issue_key', sa.String(length=50), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('message_id', sa.String(length=512), nullable=True),
    sa.Column('conversation_id', sa.String(length=64), nullable=True),
    sa.Column('subject_hash', sa.String(length=64), nullable=True),
    sa.Column('subject_words', sa.Text(), nullable=False),
    sa.Column('addresses', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['link_id'], ['links.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('mail_index', schema=None) as batch_op:
        batch_op.create_index('ix_mail_index_conversation', ['link_id', 'conversation_id'], unique=False)
        batch_op.create_index('ix_mail_index_message', ['link_id', 'message_id'], unique=False)
        batch_op.create_index('ix_mail_index_subject', ['link_id', 'subject_hash'], unique=False)

    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('sender', sa.String(length=320), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['link_id'], ['links.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('link_id', 'sender')
    )
    op.create_table('sender_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('sender', sa.String(length=320), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['link_id'], ['links.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sender_events', schema=None) as batch_op:
        batch_op.create_index('ix_sender_events', ['link_id', 'sender', 'time'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('sender_events', schema=None) as batch_op:
        batch_op.drop_index('ix_sender_events')

    op.drop_table('sender_events')
    op.drop_table('quarantine')
    with op.batch_alter_table('mail_index', schema=None) as batch_op:
        batch_op.drop_index('ix_mail_index_subject')
        batch_op.drop_index('ix_mail_index_message')
        batch_op.drop_index('ix_mail_index_conversation')

    op.drop_table('mail_index')
    op.drop_table('ledger')
    op.drop_table('undeliverable')
    with op.batch_alter_table('processing_log', schema=None) as batch_op:
        batch_op.drop_index('ix_processing_log_time')

    op.drop_table('processing_log')
    op.drop_table('links')
    op.drop_table('error_log')
