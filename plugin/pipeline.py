"""One mail's way: parse -> classify -> route -> apply -> record -> label; the only place that knows the order."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from plugin import faults
from plugin.classify.detectors import classify
from plugin.context import Context
from plugin.domain import InboundMail, MailKind, MailRef, Outcome, OutcomeState, RawMail, Route
from plugin.errors import MailRejected, RejectReason
from plugin.handlers import HANDLERS
from plugin.handlers.recovery import Attempt
from plugin.link_test_mail import recognised_test_mail
from plugin.parse import budget
from plugin.parse.mail import parse_mail
from plugin.policy import check_sender, effective_verdict
from plugin.record import MailAbout, record
from plugin.route.rules import choose_route, thread_entry


class Labeller(Protocol):
    def label(self, ref: MailRef, outcome: Outcome) -> None: ...


@dataclass(frozen=True, slots=True)
class Handled:
    """An outcome and the mail it is about."""

    outcome: Outcome
    about: MailAbout
    retry_after_s: float | None = None  # when Jira or the mailbox asked us to wait (Retry-After)


def own_message_id_domains(ctx: Context) -> frozenset[str]:
    """Message-ID domains our outbound mail carries; such mail coming back into the mailbox is a loop."""
    return frozenset(f"jsm-mail.{address.rpartition('@')[2]}" for address in ctx.link.own_addresses)


def understand(mail: InboundMail, ctx: Context) -> Route:
    """What the mail means for Jira, with the link's policy applied; raises MailRejected."""
    verdict = effective_verdict(mail, classify(mail, own_domains=own_message_id_domains(ctx)), ctx)
    if verdict.kind is MailKind.MAIL:
        check_sender(mail, ctx)
    return choose_route(mail, verdict, ctx.lookups)


def process(raw: RawMail, ctx: Context, mailbox: Labeller) -> Handled:
    """Handle one mail; RetryLater and bugs pass through to the poller with the mail untouched."""
    with budget.reading(ctx.settings.mail_time_budget_s):
        return _process(raw, ctx, mailbox)


def _process(raw: RawMail, ctx: Context, mailbox: Labeller) -> Handled:
    try:
        mail = parse_mail(raw)
    except MailRejected as rejected:
        outcome = Outcome(OutcomeState.REJECTED, reason=rejected.reason, detail=rejected.detail)
        return _finish(ctx, mailbox, raw, MailAbout.unparsed(raw), outcome)
    about = MailAbout.of(mail)
    entry = ctx.store.ledger_entry(ctx.link.id, about.ledger_id)
    if entry and entry.finished:
        return _handled_before(ctx, mailbox, raw, about, entry.state, entry.issue_key, entry.mailbox_uid)
    if entry and entry.failures >= ctx.settings.max_attempts:
        return _finish(ctx, mailbox, raw, about, Outcome(
            OutcomeState.FAILED, entry.issue_key, RejectReason.INTERNAL_ERROR,
            f"gave up after {entry.failures} failed attempts; the error log has the details"))
    earlier = ctx.store.begin(ctx.link.id, about.ledger_id, ctx.lease)
    attempt = Attempt(raw, about.ledger_id, retry=earlier is not None,
                      issue_key=earlier.issue_key if earlier else None,
                      started_at=earlier.started_at if earlier else None)
    try:
        # The link's own test mail (sent from the admin pages) is recorded, never made a request.
        outcome = recognised_test_mail(mail, ctx.link, ctx.settings.secret_key) or _applied(mail, attempt, ctx)
    except MailRejected as rejected:
        outcome = Outcome(OutcomeState.REJECTED, reason=rejected.reason, detail=rejected.detail)
    return _finish(ctx, mailbox, raw, about, outcome)


def _applied(mail: InboundMail, attempt: Attempt, ctx: Context) -> Outcome:
    route = understand(mail, ctx)
    return _indexed(HANDLERS[type(route)].apply(route, attempt, ctx), mail, ctx)


def _indexed(outcome: Outcome, mail: InboundMail, ctx: Context) -> Outcome:
    """A mail that became a request or a comment joins the threading index, so replies to it thread."""
    role = {OutcomeState.CREATED: "created", OutcomeState.COMMENTED: "commented"}.get(outcome.state)
    if role is None or outcome.issue_key is None:
        return outcome
    entry = thread_entry(mail, outcome.issue_key, role, ctx.link.smart_match)
    return replace(outcome, facts=replace(outcome.facts, thread=entry))


def _finish(ctx: Context, mailbox: Labeller, raw: RawMail, about: MailAbout, outcome: Outcome) -> Handled:
    record(ctx, about, raw, outcome)  # one commit: ledger, threading index, senders, log row
    faults.reached("recorded")
    mailbox.label(raw.ref, outcome)
    faults.reached("labelled")
    return Handled(outcome, about)


def _handled_before(ctx: Context, mailbox: Labeller, raw: RawMail, about: MailAbout, state: str,
                    issue_key: str | None, uid: str | None) -> Handled:
    """A mail the ledger finished: its label was lost (same copy), or it is a second copy of it."""
    if uid == raw.ref.uid:
        outcome = Outcome(OutcomeState(state), issue_key, detail="handled before; labelled now")
        mailbox.label(raw.ref, outcome)
        return Handled(outcome, about)
    outcome = Outcome(OutcomeState(state), issue_key, detail=f"another copy of a mail handled before "
                                                             f"({state}{' ' + issue_key if issue_key else ''}); "
                                                             "labelled like it")
    return _finish(ctx, mailbox, raw, about, outcome)
