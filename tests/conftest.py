"""Fixtures: real Dovecot and SMTP servers on loopback, a contract-checking fake Jira, and the
service wired to them (settings -> store -> Jira gateway -> one polling round)."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from plugin.context import Context
from plugin.domain import Facts, Link, MailRef, Outcome, OutcomeState, RawMail
from plugin.errors import RejectReason
from plugin.jira.rest import RestJira
from plugin.poll import PollReport, poll_mailbox
from plugin.record import MailAbout, record
from plugin.settings import Settings
from plugin.store.store import LogEntry, Store

pytest_plugins = ["tests.fakes.dovecot", "tests.fakes.smtp", "tests.fakes.jira", "tests.fakes.ews", "tests.fakes.graph",
                  "tests.fakes.postgres", "tests.fakes.google"]

MAIL_DIR = Path(__file__).with_name("mail")


def mail_file(name: str) -> bytes:
    return (MAIL_DIR / name).read_bytes()



@pytest.fixture(autouse=True)
def same_umask():
    """`jsm-mail` sets a private umask when it starts; a test that runs it in process must not pass that on."""
    mask = os.umask(0o022)
    os.umask(mask)
    yield
    os.umask(mask)

@pytest.fixture
def settings(tmp_path, fake_jira) -> Settings:
    return Settings.from_env({
        "JSM_MAIL_DATA_DIR": str(tmp_path / "var"),
        "JSM_MAIL_JIRA_URL": fake_jira.url,
        "JSM_MAIL_JIRA_EMAIL": fake_jira.email,
        "JSM_MAIL_JIRA_API_TOKEN": fake_jira.api_token,
        "JSM_MAIL_JIRA_TIMEOUT_S": "5",
        "JSM_MAIL_JIRA_INDEX_LAG_S": "0",
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
    _recorded: int = 0

    def poll(self) -> PollReport:
        return poll_mailbox(self.link, self.settings, self.store, self.jira)

    def log(self) -> list[LogEntry]:
        """The processing log, oldest first."""
        return list(reversed(self.store.processing_log(link=self.link.name)))

    def record(self, outcome: Outcome, *, message_id: str | None, sender: str | None, subject: str | None) -> None:
        """A processing-log row written by the record step, as if a mail had ended so."""
        self._recorded += 1
        about = MailAbout(message_id or f"sha256:seed{self._recorded}", message_id, sender, subject)
        ctx = Context(self.settings, self.link, self.store, self.jira)
        record(ctx, about, RawMail(MailRef(self.link.id, f"seed-{self._recorded}"), b""), outcome)

    def quarantine(self, sender: str) -> None:
        """Quarantine a sender the way the new-request budget does."""
        self.record(Outcome(OutcomeState.REJECTED, reason=RejectReason.SENDER_QUARANTINED, detail="over budget",
                            facts=Facts(quarantine=sender)), message_id=None, sender=sender, subject="storm")

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


@pytest.fixture
def env(settings, tmp_path) -> dict[str, str]:
    """The environment of a `jsm-mail` subprocess that works on the same data dir and fake Jira."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("JSM_MAIL_")},
            "JSM_MAIL_DATA_DIR": str(settings.data_dir), "JSM_MAIL_JIRA_URL": settings.jira_url,
            "JSM_MAIL_JIRA_EMAIL": settings.jira_email,
            "JSM_MAIL_JIRA_API_TOKEN": settings.jira_api_token.reveal(),
            "JSM_MAIL_JIRA_INDEX_LAG_S": "0", "JSM_MAIL_ENV_FILE": str(tmp_path / "no.env")}


def jsm_mail(env: dict[str, str], *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugin.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout_s, check=False)


@pytest.fixture
def sending(service: Service, smtp_sink) -> Service:
    """The test link, mailing agents' answers through the SMTP sink as "Example Support"."""
    from plugin.domain import Security
    service.relink(smtp_host=smtp_sink.host, smtp_port=smtp_sink.port, smtp_security=Security.NONE,
                   from_name="Example Support")
    return service
