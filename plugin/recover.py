"""An admin's recovery: retry a rejected or failed mail through the pipeline, release a quarantined sender and
re-run the mails held for them; each action is written to the processing log.

A retry re-opens the mail's ledger row with its attempts kept, so the pipeline treats it as a retry: the
request an earlier attempt made is found by the ledger's issue key or the mail reference in Jira
(plugin.handlers.recovery), and a mail the ledger already finished is answered "handled before". Retrying
the same mail twice never makes a second request.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from plugin.context import Context
from plugin.domain import Link, MailProtocol, MailRef, Outcome, OutcomeState, RawMail
from plugin.errors import MailRejected, RejectReason, RetryLater
from plugin.mailboxes import Mailbox, open_mailbox
from plugin.mailboxes.imap import ImapMailbox
from plugin.parse.mail import parse_mail
from plugin.pipeline import process
from plugin.poll import WORKER_ID, holder_is_dead
from plugin.record import MailAbout
from plugin.runtime import Runtime
from plugin.store.models import LedgerRow, ProcessingLogRow, utcnow
from plugin.store.store import PENDING, Store

RETRYABLE = (OutcomeState.REJECTED.value, OutcomeState.FAILED.value)
BY_ADMIN = "retried by admin: "


@dataclass(frozen=True, slots=True)
class Held:
    """A processing log row to retry, as the store keeps it."""

    log_id: int
    link_id: int | None
    link_name: str
    outcome: str
    raw_path: str | None
    message_id: str | None


@dataclass(frozen=True, slots=True)
class Retried:
    """What a retry did, in one line; `issue_key` when the mail is in Jira now."""

    log_id: int
    ok: bool
    line: str
    issue_key: str | None = None


def retry_logged(runtime: Runtime, log_id: int, mailbox_uid: str | None = None) -> Retried:
    """Run the mail of one rejected or failed processing log row through the pipeline again.

    `mailbox_uid`: the mailbox copy, when the caller knows it and the ledger no longer does."""
    held = _held(runtime.store, log_id)
    if held is None:
        return Retried(log_id, False, f"log {log_id}: no such processing log row")
    if held.outcome not in RETRYABLE:
        return Retried(log_id, False, f"log {log_id}: it was {held.outcome}; only rejected or failed mail is retried")
    link = runtime.store.link(held.link_id) if held.link_id is not None else None
    if link is None:
        return Retried(log_id, False, f"log {log_id}: its link {held.link_name} no longer exists")
    if not runtime.store.acquire_lease(link.id, WORKER_ID, runtime.settings.lease_ttl_s, holder_is_dead):
        return Retried(log_id, False, f"log {log_id}: {link.name} is being polled right now; try again in a minute")
    try:
        return _retry(runtime, link, held, mailbox_uid)
    finally:
        runtime.store.release_lease(link.id, WORKER_ID)


def release_and_rerun(runtime: Runtime, link: Link, sender: str) -> list[Retried]:
    """Lift a sender's quarantine and retry every mail it held, oldest first."""
    store = runtime.store
    with store.session() as s:
        held_ids = list(s.scalars(select(ProcessingLogRow.id).where(
            ProcessingLogRow.link_id == link.id, func.lower(ProcessingLogRow.sender) == sender.lower(),
            ProcessingLogRow.reason == RejectReason.SENDER_QUARANTINED.value).order_by(ProcessingLogRow.id)))
    uids = {log_id: _mailbox_uid(store, link.id, log_id) for log_id in held_ids}  # the release forgets them
    if not store.release(link.id, sender):
        return [Retried(0, False, f"{sender} was not quarantined on {link.name}")]
    released = Retried(0, True, f"{sender} released on {link.name}; {len(held_ids)} held mails retried")
    return [released, *(retry_logged(runtime, log_id, uids[log_id]) for log_id in held_ids)]


def _mailbox_uid(store: Store, link_id: int, log_id: int) -> str | None:
    """The mailbox copy the ledger knows for a log row's mail (keyed as Store._forget_held_mails keys it)."""
    with store.session() as s:
        row = s.get(ProcessingLogRow, log_id)
        if row is None or not (row.message_id or row.raw_path):
            return None
        ledger_id = row.message_id or f"sha256:{Path(str(row.raw_path)).stem}"
        return s.scalar(select(LedgerRow.mailbox_uid).where(LedgerRow.link_id == link_id,
                                                            LedgerRow.ledger_id == ledger_id))


def _held(store: Store, log_id: int) -> Held | None:
    with store.session() as s:
        row = s.get(ProcessingLogRow, log_id)
        return Held(row.id, row.link_id, row.link_name, row.outcome, row.raw_path, row.message_id) if row else None


def _kept(store: Store, held: Held) -> bytes | None:
    """The kept copy of the mail, read only from the data dir's mail folder."""
    if not held.raw_path:
        return None
    path = Path(held.raw_path).resolve()
    folder = (store.settings.data_dir / "mail").resolve()
    return path.read_bytes() if path.parent == folder and path.is_file() else None


def _ledger_id(raw: RawMail) -> str:
    try:
        return MailAbout.of(parse_mail(raw)).ledger_id
    except MailRejected:
        return MailAbout.unparsed(raw).ledger_id


def _ledger_row(s: Session, link_id: int, ledger_id: str) -> LedgerRow | None:
    return s.scalars(select(LedgerRow).where(LedgerRow.link_id == link_id, LedgerRow.ledger_id == ledger_id)).first()


