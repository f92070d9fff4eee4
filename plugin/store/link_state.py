"""Each link's polling state in the store, and the counts its status shows: what a round writes, what pages read."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.store.models import LedgerRow, LinkStateRow, OutboxRow, QuarantineRow, utcnow
from plugin.store.store import PENDING, Store, aware

OUTBOX_WAITING = ("queued", "sending")  # plugin.store.outbox's states of mail not yet handed to a server


@dataclass(frozen=True, slots=True)
class LinkState:
    """What the rounds of one link left in the store; all None/0 before its first round."""

    last_round_at: datetime | None = None
    last_success_at: datetime | None = None
    failing_since: datetime | None = None
    failing_reason: str | None = None
    unread: int = 0
    unread_since: datetime | None = None
    backlog_total: int | None = None
    backlog_done: int = 0
    alerted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LinkCounts:
    """The link's mail that is not done yet, read from the ledger, quarantine and outbox."""

    pending: int  # ledger rows begun and not finished (waiting for Jira or the mailbox included)
    waiting: int  # of those, waiting for Jira or the mailbox since a round began to wait
    oldest_pending: datetime | None
    quarantined: int
    outbox: int  # agents' comments queued or being sent


def _maybe(value: datetime | None) -> datetime | None:
    return aware(value) if value else None


def _row(s: Session, link_id: int) -> LinkStateRow:
    row = s.get(LinkStateRow, link_id)
    if row is None:
        row = LinkStateRow(link_id=link_id, unread=0, backlog_done=0)
        s.add(row)
    return row


def read_state(store: Store, link_id: int) -> LinkState:
    with store.session() as s:
        row = s.get(LinkStateRow, link_id)
        if row is None:
            return LinkState()
        return LinkState(_maybe(row.last_round_at), _maybe(row.last_success_at), _maybe(row.failing_since),
                         row.failing_reason, row.unread or 0, _maybe(row.unread_since), row.backlog_total,
                         row.backlog_done or 0, _maybe(row.alerted_at))


def read_counts(store: Store, link_id: int) -> LinkCounts:
    with store.session() as s:
        pending, waiting, oldest = s.execute(select(
            func.count(), func.count(LedgerRow.waiting_since), func.min(LedgerRow.started_at))
            .where(LedgerRow.link_id == link_id, LedgerRow.state == PENDING)).one()
        quarantined = s.scalar(select(func.count()).select_from(QuarantineRow).where(
            QuarantineRow.link_id == link_id, QuarantineRow.released.is_(False))) or 0
        outbox = s.scalar(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.link_id == link_id, OutboxRow.state.in_(OUTBOX_WAITING))) or 0
    return LinkCounts(pending or 0, waiting or 0, _maybe(oldest), quarantined, outbox)


def backlog_seen(store: Store, link_id: int, unread: int) -> None:
    """A round found `unread` mails to handle: start following a backlog, or let a followed one grow."""
    with store.session() as s, s.begin():
        row = _row(s, link_id)
        if row.backlog_total is None:
            row.backlog_total, row.backlog_done = unread, 0
        else:
            row.backlog_total = max(row.backlog_total, (row.backlog_done or 0) + unread)


def backlog_worked(store: Store, link_id: int, done: int) -> None:
    """`done` more mails of the followed backlog were handled."""
    with store.session() as s, s.begin():
        row = _row(s, link_id)
        row.backlog_done = min((row.backlog_done or 0) + done, row.backlog_total or 0)


def round_ended(store: Store, link_id: int, *, error: str | None, found: int | None, finished: int,
                uncounted: int) -> LinkState:
    """A round is over, in one commit: `error` says why it failed (None: it went well); it `found` mails to
    handle (None: the mailbox was not read) and `finished` of them, `uncounted` of which backlog_worked did not
    count. Mail left over starts a backlog the next rounds work through. Returns the state as it now is."""
    now = utcnow()
    with store.session() as s, s.begin():
        row = _row(s, link_id)
        row.last_round_at = now
        if error is None:
            row.last_success_at, row.failing_since, row.failing_reason = now, None, None
        else:
            row.failing_since, row.failing_reason = row.failing_since or now, error
        if found is not None:
            if row.backlog_total is None:
                row.backlog_total, row.backlog_done = found, 0
            row.backlog_done = min((row.backlog_done or 0) + uncounted, row.backlog_total)
            unread_left = max(0, found - finished)
            row.unread = unread_left
            row.unread_since = (row.unread_since or now) if unread_left else None
            if not unread_left:
                row.backlog_total, row.backlog_done = None, 0
    return read_state(store, link_id)


def note_alerted(store: Store, link_id: int, at: datetime | None) -> None:
    """The "failing" alert mail went out then; None: the "recovered" one went out too."""
    with store.session() as s, s.begin():
        _row(s, link_id).alerted_at = at
