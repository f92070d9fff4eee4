"""Threading index: smart match reads recent mails of a link, not a subject hash (never read).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mail_index') as batch:
        batch.drop_index('ix_mail_index_subject')
        batch.drop_column('subject_hash')
        batch.create_index('ix_mail_index_recent', ['link_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mail_index') as batch:
        batch.drop_index('ix_mail_index_recent')
        batch.add_column(sa.Column('subject_hash', sa.String(length=64), nullable=True))
        batch.create_index('ix_mail_index_subject', ['link_id', 'subject_hash'], unique=False)
