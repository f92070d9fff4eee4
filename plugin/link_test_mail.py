"""A link's test mail: sent through the link's outbound path to its own address, and recognised when the poll
reads it back, so it is recorded as "test mail received" and never becomes a request."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from plugin.domain import InboundMail, Link, Outcome, OutcomeState, Secret
from plugin.outbound.compose import POLICY, message_id_domain, sender_of
from plugin.outbound.send import Delivery, deliver
from plugin.settings import Settings

HEADER = "X-JSM-Mail-Link-Test"
EVIDENCE = "link test mail"


def _signature(link_id: int, nonce: str, key: Secret) -> str:
    """Only this service can mark a mail as a link's test: an HMAC of the link and a nonce with the service key."""
    digest = hmac.new(key.reveal().encode("utf-8"), f"{link_id}:{nonce}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def compose_test_mail(link: Link, settings: Settings, *, now: datetime | None = None) -> EmailMessage:
    """A short plain-text mail from the link to its own address, carrying the signed marker."""
    nonce = secrets.token_hex(8)
    sender = sender_of(link)
    msg = EmailMessage(policy=POLICY)
    msg["From"] = formataddr((sender.name, sender.address))
    msg["To"] = link.address
    msg["Subject"] = f"jsm-mail test of the link {link.name}"
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = f"<link-test.{nonce}@{message_id_domain(link)}>"
    # RFC 3834 section 5: automatic mail says so; responders on the way leave it alone.
    msg["Auto-Submitted"] = "auto-generated"
    msg[HEADER] = f"{nonce}.{_signature(link.id, nonce, settings.secret_key)}"
    msg.set_content(f"This mail tests the link {link.name}: jsm-mail sent it through the link's outgoing mail "
                    "server to the linked mailbox itself. When the next poll reads it, the processing log shows "
                    "\"test mail received\". It creates no request.\n", charset="utf-8")
    return msg


def send_test_mail(link: Link, settings: Settings, smtp_password: Secret | None) -> tuple[str, Delivery]:
    """Send the test mail; returns its Message-ID (without brackets). RetryLater or MailRefused say why not."""
    msg = compose_test_mail(link, settings)
    delivery = deliver(link, msg, sender_of(link).address, (link.address,), smtp_password=smtp_password,
                       cafile=settings.ca_file)
    return str(msg["Message-ID"]).strip("<>"), delivery


def recognised_test_mail(mail: InboundMail, link: Link, key: Secret) -> Outcome | None:
    """The outcome of the link's own test mail coming back; None for every other mail (and forged markers)."""
    marker = mail.header(HEADER)
    if not marker:
        return None
    nonce, _, signature = marker.strip().partition(".")
    if not hmac.compare_digest(signature, _signature(link.id, nonce, key)):
        return None
    return Outcome(OutcomeState.IGNORED, evidence=EVIDENCE,
                   detail="test mail received: the link's outgoing mail reached its mailbox and the poll read it; "
                          "no request created")
