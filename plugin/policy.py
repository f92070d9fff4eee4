"""Who may write to a link: the sender and recipient checks that reject mail with a reason."""
from __future__ import annotations

from plugin.context import Context
from plugin.domain import InboundMail, MailKind, Verdict
from plugin.errors import MailRejected, RejectReason


def allowlisted(mail: InboundMail, ctx: Context) -> bool:
    """Senders whose mail systems mark real mail as automatic (as JSM's allowlist does)."""
    return mail.sender is not None and mail.sender.domain in {d.lower() for d in ctx.link.autoreply_allow_domains}


def effective_verdict(mail: InboundMail, verdict: Verdict, ctx: Context) -> Verdict:
    """The classifier's verdict, with what only the link knows: its own address, its allowlist."""
    if verdict.kind is MailKind.MAIL and mail.sender and mail.sender.address.lower() in ctx.link.own_addresses:
        return Verdict(MailKind.LOOP, f"sent from the linked mailbox {mail.sender.address} itself")
    if verdict.kind is MailKind.AUTO_REPLY and mail.sender and allowlisted(mail, ctx):
        return Verdict(MailKind.MAIL, f"allowlisted domain {mail.sender.domain}; ignored {verdict.evidence}")
    return verdict


def check_sender(mail: InboundMail, ctx: Context) -> None:
    """Reject customer mail that no request may come from."""
    link = ctx.link
    if mail.sender is None or "@" not in mail.sender.address:
        raise MailRejected(RejectReason.MISSING_FROM, "the mail has no usable From address")
    if link.require_to and not (mail.to or mail.cc):
        raise MailRejected(RejectReason.MISSING_TO, "the mail has no To or Cc recipient")
    if mail.sender.domain in {d.lower() for d in link.blocked_domains}:
        raise MailRejected(RejectReason.SENDER_NOT_ALLOWED,
                           f"mail from {mail.sender.domain} is blocked on link {link.name}")
    if ctx.store.is_quarantined(link.id, mail.sender.address):
        raise MailRejected(RejectReason.SENDER_QUARANTINED,
                           f"{mail.sender.address} is quarantined after too many new requests; "
                           "release the sender in the admin log to go on")
