"""Hand a composed mail to the link's server: SMTP (IMAP and POP3 links) or the Exchange mailbox itself."""
from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, replace
from email.message import EmailMessage

from imapclient import IMAPClient

from plugin.domain import Link, MailProtocol, Secret, Security
from plugin.errors import RetryLater
from plugin.mailboxes.network import (
    RETRY_AFTER_CONFIG_S,
    RETRY_AFTER_S,
    TIMEOUT_S,
    network_errors_as_retry,
)

SMTP_PORTS = {Security.SSL: 465, Security.STARTTLS: 587, Security.NONE: 25}
SEEN = b"\\Seen"


@dataclass(frozen=True, slots=True)
class Refusal:
    address: str
    code: int
    words: str

    def __str__(self) -> str:
        return f"{self.address} ({self.code} {self.words})"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the server took: accepted recipients, and those it refused for good (5xx)."""

    accepted: tuple[str, ...]
    refused: tuple[Refusal, ...] = ()


class MailRefused(Exception):
    """The server refused the whole mail for good (5xx to MAIL FROM or DATA)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def can_send(link: Link) -> bool:
    """A link sends through its SMTP server, or through Exchange itself."""
    return link.send_replies and (link.protocol is MailProtocol.EWS or bool(link.smtp_host))


def deliver(link: Link, msg: EmailMessage, sender: str, recipients: tuple[str, ...], *,
            smtp_password: Secret | None, cafile: str | None) -> Delivery:
    """Send the mail; RetryLater when the server cannot take it now (down, 4xx), MailRefused on a 5xx."""
    if link.protocol is MailProtocol.EWS:
        from plugin.mailboxes.ews import EwsMailbox
        with EwsMailbox.connect(link, cafile=cafile) as mailbox:
            mailbox.send(msg.as_bytes())
        return Delivery(recipients)
    return _smtp(link, msg, sender, recipients, smtp_password or link.password, cafile)


def _smtp(link: Link, msg: EmailMessage, sender: str, recipients: tuple[str, ...], password: Secret,
          cafile: str | None) -> Delivery:
    host, security = link.smtp_host or "", link.smtp_security
    port = link.smtp_port or SMTP_PORTS[security]
    where = f"SMTP server {host}:{port}"
    context = ssl.create_default_context(cafile=cafile)
    try:
        client = (smtplib.SMTP_SSL(host, port, timeout=TIMEOUT_S, context=context) if security is Security.SSL
                  else smtplib.SMTP(host, port, timeout=TIMEOUT_S))
        with client:
            if security is Security.STARTTLS:
                client.starttls(context=context)
            client.ehlo_or_helo_if_needed()
            if client.has_extn("auth") and password:
                client.login(link.smtp_username or link.username, password.reveal())
            refused = client.send_message(msg, sender, list(recipients))
    except smtplib.SMTPAuthenticationError as exc:
        raise RetryLater(f"{where} refused the login of {link.smtp_username or link.username} "
                         f"({exc.smtp_code})", RETRY_AFTER_CONFIG_S) from None
    except smtplib.SMTPRecipientsRefused as exc:
        return _judge(recipients, exc.recipients, where)
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
        words = _words(exc.smtp_error)
        if 400 <= exc.smtp_code < 500:
            raise RetryLater(f"{where} cannot take the mail now: {exc.smtp_code} {words}", RETRY_AFTER_S) from None
        raise MailRefused(f"{where} refused the mail: {exc.smtp_code} {words}") from None
    except smtplib.SMTPException as exc:  # disconnected, no STARTTLS, an unexpected reply
        raise RetryLater(f"{where} failed: {type(exc).__name__}: {_words(str(exc))}", RETRY_AFTER_S) from None
    except OSError:  # smtplib's errors are OSErrors too, so sockets and TLS come last
        with network_errors_as_retry(replace(link, host=host, port=port), "send mail"):
            raise
    return _judge(recipients, refused, where)


def _judge(recipients: tuple[str, ...], refused: dict[str, tuple[int, bytes]], where: str) -> Delivery:
    """RFC 5321 section 4.2.1: 5yz is permanent, 4yz transient; a transient refusal of every recipient waits."""
    permanent = tuple(Refusal(a, code, _words(words)) for a, (code, words) in refused.items() if code >= 500)
    accepted = tuple(a for a in recipients if a not in refused)
    if not accepted and len(permanent) < len(refused):
        transient = ", ".join(f"{a} {code}" for a, (code, _) in refused.items() if code < 500)
        raise RetryLater(f"{where} cannot take the mail now: {transient}", RETRY_AFTER_S)
    return Delivery(accepted, permanent)


def _words(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


# Sent folder (IMAP links) --------------------------------------------------------------------

def _imap(link: Link, cafile: str | None) -> IMAPClient:
    context = ssl.create_default_context(cafile=cafile)
    if link.security is Security.SSL:
        client = IMAPClient(link.host, port=link.port, ssl=True, ssl_context=context, timeout=TIMEOUT_S)
    else:
        client = IMAPClient(link.host, port=link.port, ssl=False, timeout=TIMEOUT_S)
        if link.security is Security.STARTTLS:
            client.starttls(context)
    client.login(link.username, link.password.reveal())
    return client


def keeps_sent_copy(link: Link) -> bool:
    return link.protocol is MailProtocol.IMAP and bool(link.sent_folder)


def save_sent_copy(link: Link, msg: EmailMessage, cafile: str | None) -> None:
    """IMAP APPEND of the sent mail to the link's Sent folder (RFC 3501 section 6.3.11), marked read."""
    with network_errors_as_retry(link, "keep a copy in the Sent folder"):
        client = _imap(link, cafile)
        try:
            client.append(link.sent_folder, msg.as_bytes(), flags=(SEEN,))
        finally:
            client.logout()


def in_sent_folder(link: Link, message_id: str, cafile: str | None) -> bool:
    """Whether the Sent folder holds a mail with this Message-ID: it was sent before a crash."""
    with network_errors_as_retry(link, "search the Sent folder"):
        client = _imap(link, cafile)
        try:
            client.select_folder(link.sent_folder, readonly=True)
            return bool(client.search(["HEADER", "Message-ID", f"<{message_id}>"]))
        finally:
            client.logout()
