"""One mail's way: parse -> classify -> route -> apply; the only place that knows the order."""
from __future__ import annotations

from dataclasses import dataclass

from plugin.classify.detectors import classify
from plugin.context import Context
from plugin.domain import InboundMail, MailKind, Outcome, OutcomeState, RawMail
from plugin.errors import MailRejected, RejectReason
from plugin.handlers import HANDLERS
from plugin.parse.mail import parse_mail
from plugin.policy import check_sender, effective_verdict
from plugin.route.rules import choose_route


@dataclass(frozen=True, slots=True)
class Handled:
    """An outcome and what the processing log shows of the mail it is about."""

    outcome: Outcome
    ledger_id: str
    message_id: str | None = None
    sender: str | None = None
    subject: str | None = None
    retry_after_s: float | None = None  # set when Jira asked us to wait (Retry-After)


def own_message_id_domains(ctx: Context) -> frozenset[str]:
    """Message-ID domains our outbound mail carries; such mail coming back into the mailbox is a loop."""
    return frozenset(f"jsm-mail.{address.rpartition('@')[2]}" for address in ctx.link.own_addresses)


def process(raw: RawMail, ctx: Context) -> Handled:
    """Handle one mail; RetryLater and bugs pass through to the poller, mail untouched."""
    try:
        mail = parse_mail(raw)
    except MailRejected as rejected:
        return _finish(ctx, f"sha256:{raw.sha256}", None,
                       Outcome(OutcomeState.REJECTED, reason=rejected.reason, detail=rejected.detail))
    entry = ctx.store.ledger_entry(ctx.link.id, mail.ledger_id)
    if entry and entry.finished:
        return _handled(mail, Outcome(OutcomeState(entry.state), entry.issue_key,
                                      detail="handled before; labelled now"))
    if entry and entry.failures >= ctx.settings.max_attempts:
        return _finish(ctx, mail.ledger_id, mail, Outcome(
            OutcomeState.FAILED, entry.issue_key, RejectReason.INTERNAL_ERROR,
            f"gave up after {entry.failures} failed attempts; the error log has the details"))
    ctx.store.begin(ctx.link.id, mail.ledger_id)
    try:
        verdict = effective_verdict(mail, classify(mail, own_domains=own_message_id_domains(ctx)), ctx)
        if verdict.kind is MailKind.MAIL:
            check_sender(mail, ctx)
        route = choose_route(mail, verdict, ctx)
        outcome = HANDLERS[type(route)].apply(route, raw, ctx)
    except MailRejected as rejected:
        outcome = Outcome(OutcomeState.REJECTED, reason=rejected.reason, detail=rejected.detail)
    return _finish(ctx, mail.ledger_id, mail, outcome)


def _finish(ctx: Context, ledger_id: str, mail: InboundMail | None, outcome: Outcome) -> Handled:
    ctx.store.finish(ctx.link.id, ledger_id, outcome)
    return _handled(mail, outcome, ledger_id)


def _handled(mail: InboundMail | None, outcome: Outcome, ledger_id: str | None = None) -> Handled:
    if mail is None:
        return Handled(outcome, ledger_id or "")
    return Handled(outcome, mail.ledger_id, mail.message_id, mail.sender.address if mail.sender else None,
                   mail.subject)