def _reopen(store: Store, link_id: int, ledger_id: str) -> tuple[str | None, str | None]:
    """Put a rejected or failed ledger row back to pending, attempts kept so the pipeline retries; returns the
    mailbox copy the ledger knows and the state the row had."""
    with store.session() as s, s.begin():
        row = _ledger_row(s, link_id, ledger_id)
        if row is None:
            return None, None
        state = row.state
        if state in RETRYABLE:
            row.state, row.failures, row.finished_at, row.waiting_since = PENDING, 0, None, None
        return row.mailbox_uid, state


def _restore(store: Store, link_id: int, ledger_id: str | None, state: str | None) -> None:
    """A retry that could not finish leaves the mail as it was: rejected or failed, not pending for ever."""
    if not ledger_id or state not in RETRYABLE:
        return
    with store.session() as s, s.begin():
        row = _ledger_row(s, link_id, ledger_id)
        if row is not None and row.state == PENDING:
            row.state, row.finished_at = state, utcnow()


def _retry(runtime: Runtime, link: Link, held: Held, known_uid: str | None) -> Retried:
    store = runtime.store
    kept = _kept(store, held)
    ledger_id = _ledger_id(RawMail(MailRef(link.id, ""), kept)) if kept is not None else held.message_id
    uid, state = _reopen(store, link.id, ledger_id) if ledger_id else (None, None)
    uid = uid or known_uid
    if kept is None and uid is None:
        return Retried(held.log_id, False, f"log {held.log_id}: the mail was not kept and the mailbox copy is "
                                           "unknown; put it back unread in the mailbox to handle it again")
    try:
        mailbox = open_mailbox(link, cafile=runtime.settings.ca_file, store=store) if uid else None
    except RetryLater:
        mailbox = None  # the kept copy is retried; the mailbox copy keeps its label
    try:
        ref = MailRef(link.id, uid or f"kept:{held.log_id}")
        raw = RawMail(ref, kept) if kept is not None else _fetch(mailbox, ref)
        return _run(runtime, link, held, raw, _Relabel(link, mailbox))
    except RetryLater as outage:
        _restore(store, link.id, ledger_id, state)
        return Retried(held.log_id, False, f"log {held.log_id}: not retried now, Jira or the mailbox is "
                                           f"unavailable: {outage.detail}")
    except Exception as bug:  # a bug in our code: the mail stays as it was, the error log says why
        _restore(store, link.id, ledger_id, state)
        store.log_error(link.name, held.message_id, bug)
        return Retried(held.log_id, False, f"log {held.log_id}: not retried, an internal error; see the error log")
    finally:
        if mailbox is not None:
            mailbox.close()


def _fetch(mailbox: Mailbox | None, ref: MailRef) -> RawMail:
    if mailbox is None:
        raise RetryLater("the mailbox was not reached", 60)
    return mailbox.fetch(ref)


def _run(runtime: Runtime, link: Link, held: Held, raw: RawMail, labeller: _Relabel) -> Retried:
    store = runtime.store
    with store.session() as s:
        before = s.scalar(select(func.max(ProcessingLogRow.id))) or 0
    ctx = Context(runtime.settings, link, store, runtime.jira, lease=WORKER_ID)
    outcome = process(raw, ctx, labeller).outcome
    said = _said(outcome)
    with store.session() as s, s.begin():
        written = s.execute(update(ProcessingLogRow).where(
            ProcessingLogRow.id > before, ProcessingLogRow.link_id == link.id)
            .values(detail=BY_ADMIN + ProcessingLogRow.detail))
        if not getattr(written, "rowcount", 0):  # a mail the ledger finished and this copy labelled: say so
            about = MailAbout.of(parse_mail(raw))
            s.add(ProcessingLogRow(link_id=link.id, link_name=link.name, message_id=about.message_id,
                                   sender=about.sender, subject=about.subject, outcome=outcome.state.value,
                                   issue_key=outcome.issue_key, detail=BY_ADMIN + outcome.detail, time=utcnow()))
    ok = outcome.state not in (OutcomeState.REJECTED, OutcomeState.FAILED)
    return Retried(held.log_id, ok, f"log {held.log_id}: {BY_ADMIN}{said}{labeller.note}", outcome.issue_key)


def _said(outcome: Outcome) -> str:
    what = outcome.issue_key or (outcome.reason.value if outcome.reason else "")
    return f"{outcome.state.value} {what}".strip() + (f" ({outcome.detail})" if outcome.detail else "")


class _Relabel:
    """Labels the mailbox copy, when there is one: a mail that now succeeded loses the rejected label (IMAP)."""

    def __init__(self, link: Link, mailbox: Mailbox | None) -> None:
        self._link, self._mailbox = link, mailbox
        self.note = "" if mailbox or link.protocol is MailProtocol.MAILDIR else \
            "; the mailbox copy keeps its label (not reached or not known)"

    def label(self, ref: MailRef, outcome: Outcome) -> None:
        if self._mailbox is None or ref.uid.startswith("kept:"):
            return
        try:
            self._mailbox.label(ref, outcome)
            if outcome.state.is_final and not outcome.state.labels_as_rejected and isinstance(self._mailbox,
                                                                                                 ImapMailbox):
                self._mailbox.unlabel(ref, self._link.rejected_label)
        except RetryLater as outage:  # Jira has the result already: only the label waits
            self.note = f"; the mailbox copy keeps its label: {outage.detail}"
