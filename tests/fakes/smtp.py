"""Fixtures: an aiosmtpd sink on loopback that keeps what it receives, and STARTTLS + AUTH submission servers
(password, or XOAUTH2 with a bearer token)."""
from __future__ import annotations

import base64
import binascii
import email
import email.policy
import json
import socket
import ssl
from collections.abc import Callable, Iterator
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


def _tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    """A server TLS context for 127.0.0.1 and the certificate file a client must trust."""
    from tests.fakes.dovecot import make_certificate, openssl_path

    directory = tmp_path_factory.mktemp("smtp-tls")
    cert = make_certificate(openssl_path(), directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, directory / "key.pem")
    return context, str(cert)


@pytest.fixture
def smtp_submission(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthSmtpSink]:
    """An SMTP server on loopback that requires STARTTLS and a login; set `.username` and `.password`."""
    context, cafile = _tls(tmp_path_factory)
    sink = AuthSmtpSink(port=_free_port(), cafile=cafile)
    controller = Controller(sink, hostname=sink.host, port=sink.port, tls_context=context, require_starttls=True,
                            auth_required=True, authenticator=sink.authenticate)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def _no_token(user: str, token: str) -> bool:
    return False


@dataclass
class OAuthSmtpSink(SmtpSink):
    """A submission server that signs in with AUTH XOAUTH2 only, as smtp.office365.com and smtp.gmail.com do
    for OAuth clients; `bearer(user, token)` says whether the token is good for that user."""

    bearer: Callable[[str, str], bool] = _no_token
    cafile: str = ""
    logins: list[str] = field(default_factory=list)  # users signed in
    refused: list[str] = field(default_factory=list)  # users whose token was refused

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """aiosmtpd handler auth hook for `AUTH XOAUTH2 <initial response>`.

        The initial response is base64 of "user=" user ^A "auth=Bearer " token ^A ^A; a refused token
        gets 334 and a base64 JSON error, the client answers with an empty line, and the server ends
        with 535 (developers.google.com/gmail/imap/xoauth2-protocol, learn.microsoft.com/exchange/
        client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth).
        """
        if len(args) != 2:
            return AuthResult(success=False, handled=False, message="501 5.5.2 XOAUTH2 needs an initial response")
        try:
            fields = base64.b64decode(args[1], validate=True).decode("ascii").split("\x01")
        except (binascii.Error, UnicodeDecodeError):
            return AuthResult(success=False, handled=False, message="501 5.5.2 initial response is not base64")
        if len(fields) != 4 or fields[2:] != ["", ""] or not fields[0].startswith("user=") \
                or not fields[1].startswith("auth=Bearer "):
            return AuthResult(success=False, handled=False, message="501 5.5.2 not an XOAUTH2 initial response")
        user, token = fields[0].removeprefix("user="), fields[1].removeprefix("auth=Bearer ")
        if self.bearer(user, token):
            self.logins.append(user)
            return AuthResult(success=True, auth_data=user)
        self.refused.append(user)
        error = json.dumps({"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"})
        await server.challenge_auth(error)
        return AuthResult(success=False, handled=False)


@pytest.fixture
def smtp_xoauth2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthSmtpSink]:
    """An SMTP server on loopback that requires STARTTLS and AUTH XOAUTH2; set `.bearer`."""
    context, cafile = _tls(tmp_path_factory)
    sink = OAuthSmtpSink(port=_free_port(), cafile=cafile)
    controller = Controller(sink, hostname=sink.host, port=sink.port, tls_context=context, require_starttls=True,
                            auth_required=True, auth_exclude_mechanism=["LOGIN", "PLAIN"])
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
