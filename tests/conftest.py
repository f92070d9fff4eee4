"""Fixtures: real Dovecot and SMTP servers on loopback, a contract-checking fake Jira, and the
service wired to them (settings -> store -> Jira gateway -> one polling round)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from plugin.domain import Link
from plugin.jira.gateway import RestJira
from plugin.poll import PollReport, poll_mailbox
from plugin.settings import Settings
from plugin.store.store import LogEntry, Store

pytest_plugins = ["tests.fakes.dovecot", "tests.fakes.smtp", "tests.fakes.jira", "tests.fakes.ews", "tests.fakes.graph"]

MAIL_DIR = Path(__file__).with_name("mail")


def mail_file(name: str) -> bytes:
    return (MAIL_DIR / name).read_bytes()


@pytest.fixture
def settings(tmp_path, fake_jira) -> Settings:
    return Settings.from_env({
        "JSM_MAIL_DATA_DIR": str(tmp_path / "var"),
        "JSM_MAIL_JIRA_URL": fake_jira.url,
        "JSM_MAIL_JIRA_EMAIL": fake_jira.email,
        "JSM_MAIL_JIRA_API_TOKEN": fake_jira.api_token,
        "JSM_MAIL_JIRA_TIMEOUT_S": "5",
        "JSM_MAIL_ENV_FILE": str(tmp_path / "no.env"),
    })


@pytest.fixture
def store(settings) -> Store:
    return Store(settings)


@dataclass
class Service:
    """The service under test: a linked mailbox, the store and Jira; `poll()` runs one round."""

    settings: Settings
    store: Store
    jira: RestJira
    link: Link

    def poll(self) -> PollReport:
        return poll_mailbox(self.link, self.settings, self.store, self.jira)

    def log(self) -> list[LogEntry]:
        """The processing log, oldest first."""
        return list(reversed(self.store.processing_log(link=self.link.name)))

    def relink(self, **changes: object) -> None:
        """Change the link's settings as an admin would."""
        import dataclasses
        self.link = dataclasses.replace(self.link, **changes)
        self.store.update_link(self.link)


@pytest.fixture
def service(settings, store, mail_account) -> Service:
    link = store.add_link(mail_account.link(address="support@example.test"))
    jira = RestJira(settings.jira_url, settings.jira_email, settings.jira_api_token, settings.jira_timeout_s)
    return Service(settings, store, jira, link)
