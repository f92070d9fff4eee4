"""Store: links, the mail ledger, the threading index, sender events and the logs (SQLAlchemy + Alembic)."""
