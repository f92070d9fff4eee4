"""Upgrading an installation: its links never mail the answers agents wrote before."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from plugin.settings import Settings
from plugin.store.outbox import Outbox
from plugin.store.store import MIGRATIONS, Store


def test_existing_links_start_looking_at_upgrade_time(tmp_path):
    url = f"sqlite:///{tmp_path / 'jsm-mail.db'}"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "0001")
    with create_engine(url).begin() as connection:
        connection.execute(text(
            "INSERT INTO links (name, protocol, host, port, security, username, password_encrypted, folder, "
            "service_desk_id, request_type_id, options, created_at) VALUES ('support', 'ews', 'mail.example.com', "
            "443, 'ssl', 'svc', x'00', 'INBOX', '1', '10', '{}', '2025-01-01 00:00:00.000000')"))

    store = Store(Settings.from_env({"JSM_MAIL_DATA_DIR": str(tmp_path), "JSM_MAIL_DATABASE_URL": url,
                                     "JSM_MAIL_ENV_FILE": str(tmp_path / "no.env")}))

    cursor = Outbox(store).cursor(1)
    assert datetime.now(UTC) - cursor.not_before < timedelta(minutes=1)
    assert cursor.looked_at == cursor.not_before
