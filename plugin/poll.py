"""A polling round for one link: hold the link's lease, fetch each unhandled mail, hand it to the pipeline."""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from plugin.alerts import alert_if_due
from plugin.context import Context
from plugin.domain import Link, MailProtocol, MailRef, Outcome, OutcomeState, RawMail
from plugin.errors import MailGone, MailRejected, RejectReason, RetryLater
from plugin.jira.gateway import JiraGateway
from plugin.link_status import Progress, RoundWatch
from plugin.log_setup import about_link
from plugin.mailboxes import Mailbox, open_mailbox
from plugin.metrics import POLL_SECONDS
from plugin.outbound.outbox import OutboundReport, run_outbound
from plugin.parse.mail import parse_bytes, parse_mail
from plugin.pipeline import Handled, process
from plugin.record import MailAbout, record, record_waiting
from plugin.settings import Settings
from plugin.store.store import LeaseLost, Store

log = logging.getLogger(__name__)
LEASE_RENEWALS = 5  # renewals per TTL: a worker renews its lease long before another may take it
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_dead(holder: str) -> bool:
    """A lease holder on this machine whose process is gone (killed, crashed) holds nothing."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class PollReport:
    link: str
    outcomes: Counter[str] = field(default_factory=Counter)
    retry_after_s: float | None = None
    error: str | None = None
    skipped: str | None = None  # the round did not run, and why
    unreachable: bool = False  # the mailbox could not be reached, logged in to, or its folder opened
    outbound: OutboundReport | None = None  # None: the link sends no mail
    waiting: int = 0  # mails left for later rounds by the intake limit

    def __str__(self) -> str:
        if self.skipped:
            return f"{self.link}: skipped, {self.skipped}"
        if self.unreachable:
            return f"{self.link}: mailbox not reached: {self.error}"
        counts = ", ".join(f"{n} {state}" for state, n in sorted(self.outcomes.items())) or "no new mail"
        extra = f"; {self.error}" if self.error else ""
        if self.waiting:
            extra += f"; {self.waiting} more wait for the next round (intake limit)"
        outbound = f"; outbound: {self.outbound}" if self.outbound else ""
        return f"{self.link}: {counts}{extra}{outbound}"


def poll_mailbox(link: Link, settings: Settings, store: Store, jira: JiraGateway,
                 progress: Progress | None = None) -> PollReport:
    """One round over one link; an outage ends the round early and leaves mail untouched."""
    report = PollReport(link.name)
    if not link.enabled:
        report.skipped = "the link is disabled"
        return report
    if not store.acquire_lease(link.id, WORKER_ID, settings.lease_ttl_s, holder_is_dead):
        report.skipped = "another process is polling this link"
        return report
    ctx = Context(settings, link, store, jira, lease=WORKER_ID)
    watch = RoundWatch(store, link, progress)
    try:
        with about_link(link.name), POLL_SECONDS.labels(link.name).time():
            _poll_inbound(link, ctx, report, watch)
            report.outbound = run_outbound(link, settings, store, jira)  # inbound, then outbound (DESIGN.md 8)
    finally:
        store.release_lease(link.id, WORKER_ID)
    with about_link(link.name):
        alert_if_due(settings, store, link, watch.ended(report.error))
    return report


def _poll_inbound(link: Link, ctx: Context, report: PollReport, watch: RoundWatch) -> None:
    store, settings = ctx.store, ctx.settings
    renewed = time.monotonic()
    # Intake limit: a backlog or a flood reaches Jira at a steady pace; mailboxes list oldest first.
    room = link.intake_per_minute - store.handled_since(link.id, datetime.now(UTC) - timedelta(minutes=1))
    try:
        with open_mailbox(link, cafile=settings.ca_file, store=store) as mailbox:
            waiting = mailbox.unhandled()
            watch.found(len(waiting))
            for n, ref in enumerate(waiting):
                if n >= room:
                    report.waiting = len(waiting) - n
                    break
                if time.monotonic() - renewed > settings.lease_ttl_s / LEASE_RENEWALS:
                    if not store.acquire_lease(link.id, WORKER_ID, settings.lease_ttl_s):
                        raise LeaseLost(f"another process took over link {link.name}")
                    renewed = time.monotonic()
                handled = _handle_one(mailbox, ref, ctx)
                if handled is None:
                    continue
                report.outcomes[handled.outcome.state.value] += 1
                watch.handled(handled.outcome.state.value, handled.outcome.state.is_final)
                if handled.outcome.state is OutcomeState.WAITING_RETRY:
                    report.error = handled.outcome.detail
                    report.retry_after_s = handled.retry_after_s
                    break
    except RetryLater as outage:
        log.warning("mailbox unavailable link=%s: %s", link.name, outage.detail)
        store.log_error(link.name, None, outage)
        report.error, report.retry_after_s = outage.detail, outage.after_s
        report.unreachable = True
    except LeaseLost as lost:
        log.warning("stopped link=%s: %s", link.name, lost)
        report.error = str(lost)


def _handle_one(mailbox: Mailbox, ref: MailRef, ctx: Context) -> Handled | None:
    link = ctx.link
    if ref.size_bytes is not None and ref.size_bytes > link.max_size_bytes:
        return _reject_too_large(mailbox, ref, ctx)
    try:
        raw = mailbox.fetch(ref)
    except MailGone as gone:  # a person deleted or moved it after it was listed: nothing left to handle
        log.info("skipped link=%s uid=%s: %s", link.name, ref.uid, gone.detail)
        return None
    try:
        handled = process(raw, ctx, mailbox)
    except RetryLater as outage:
        if _finished(ctx, raw):
            raise  # Jira and the log have it; only its label waits for the mailbox, at the next round
        log.warning("waiting-retry link=%s uid=%s: %s", link.name, ref.uid, outage.detail)
        ctx.store.log_error(link.name, None, outage)  # one row per outage: repeats count on it
        outcome = Outcome(OutcomeState.WAITING_RETRY, detail=f"{outage.detail}; retried at the next poll")
        about = _describe(raw)
        record_waiting(ctx, about, outcome)
        return Handled(outcome, about, outage.after_s)
    except LeaseLost:
        raise
    except Exception as bug:  # a bug in our code: this mail waits, the next one goes on
        log.exception("internal error link=%s uid=%s", link.name, ref.uid)
        _record_bug(ctx, raw, bug)
        return None
    outcome = handled.outcome
    log.info("%s link=%s message_id=%s issue=%s reason=%s", outcome.state.value, link.name,
             handled.about.message_id, outcome.issue_key, outcome.reason)
    return handled


def _finished(ctx: Context, raw: RawMail) -> bool:
    """Whether the ledger holds this mail's final outcome (recorded before its label was refused)."""
    entry = ctx.store.ledger_entry(ctx.link.id, _describe(raw).ledger_id)
    return entry is not None and entry.finished


