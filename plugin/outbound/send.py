"""Hand a composed mail to the link's server: SMTP (IMAP and POP3 links), or the Exchange mailbox itself
(EWS, Graph)."""
from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, replace
from email.message import EmailMessage

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from plugin.domain import AuthMethod, Link, MailProtocol, Secret, Security
from plugin.errors import RetryLater
from plugin.mailboxes.network import (
    RETRY_AFTER_CONFIG_S,
    RETRY_AFTER_S,
    TIMEOUT_S,
    network_errors_as_retry,
)
from plugin.mailboxes.oauth import LinkStore, sign_in_with_token, xoauth2_string

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
    """A link sends through its SMTP server, or through Exchange itself (EWS, Graph)."""
    return link.send_replies and (link.protocol in (MailProtocol.EWS, MailProtocol.GRAPH) or bool(link.smtp_host))


def deliver(link: Link, msg: EmailMessage, sender: str, recipients: tuple[str, ...], *,
            smtp_password: Secret | None, cafile: str | None, links: LinkStore | None = None) -> Delivery:
    """Send the mail; RetryLater when the server cannot take it now (down, 4xx, throttled), MailRefused on a 5xx.

    Exchange sends to the To and Cc of the mail itself, so every recipient counts as accepted.
    `links` keeps a refresh token the identity platform rotated while signing in to SMTP.
    """
    if link.protocol is MailProtocol.EWS:
        from plugin.mailboxes.ews import EwsMailbox
        with EwsMailbox.connect(link, cafile=cafile, store=links) as mailbox:
            mailbox.send(msg.as_bytes())
        return Delivery(recipients)
    if link.protocol is MailProtocol.GRAPH:
        from plugin.mailboxes.graph import GraphMailbox, SendRefused
        try:
            with GraphMailbox.connect(link, cafile=cafile) as graph:
                graph.send(msg.as_bytes())
        except SendRefused as refused:
            raise MailRefused(refused.detail) from None
        return Delivery(recipients)
    return _smtp(link, msg, sender, recipients, smtp_password, cafile, links)


def _smtp(link: Link, msg: EmailMessage, sender: str, recipients: tuple[str, ...], password: Secret | None,
          cafile: str | None, links: LinkStore | None) -> Delivery:
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
            _log_in(client, link, password, where, cafile, links)
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


def _log_in(client: smtplib.SMTP, link: Link, password: Secret | None, where: str, cafile: str | None,
            links: LinkStore | None) -> None:
    """SMTP AUTH (RFC 4954): the link's own SMTP password if it has one, else the mailbox's sign-in:
    XOAUTH2 with the mailbox user's token for OAuth links, or the mailbox password."""
    user = link.smtp_username or link.username
    if link.auth is AuthMethod.OAUTH2_DELEGATED and not password:
        if "XOAUTH2" not in client.esmtp_features.get("auth", "").upper().split():
            raise RetryLater(f"{where} does not offer AUTH XOAUTH2, which the link's OAuth sign-in needs; "
                             "give the link an SMTP password or another SMTP server", RETRY_AFTER_CONFIG_S)
        sign_in_with_token(link, lambda token: _xoauth2(client, user, token), smtplib.SMTPAuthenticationError,
                           cafile, links)
        return
    password = password or link.password
    if client.has_extn("auth") and password:
        client.login(user, password.reveal())


def _xoauth2(client: smtplib.SMTP, user: str, token: str) -> None:
    """AUTH XOAUTH2 with the initial response (developers.google.com/gmail/imap/xoauth2-protocol,
    learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth).
    A refused token gets a 334 with a JSON error; the client answers it with an empty line, then 535 follows."""
    # smtplib base64-encodes what the callback returns: first the initial response, then "" to the error.
    client.auth("XOAUTH2", lambda challenge=None: "" if challenge is not None else xoauth2_string(user, token))


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

def _imap(link: Link, cafile: str | None, links: LinkStore | None) -> IMAPClient:
    context = ssl.create_default_context(cafile=cafile)
    if link.security is Security.SSL:
        client = IMAPClient(link.host, port=link.port, ssl=True, ssl_context=context, timeout=TIMEOUT_S)
    else:
        client = IMAPClient(link.host, port=link.port, ssl=False, timeout=TIMEOUT_S)
        if link.security is Security.STARTTLS:
            client.starttls(context)
    if link.auth is AuthMethod.OAUTH2_DELEGATED:
        sign_in_with_token(link, lambda token: client.oauth2_login(link.username, token), LoginError, cafile, links)
    else:
        client.login(link.username, link.password.reveal())
    return client


def keeps_sent_copy(link: Link) -> bool:
    return link.protocol is MailProtocol.IMAP and bool(link.sent_folder)


def finds_sent_copy(link: Link) -> bool:
    """Whether a mail sent just before a crash can be found again: the IMAP Sent folder, or Graph's Sent Items."""
    return keeps_sent_copy(link) or (link.protocol is MailProtocol.GRAPH and can_send(link))


def sent_folder_name(link: Link) -> str:
    return "Sent Items" if link.protocol is MailProtocol.GRAPH else link.sent_folder


def save_sent_copy(link: Link, msg: EmailMessage, cafile: str | None, links: LinkStore | None = None) -> None:
    """IMAP APPEND of the sent mail to the link's Sent folder (RFC 3501 section 6.3.11), marked read."""
    with network_errors_as_retry(link, "keep a copy in the Sent folder"):
        client = _imap(link, cafile, links)
        try:
            client.append(link.sent_folder, msg.as_bytes(), flags=(SEEN,))
        finally:
            client.logout()


def in_sent_folder(link: Link, message_id: str, cafile: str | None, links: LinkStore | None = None) -> bool:
    """Whether the Sent folder holds a mail with this Message-ID: it was sent before a crash."""
    if link.protocol is MailProtocol.GRAPH:
        from plugin.mailboxes.graph import GraphMailbox
        with GraphMailbox.connect(link, cafile=cafile) as graph:
            return graph.was_sent(message_id)
    with network_errors_as_retry(link, "search the Sent folder"):
        client = _imap(link, cafile, links)
        try:
            client.select_folder(link.sent_folder, readonly=True)
            return bool(client.search(["HEADER", "Message-ID", f"<{message_id}>"]))
        finally:
            client.logout()
