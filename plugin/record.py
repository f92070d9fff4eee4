"""The record step: one transaction for the ledger, the threading index, sender events and the log row."""
from __future__ import annotations

from dataclasses import dataclass

from plugin.context import Context
from plugin.domain import InboundMail, Outcome, OutcomeState, RawMail
from plugin.store.models import MailIndexRow, ProcessingLogRow, SenderEventRow, utcnow
from plugin.store.store import Store


@dataclass(frozen=True, slots=True)
class MailAbout:
    """What the processing log shows of a mail, and its ledger key."""

    ledger_id: str
    message_id: str | None = None
    sender: str | None = None
    subject: str | None = None

    @classmethod
    def of(cls, mail: InboundMail) -> MailAbout:
        return cls(mail.ledger_id, mail.message_id, mail.sender.address if mail.sender else None, mail.subject)

    @classmethod
    def unparsed(cls, raw: RawMail) -> MailAbout:
        return cls(f"sha256:{raw.sha256}")


def record(ctx: Context, about: MailAbout, raw: RawMail, outcome: Outcome) -> None:
    """Write everything a final outcome means, in one commit, before the mail is labelled."""
    link, store = ctx.link, ctx.store
    keep = outcome.state in (OutcomeState.REJECTED, OutcomeState.FAILED) and raw.data
    raw_path = store.keep_raw(raw.data) if keep else None
    facts = outcome.facts
    with store.session() as s, s.begin():
        Store.check_lease(s, link.id, ctx.lease)
        row = Store.ledger_row(s, link.id, about.ledger_id)
        row.state, row.issue_key, row.finished_at = outcome.state.value, outcome.issue_key, utcnow()
        row.mailbox_uid, row.waiting_since = raw.ref.uid, None
        if facts.thread:
            t = facts.thread
            s.add(MailIndexRow(link_id=link.id, issue_key=t.issue_key, direction="in", role=t.role,
                               message_id=t.message_id, conversation_id=t.conversation_id,
                               subject_words=" ".join(t.subject_words), addresses=" ".join(sorted(t.addresses))))
        if facts.new_request_by:
            s.add(SenderEventRow(link_id=link.id, sender=facts.new_request_by.lower()))
        if facts.quarantine:
            Store.quarantine(s, link.id, facts.quarantine)
        for address in facts.deliverable:
            Store.clear_undeliverable(s, address)
        for recipient in facts.undeliverable:
            Store.mark_undeliverable(s, recipient.address, recipient.status, outcome.issue_key)
        s.add(_log_row(ctx, about, outcome, raw_path))


def record_waiting(ctx: Context, about: MailAbout, outcome: Outcome) -> None:
    """A mail that waits for Jira or the mailbox: one log row when the wait begins, not one per poll."""
    with ctx.store.session() as s, s.begin():
        row = Store.ledger_row(s, ctx.link.id, about.ledger_id)
        if row.waiting_since is None:
            row.waiting_since = utcnow()
            s.add(_log_row(ctx, about, outcome, None))


def _log_row(ctx: Context, about: MailAbout, outcome: Outcome, raw_path: str | None) -> ProcessingLogRow:
    detail = outcome.detail
    if ctx.settings.demo and outcome.state in (OutcomeState.CREATED, OutcomeState.COMMENTED):
        detail = f"dry run, nothing sent to Jira: would be {detail}"
    return ProcessingLogRow(link_id=ctx.link.id, link_name=ctx.link.name, message_id=about.message_id,
                            sender=about.sender, subject=about.subject, outcome=outcome.state.value,
                            reason=outcome.reason.value if outcome.reason else None, issue_key=outcome.issue_key,
                            detail=detail, evidence=outcome.evidence, raw_path=raw_path)
