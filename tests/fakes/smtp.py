"""Fixtures: an aiosmtpd sink on loopback that keeps what it receives, and a STARTTLS + AUTH submission server."""
from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        """The mail as a mail client reads it."""
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class SmtpSink:
    """Where the sink listens and what it has received, in order."""

    host: str = HOST
    port: int = 0
    messages: list[ReceivedMail] = field(default_factory=list)
    refused_recipients: dict[str, str] = field(default_factory=dict)  # address -> reply, e.g. "550 5.1.1 ..."
    data_reply: str | None = None  # answer DATA with this (e.g. "451 4.3.0 try later") and keep nothing

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        """aiosmtpd handler hook: refuse the recipients a test names, accept the others."""
        if address.lower() in self.refused_recipients:
            return self.refused_recipients[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd handler hook: keep the mail, accept it."""
        if self.data_reply:
            return self.data_reply
        self.messages.append(ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


def _free_port() -> int:
    # Controller cannot take port 0: it connects to its own port to check that it is up.
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """An SMTP server on a free loopback port for one test; `.messages` lists what arrived."""
    sink = SmtpSink(port=_free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@dataclass
class AuthSmtpSink(SmtpSink):
    """A submission server: STARTTLS first, then AUTH with the one account it knows."""

    username: str = ""
    password: str = ""
    cafile: str = ""
    logins: list[str] = field(default_factory=list)

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        """aiosmtpd authenticator hook: LOGIN and PLAIN with username and password."""
        login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else ""
        self.logins.append(login)
        ok = (login, auth_data.password.decode()) == (self.username, self.password)
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_submission(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthSmtpSink]:
    """An SMTP server on loopback that requires STARTTLS and a login; set `.username` and `.password`."""
    from tests.fakes.dovecot import make_certificate, openssl_path

    directory = tmp_path_factory.mktemp("smtp-tls")
    cert = make_certificate(openssl_path(), directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, directory / "key.pem")
    sink = AuthSmtpSink(port=_free_port(), cafile=str(cert))
    controller = Controller(sink, hostname=sink.host, port=sink.port, tls_context=context, require_starttls=True,
                            auth_required=True, authenticator=sink.authenticate)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
