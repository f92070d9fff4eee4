"""Alembic environment: migrations run against the URL that plugin.store.store passes in."""
from alembic import context
from sqlalchemy import create_engine, text

from plugin.store.models import Base

config = context.config
engine = create_engine(config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Workers that start together on one database migrate one after another: the lock is held
            # until this transaction commits, and the next one then finds the schema at head.
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('jsm-mail migrations'))"))
        context.run_migrations()
engine.dispose()
