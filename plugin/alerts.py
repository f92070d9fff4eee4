"""Alert mail to the admins (JSM_MAIL_ALERT_TO): once when a link has failed for long, once when it recovers."""
from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from plugin.domain import AuthMethod, Link, MailProtocol, Secret, Security
from plugin.errors import RetryLater
from plugin.link_status import link_status
from plugin.outbound.compose import message_id_domain, sender_of
from plugin.outbound.send import MailRefused, can_send, deliver
from plugin.settings import Settings
from plugin.store.link_state import LinkState, note_alerted
from plugin.store.outbox import Outbox
from plugin.store.store import Store

log = logging.getLogger(__name__)


def alert_if_due(settings: Settings, store: Store, link: Link, state: LinkState, now: datetime | None = None) -> None:
    """After a round: mail the admins when the link has failed longer than /health allows and they were not
    told yet, or when a link they were told about works again. A mail that cannot go now goes after a later round."""
    if not settings.alert_to:
        return
    now = now or datetime.now(UTC)
    failing_long = (state.failing_since is not None
                    and (now - state.failing_since).total_seconds() > settings.link_failing_alert_s)
    if failing_long and state.alerted_at is None:
        if _send(settings, store, link, _failing_mail(settings, store, link, state)):
            note_alerted(store, link.id, now)
    elif state.failing_since is None and state.alerted_at is not None and _send(
            settings, store, link, _recovered_mail(settings, link, state, now)):
        note_alerted(store, link.id, None)


def _failing_mail(settings: Settings, store: Store, link: Link, state: LinkState) -> EmailMessage:
    status = link_status(store, link)
    last = f"{state.last_success_at:%Y-%m-%d %H:%M} UTC" if state.last_success_at else "never"
    body = (f"The link {link.name} has failed since {state.failing_since:%Y-%m-%d %H:%M} UTC:\n"
            f"{state.failing_reason}\n\n"
            f"Mails waiting: {status.mails_waiting}\n"
            f"Last successful poll: {last}\n\n"
            "Mail keeps waiting in the mailbox and is handled once the link works again. "
            "The admin pages show the link's status; `jsm-mail links test` checks it.\n"
            "One more mail follows when it recovers.\n")
    return _mail(settings, link, f"jsm-mail: link {link.name} is failing", body)


def _recovered_mail(settings: Settings, link: Link, state: LinkState, now: datetime) -> EmailMessage:
    body = (f"The link {link.name} works again: its last poll at {now:%Y-%m-%d %H:%M} UTC went well.\n"
            "Mails that waited are being handled.\n")
    return _mail(settings, link, f"jsm-mail: link {link.name} has recovered", body)


def _mail(settings: Settings, link: Link, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.alert_from or str(sender_of(link))
    msg["To"] = ", ".join(settings.alert_to)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    # Our Message-ID domain and Auto-Submitted (RFC 3834): should an alert land in a linked mailbox,
    # it is recognised as our own machine-made mail, never turned into a request.
    msg["Message-ID"] = make_msgid("alert", domain=message_id_domain(link))
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    return msg


def _send(settings: Settings, store: Store, link: Link, msg: EmailMessage) -> bool:
    """Through the service's alert SMTP server when set (it works whatever a link's trouble), else the link's own
    way of sending (its SMTP server, or Exchange itself); False when it could not go."""
    sender = settings.alert_from or sender_of(link).address
    if settings.alert_smtp_host:
        # Only the alert server's own login: the link's mailbox password never goes to another server.
        way = dataclasses.replace(
            link, protocol=MailProtocol.IMAP, auth=AuthMethod.PASSWORD, username=settings.alert_smtp_username,
            password=Secret(""), smtp_host=settings.alert_smtp_host, smtp_port=settings.alert_smtp_port,
            smtp_security=Security(settings.alert_smtp_security), smtp_username=settings.alert_smtp_username)
        password: Secret | None = settings.alert_smtp_password or None
    elif can_send(link):
        way, password = link, Outbox(store).smtp_password(link.id)
    else:
        log.warning("alert about link %s not sent: set JSM_MAIL_ALERT_SMTP_HOST, the link sends no mail", link.name)
        return False
    try:
        deliver(way, msg, sender, settings.alert_to, smtp_password=password, cafile=settings.ca_file, links=store)
    except (RetryLater, MailRefused) as failed:
        log.warning("alert about link %s not sent, tried again after the next round: %s", link.name, failed)
        store.log_error(link.name, None, failed)
        return False
    log.info("alert sent to %s: %s", ", ".join(settings.alert_to), msg["Subject"])
    return True
