"""The outbox of agent comments to mail, each link's polling cursor, and what outbound mail reads of inbound."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from cryptography.fernet import Fernet
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError

from plugin.domain import Secret
from plugin.store.models import (
    LinkRow,
    MailIndexRow,
    OutboundCursorRow,
    OutboxRow,
    ProcessingLogRow,
    SmtpSecretRow,
    utcnow,
)
from plugin.store.store import Store, aware

QUEUED, SENDING, SENT, FAILED = "queued", "sending", "sent", "failed"
MAX_REFERENCES = 10  # RFC 5322 section 3.6.4 lets a long thread trim References; the first and last count


def _maybe_aware(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    comment_id: str
    link_id: int
    issue_key: str
    message_id: str
    state: str
    source: str
    comment_created: datetime
    queued_at: datetime
    attempts: int
    sending_since: datetime | None
    sent_at: datetime | None
    recipients: str
    last_error: str


def _entry(row: OutboxRow) -> OutboxEntry:
    return OutboxEntry(row.id, row.comment_id, row.link_id, row.issue_key, row.message_id, row.state, row.source,
                       aware(row.comment_created), aware(row.queued_at), row.attempts,
                       _maybe_aware(row.sending_since), _maybe_aware(row.sent_at), row.recipients, row.last_error)


@dataclass(frozen=True, slots=True)
class Cursor:
    looked_at: datetime  # the last look at Jira started then
    not_before: datetime  # comments created before this are never mailed


@dataclass(frozen=True, slots=True)
class CustomerMail:
    """The customer's latest mail on a request, and the request's mail ids for References."""

    message_id: str | None
    subject: str | None
    references: tuple[str, ...]


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._fernet = Fernet(store.settings.secret_key.reveal().encode("ascii"))

    # Queue ---------------------------------------------------------------------------------
    def queue(self, link_id: int, issue_key: str, comment_id: str, comment_created: datetime, message_id: str,
              source: str) -> bool:
        """Queue a comment's mail; False when the comment was queued before (the same event twice)."""
        try:
            with self.store.session() as s, s.begin():
                s.add(OutboxRow(link_id=link_id, issue_key=issue_key, comment_id=comment_id, message_id=message_id,
                                state=QUEUED, source=source, comment_created=comment_created, attempts=0,
                                next_attempt_at=utcnow(), recipients="", last_error=""))
        except IntegrityError:
            return False
        return True

    def entry(self, comment_id: str) -> OutboxEntry | None:
        with self.store.session() as s:
            row = s.scalars(select(OutboxRow).where(OutboxRow.comment_id == comment_id)).first()
            return _entry(row) if row else None

    def entries(self, link_id: int | None = None) -> list[OutboxEntry]:
        query = select(OutboxRow).order_by(OutboxRow.id)
        if link_id is not None:
            query = query.where(OutboxRow.link_id == link_id)
        with self.store.session() as s:
            return [_entry(row) for row in s.scalars(query)]

    def by_message_ids(self, message_ids: Iterable[str]) -> dict[str, OutboxEntry]:
        ids = [m for m in set(message_ids) if m]
        if not ids:
            return {}
        with self.store.session() as s:
            return {row.message_id: _entry(row) for row in s.scalars(select(OutboxRow).where(
                OutboxRow.message_id.in_(ids)))}

    def due(self, link_id: int, now: datetime) -> list[OutboxEntry]:
        """Queued mail whose turn has come, oldest comment first."""
        with self.store.session() as s:
            return [_entry(row) for row in s.scalars(select(OutboxRow).where(
                OutboxRow.link_id == link_id, OutboxRow.state == QUEUED, OutboxRow.next_attempt_at <= now)
                .order_by(OutboxRow.comment_created, OutboxRow.id))]

    def stale_sending(self, link_id: int, before: datetime) -> list[OutboxEntry]:
        """Mail marked "sending" before then: the process that sent it stopped before it could say how it went."""
        with self.store.session() as s:
            return [_entry(row) for row in s.scalars(select(OutboxRow).where(
                OutboxRow.link_id == link_id, OutboxRow.state == SENDING, OutboxRow.sending_since < before))]

    # Sending -------------------------------------------------------------------------------
    def claim(self, entry_id: int, *, stale_before: datetime | None = None) -> bool:
        """Mark "sending" before the SMTP conversation; False when another process got there first.

        With `stale_before`, take over a "sending" row whose process stopped before then.
        """
        mine = (OutboxRow.state == QUEUED if stale_before is None else
                (OutboxRow.state == SENDING) & (OutboxRow.sending_since < stale_before))
        with self.store.session() as s, s.begin():
            claimed = s.execute(update(OutboxRow).where(OutboxRow.id == entry_id, mine)
                                .values(state=SENDING, sending_since=utcnow(), attempts=OutboxRow.attempts + 1))
            return cast(CursorResult, claimed).rowcount == 1  # an UPDATE's result counts its rows

    def mark_sent(self, entry: OutboxEntry, recipients: tuple[str, ...]) -> None:
        """Sent, and our Message-ID in the threading index (so the customer's reply threads by rule 1), at once."""
        with self.store.session() as s, s.begin():
            s.execute(update(OutboxRow).where(OutboxRow.id == entry.id).values(
                state=SENT, recipients=", ".join(recipients), sent_at=utcnow(), last_error=""))
            s.add(MailIndexRow(link_id=entry.link_id, issue_key=entry.issue_key, direction="out", role="notification",
                               message_id=entry.message_id, addresses=" ".join(sorted(a.lower() for a in recipients))))

    def mark_undeliverable(self, address: str, status: str, issue_key: str) -> None:
        with self.store.session() as s, s.begin():
            Store.mark_undeliverable(s, address, status, issue_key)

    def mark_failed(self, entry_id: int, reason: str, recipients: str = "") -> None:
        self._finish(entry_id, FAILED, recipients=recipients, last_error=reason)

    def postpone(self, entry_id: int, error: str, after_s: float) -> None:
        """Back to the queue: the server could not take it now."""
        self._finish(entry_id, QUEUED, last_error=error, next_attempt_at=utcnow() + timedelta(seconds=after_s),
                     sending_since=None)

    def _finish(self, entry_id: int, state: str, **values: object) -> None:
        with self.store.session() as s, s.begin():
            s.execute(update(OutboxRow).where(OutboxRow.id == entry_id).values(state=state, **values))

    def sent_since(self, link_id: int, since: datetime) -> int:
        """Mails a link sent (or is sending) since then: the per-minute budget."""
        with self.store.session() as s:
            return s.scalar(select(func.count()).select_from(OutboxRow).where(
                OutboxRow.link_id == link_id, OutboxRow.state.in_((SENT, SENDING)),
                func.coalesce(OutboxRow.sent_at, OutboxRow.sending_since) >= since)) or 0

    # Polling cursor ------------------------------------------------------------------------
    def cursor(self, link_id: int) -> Cursor:
        """Where the next look starts; before the first, when the link was created (history is never mailed)."""
        with self.store.session() as s:
            row = s.get(OutboundCursorRow, link_id)
            if row is not None:
                return Cursor(aware(row.looked_at), aware(row.not_before))
            created = s.scalar(select(LinkRow.created_at).where(LinkRow.id == link_id))
            start = aware(created) if created else utcnow()
            return Cursor(start, start)

    def move_cursor(self, link_id: int, looked_at: datetime) -> None:
        with self.store.session() as s, s.begin():
            row = s.get(OutboundCursorRow, link_id)
            if row is None:
                not_before = self.cursor(link_id).not_before
                s.add(OutboundCursorRow(link_id=link_id, looked_at=looked_at, not_before=not_before))
            else:
                row.looked_at = looked_at

    def hold_cursor(self, link_id: int, now: datetime) -> None:
        """The link cannot send now: what agents write until it can is never mailed."""
        with self.store.session() as s, s.begin():
            s.merge(OutboundCursorRow(link_id=link_id, looked_at=now, not_before=now))

    # SMTP password -------------------------------------------------------------------------
    def set_smtp_password(self, link_id: int, password: Secret) -> None:
        with self.store.session() as s, s.begin():
            s.merge(SmtpSecretRow(link_id=link_id,
                                  password_encrypted=self._fernet.encrypt(password.reveal().encode("utf-8"))))

    def smtp_password(self, link_id: int) -> Secret | None:
        with self.store.session() as s:
            row = s.get(SmtpSecretRow, link_id)
            return Secret(self._fernet.decrypt(row.password_encrypted).decode("utf-8")) if row else None

    # What inbound mail left behind -----------------------------------------------------------
    def customer_mail(self, link_id: int, issue_key: str) -> CustomerMail:
        with self.store.session() as s:
            rows = s.execute(select(MailIndexRow.message_id, MailIndexRow.direction).where(
                MailIndexRow.link_id == link_id, MailIndexRow.issue_key == issue_key,
                MailIndexRow.message_id.is_not(None)).order_by(MailIndexRow.id)).all()
            ids = list(dict.fromkeys(m for m, _ in rows if m))
            latest_in = next((m for m, direction in reversed(rows) if direction == "in"), None)
            subject = s.scalar(select(ProcessingLogRow.subject).where(
                ProcessingLogRow.link_id == link_id, ProcessingLogRow.message_id == latest_in)
                .order_by(ProcessingLogRow.id.desc())) if latest_in else None
        references = ids if len(ids) <= MAX_REFERENCES else [ids[0], *ids[-(MAX_REFERENCES - 1):]]
        return CustomerMail(latest_in, subject, tuple(references))

    def owner_link(self, issue_key: str) -> int | None:
        """The link a request's mail came in through, if any."""
        with self.store.session() as s:
            return s.scalar(select(MailIndexRow.link_id).where(MailIndexRow.issue_key == issue_key)
                            .order_by(MailIndexRow.id))

    def auto_repliers(self, link_id: int, issue_key: str, since: datetime) -> frozenset[str]:
        """Senders who answered mail about this request with an auto-reply since then (the processing log)."""
        with self.store.session() as s:
            senders = s.scalars(select(ProcessingLogRow.sender).where(
                ProcessingLogRow.link_id == link_id, ProcessingLogRow.issue_key == issue_key,
                ProcessingLogRow.outcome == "ignored", ProcessingLogRow.evidence.like("auto_reply:%"),
                ProcessingLogRow.time >= since)).all()
        return frozenset(sender.lower() for sender in senders if sender)

    # Processing log ------------------------------------------------------------------------
    def log_mail(self, link_id: int, link_name: str, *, outcome: str, reason: str | None, issue_key: str,
                 message_id: str, sender: str, subject: str | None, detail: str, comment_id: str) -> None:
        """A processing-log row for a mail we sent (`sent`) or could not send (`send-failed`)."""
        with self.store.session() as s, s.begin():
            s.add(ProcessingLogRow(link_id=link_id, link_name=link_name, message_id=message_id, sender=sender,
                                   subject=subject, outcome=outcome, reason=reason, issue_key=issue_key,
                                   detail=detail, evidence=f"outbound: comment {comment_id}"))
