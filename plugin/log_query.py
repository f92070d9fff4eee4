"""Searching the processing log: filters applied in SQL before paging, so no row is silently left out."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

from sqlalchemy import Select, func, or_, select

from plugin.store.models import ProcessingLogRow
from plugin.store.store import LogEntry, Store

WHEN_HELP = "use today, yesterday, a date such as 2026-01-31 (or 2026-01-31T09:00), or an age such as 7d, 12h, 30m"
_AGE = re.compile(r"^(\d{1,5})\s*([wdhm])$")  # at most 99999 weeks: never before the year 1
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}
OUTCOMES = ("created", "commented", "bounce-recorded", "ignored", "rejected", "waiting-retry", "failed", "sent",
            "send-failed")


def parse_when(value: str, now: datetime | None = None, zone: tzinfo = UTC) -> datetime:
    """A point in time as an admin types it, dates and days in the admin's `zone`.

    Raises ValueError saying what is accepted."""
    now = (now or datetime.now(UTC)).astimezone(zone)
    text = value.strip().lower()
    midnight = datetime.combine(now.date(), time(), tzinfo=zone)
    if text == "today":
        return midnight.astimezone(UTC)
    if text == "yesterday":
        return (midnight - timedelta(days=1)).astimezone(UTC)
    age = _AGE.match(text)
    if age:
        return (now - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})).astimezone(UTC)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"cannot read {value!r} as a time: {WHEN_HELP}") from None
    # UTC, as the log is stored: SQLite compares the text and would drop another zone's offset.
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)


@dataclass(frozen=True)
class LogQuery:
    """Which processing log rows to show: every field optional."""

    link: str | None = None
    outcome: str | None = None
    text: str | None = None  # found in the sender, subject, issue key, reason or Message-ID
    since: datetime | None = None
    until: datetime | None = None

    def select(self) -> Select:
        query = select(ProcessingLogRow)
        if self.link:
            query = query.where(ProcessingLogRow.link_name == self.link)
        if self.outcome:
            query = query.where(ProcessingLogRow.outcome == self.outcome)
        if self.since:
            query = query.where(ProcessingLogRow.time >= self.since)
        if self.until:
            query = query.where(ProcessingLogRow.time < self.until)
        if self.text:
            pattern = "%" + self.text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(or_(*(column.ilike(pattern, escape="\\") for column in (
                ProcessingLogRow.sender, ProcessingLogRow.subject, ProcessingLogRow.issue_key,
                ProcessingLogRow.reason, ProcessingLogRow.message_id))))
        return query


@dataclass(frozen=True)
class LoggedMail:
    """One processing log row with its id, for links to its detail page."""

    id: int
    entry: LogEntry


def count(store: Store, query: LogQuery) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(query.select().subquery())) or 0


def page(store: Store, query: LogQuery, *, offset: int, limit: int) -> list[LoggedMail]:
    """Newest first, `limit` rows from `offset` of the filtered log."""
    statement = query.select().order_by(ProcessingLogRow.id.desc()).offset(offset).limit(limit)
    with store.session() as s:
        return [_logged(row) for row in s.scalars(statement)]


def every(store: Store, query: LogQuery, batch: int = 500) -> Iterator[LogEntry]:
    """Every matching row, oldest first, read in batches so a year of log never sits in memory at once."""
    last_id = 0
    while True:
        statement = (query.select().where(ProcessingLogRow.id > last_id)
                     .order_by(ProcessingLogRow.id).limit(batch))
        with store.session() as s:
            rows = [_logged(row) for row in s.scalars(statement)]
        yield from (row.entry for row in rows)
        if len(rows) < batch:
            return
        last_id = rows[-1].id


def one(store: Store, log_id: int) -> LoggedMail | None:
    with store.session() as s:
        row = s.get(ProcessingLogRow, log_id)
        return _logged(row) if row else None


def _logged(row: ProcessingLogRow) -> LoggedMail:
    when = row.time if row.time.tzinfo else row.time.replace(tzinfo=UTC)
    return LoggedMail(row.id, LogEntry(when, row.link_name, row.message_id, row.sender, row.subject, row.outcome,
                                       row.reason, row.issue_key, row.detail, row.evidence, row.raw_path))