def _record_bug(ctx: Context, raw: RawMail, bug: Exception) -> None:
    """Count the failure against the mail; if even that fails, the log line above must do."""
    try:
        about = _describe(raw)
        ctx.store.log_error(ctx.link.name, about.message_id, bug)
        ctx.store.note_failure(ctx.link.id, about.ledger_id)
    except Exception:  # never let bookkeeping stop the round
        log.exception("could not record the internal error link=%s", ctx.link.name)


def human_size(size_bytes: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("kB", 1024)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.1f} {unit}"
    return f"{size_bytes} bytes"


def _describe(raw: RawMail) -> MailAbout:
    """What the log shows of a mail whose handling stopped midway."""
    try:
        return MailAbout.of(parse_mail(raw))
    except MailRejected:
        return MailAbout.unparsed(raw)


def _reject_too_large(mailbox: Mailbox, ref: MailRef, ctx: Context) -> Handled | None:
    """Judged from the server's size before download; the mail stays in the mailbox."""
    assert ref.size_bytes is not None
    ledger_id = f"too-large:{ref.uid}:{ref.size_bytes}"
    if ctx.store.ledger_entry(ctx.link.id, ledger_id):
        return None  # POP3 cannot label it: logged once, left on the server
    outcome = Outcome(OutcomeState.REJECTED, reason=RejectReason.TOO_LARGE,
                      detail=f"{human_size(ref.size_bytes)} is over the {human_size(ctx.link.max_size_bytes)} "
                             "limit of this link; the mail was not downloaded and stays in the mailbox")
    about = _describe_headers(mailbox.headers(ref), ledger_id, f"(mail {ref.uid}, not downloaded)")
    record(ctx, about, RawMail(ref, b""), outcome)
    if ctx.link.protocol is not MailProtocol.POP3:
        mailbox.label(ref, outcome)
    return Handled(outcome, about)


def _describe_headers(headers: bytes | None, ledger_id: str, untitled: str) -> MailAbout:
    """Who sent a mail we will not download, and about what, from its header section alone."""
    if headers:
        try:
            mail = parse_bytes(headers.rstrip(b"\r\n") + b"\r\n\r\n")
            return MailAbout(ledger_id, mail.message_id, mail.sender.address if mail.sender else None,
                             mail.subject or untitled)
        except MailRejected:
            pass
    return MailAbout(ledger_id, subject=untitled)


def poll_links(settings: Settings, store: Store, jira: JiraGateway, link_name: str | None = None,
               progress: Progress | None = None) -> list[PollReport]:
    """One round over every enabled link (or the one named)."""
    links = [store.link(link_name)] if link_name else [link for link in store.links() if link.enabled]
    return [poll_mailbox(link, settings, store, jira, progress) for link in links if link is not None]
