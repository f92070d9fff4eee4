"""A polling round for one link: fetch, process each mail, label it, write the processing log."""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace

from plugin.context import Context
from plugin.domain import Link, MailProtocol, MailRef, Outcome, OutcomeState, RawMail
from plugin.errors import MailRejected, RejectReason, RetryLater
from plugin.jira.gateway import JiraGateway
from plugin.mailboxes import Mailbox, open_mailbox
from plugin.parse.mail import parse_bytes, parse_mail
from plugin.pipeline import Handled, process
from plugin.settings import Settings
from plugin.store.store import Store

log = logging.getLogger(__name__)


@dataclass
class PollReport:
    link: str
    outcomes: Counter = field(default_factory=Counter)
    retry_after_s: float | None = None
    error: str | None = None

    def __str__(self) -> str:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(self.outcomes.items())) or "no new mail"
        extra = f"; {self.error}" if self.error else ""
        return f"{self.link}: {counts}{extra}"


def poll_mailbox(link: Link, settings: Settings, store: Store, jira: JiraGateway) -> PollReport:
    """One round over one link; an outage ends the round early and leaves mail untouched."""
    report = PollReport(link.name)
    ctx = Context(settings, link, store, jira)
    try:
        with open_mailbox(link, cafile=settings.ca_file, store=store) as mailbox:
            for ref in mailbox.unhandled():
                handled = _handle_one(mailbox, ref, ctx)
                if handled is None:
                    continue
                report.outcomes[handled.outcome.state.value] += 1
                if handled.outcome.state is OutcomeState.WAITING_RETRY:
                    report.error, report.retry_after_s = handled.outcome.detail, handled.retry_after_s
                    break
    except RetryLater as outage:
        log.warning("mailbox unavailable link=%s: %s", link.name, outage.detail)
        store.log_error(link.name, None, outage)
        report.error, report.retry_after_s = outage.detail, outage.after_s
    return report


def _handle_one(mailbox: Mailbox, ref: MailRef, ctx: Context) -> Handled | None:
    link, store = ctx.link, ctx.store
    if ref.size_bytes is not None and ref.size_bytes > link.max_size_bytes:
        return _reject_too_large(mailbox, ref, ctx)
    raw = mailbox.fetch(ref)
    try:
        handled = process(raw, ctx)
    except RetryLater as outage:
        log.warning("waiting-retry link=%s uid=%s: %s", link.name, ref.uid, outage.detail)
        outcome = Outcome(OutcomeState.WAITING_RETRY, detail=f"{outage.detail}; retried at the next poll")
        handled = replace(_describe(raw, outcome), retry_after_s=outage.after_s)
        store.log_outcome(link, outcome, message_id=handled.message_id, sender=handled.sender,
                          subject=handled.subject)
        return handled
    except Exception as bug:  # a bug in our code: this mail waits, the next one goes on
        log.exception("internal error link=%s uid=%s", link.name, ref.uid)
        _record_bug(ctx, raw, bug)
        return None
    outcome = handled.outcome
    if outcome.state.is_final:
        mailbox.label(ref, outcome)
    log.info("%s link=%s message_id=%s issue=%s reason=%s", outcome.state.value, link.name,
             handled.message_id, outcome.issue_key, outcome.reason)
    if ctx.settings.demo and outcome.issue_key:
        outcome = replace(outcome, detail=f"dry run, nothing sent to Jira: would be {outcome.detail}")
    keep_raw = outcome.state in (OutcomeState.REJECTED, OutcomeState.FAILED)
    store.log_outcome(link, outcome, message_id=handled.message_id, sender=handled.sender,
                      subject=handled.subject, raw=raw.data if keep_raw else None)
    return handled


def _record_bug(ctx: Context, raw: RawMail, bug: Exception) -> None:
    """Count the failure against the mail; if even that fails, the log line above must do."""
    try:
        about = _describe(raw, Outcome(OutcomeState.FAILED))
        ctx.store.log_error(ctx.link.name, about.message_id, bug)
        ctx.store.note_failure(ctx.link.id, about.ledger_id)
    except Exception:  # never let bookkeeping stop the round
        log.exception("could not record the internal error link=%s", ctx.link.name)


def human_size(size_bytes: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("kB", 1024)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.1f} {unit}"
    return f"{size_bytes} bytes"


def _describe(raw: RawMail, outcome: Outcome) -> Handled:
    """What the log shows of a mail whose handling stopped midway."""
    try:
        mail = parse_mail(raw)
    except MailRejected:
        return Handled(outcome, f"sha256:{raw.sha256}")
    return Handled(outcome, mail.ledger_id, mail.message_id, mail.sender.address if mail.sender else None,
                   mail.subject)


def _reject_too_large(mailbox: Mailbox, ref: MailRef, ctx: Context) -> Handled | None:
    """Judged from the server's size before download; the mail stays in the mailbox."""
    ledger_id = f"too-large:{ref.uid}:{ref.size_bytes}"
    if ctx.store.ledger_entry(ctx.link.id, ledger_id):
        return None  # POP3 cannot label it: logged once, left on the server
    outcome = Outcome(OutcomeState.REJECTED, reason=RejectReason.TOO_LARGE,
                      detail=f"{human_size(ref.size_bytes)} is over the {human_size(ctx.link.max_size_bytes)} "
                             "limit of this link; the mail was not downloaded and stays in the mailbox")
    about = _describe_headers(mailbox.headers(ref), outcome, ledger_id)
    ctx.store.finish(ctx.link.id, ledger_id, outcome)
    if ctx.link.protocol is not MailProtocol.POP3:
        mailbox.label(ref, outcome)
    ctx.store.log_outcome(ctx.link, outcome, message_id=about.message_id, sender=about.sender,
                          subject=about.subject or f"(mail {ref.uid}, not downloaded)")
    return about


def _describe_headers(headers: bytes | None, outcome: Outcome, ledger_id: str) -> Handled:
    """Who sent a mail we will not download, and about what, from its header section alone."""
    if headers:
        try:
            mail = parse_bytes(headers.rstrip(b"\r\n") + b"\r\n\r\n")
            return Handled(outcome, ledger_id, mail.message_id, mail.sender.address if mail.sender else None,
                           mail.subject)
        except MailRejected:
            pass
    return Handled(outcome, ledger_id)


def poll_links(settings: Settings, store: Store, jira: JiraGateway, link_name: str | None = None) -> list[PollReport]:
    """One round over every enabled link (or the one named)."""
    links = [store.link(link_name)] if link_name else [link for link in store.links() if link.enabled]
    return [poll_mailbox(link, settings, store, jira) for link in links if link is not None]
