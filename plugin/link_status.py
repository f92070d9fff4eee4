"""Each link's status as the admin page, `links list` and /health show it, and what a round tells it while it runs."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from plugin.domain import Link
from plugin.metrics import MAILS
from plugin.store.link_state import (
    LinkState,
    backlog_seen,
    backlog_worked,
    read_counts,
    read_state,
    round_ended,
)
from plugin.store.store import Store

# (link name, mails done, mails in the backlog): a round reports each mail it finishes.
Progress = Callable[[str, int, int], None]
SAVE_EVERY = 10  # the page's backlog figure is written after this many mails, not after each


@dataclass(frozen=True, slots=True)
class SignIn:
    """Whether the link gets into its mailbox: failing since when, and why (None: it does)."""

    method: str
    failing_since: datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Backlog:
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class LinkStatus:
    link: str
    enabled: bool
    last_round_at: datetime | None
    last_success_at: datetime | None
    sign_in: SignIn
    unread: int  # unhandled mail in the mailbox after the last round
    pending: int  # mails begun and not finished (the ledger)
    waiting: int  # of those, waiting for Jira or the mailbox
    oldest_unhandled: datetime | None  # the oldest mail begun, or since when mail has been left unread
    quarantined: int
    outbox: int
    backlog: Backlog | None  # a backlog being worked through, over one round or several

    @property
    def mails_waiting(self) -> int:
        """Mails that are not done: unread in the mailbox, or begun and waiting in the ledger."""
        return max(self.unread, self.pending)

    def oldest_age_s(self, now: datetime | None = None) -> float | None:
        if self.oldest_unhandled is None:
            return None
        return max(0.0, ((now or datetime.now(UTC)) - self.oldest_unhandled).total_seconds())

    def failing_for_s(self, now: datetime | None = None) -> float | None:
        since = self.sign_in.failing_since
        return None if since is None else ((now or datetime.now(UTC)) - since).total_seconds()

    def problem(self, threshold_s: float, now: datetime | None = None) -> str | None:
        """A sentence for /health once the link has failed for longer than `threshold_s`."""
        failing_for = self.failing_for_s(now)
        if failing_for is None or failing_for <= threshold_s or self.sign_in.failing_since is None:
            return None
        return (f"link {self.link} has failed since {self.sign_in.failing_since:%Y-%m-%d %H:%M} UTC: "
                f"{self.sign_in.reason}")

    def as_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None
        return {"link": self.link, "enabled": self.enabled, "last_round_at": iso(self.last_round_at),
                "last_success_at": iso(self.last_success_at),
                "sign_in": {"method": self.sign_in.method, "failing_since": iso(self.sign_in.failing_since),
                            "reason": self.sign_in.reason},
                "mails_waiting": self.mails_waiting, "unread": self.unread, "pending": self.pending,
                "waiting_retry": self.waiting, "oldest_unhandled": iso(self.oldest_unhandled),
                "oldest_unhandled_age_s": self.oldest_age_s(), "quarantined": self.quarantined,
                "outbox": self.outbox,
                "backlog": {"done": self.backlog.done, "total": self.backlog.total} if self.backlog else None}

    def lines(self, now: datetime | None = None) -> list[str]:
        """The status in words, for the command line."""
        def when(value: datetime | None) -> str:
            return f"{value:%Y-%m-%d %H:%M} UTC" if value else "never"
        lines = [f"last successful poll {when(self.last_success_at)}; mails waiting {self.mails_waiting}"
                 + (f", the oldest for {age_words(self.oldest_age_s(now))}" if self.oldest_unhandled else "")
                 + f"; quarantined senders {self.quarantined}; outbox {self.outbox}"]
        if self.sign_in.failing_since:
            lines.append(f"failing since {when(self.sign_in.failing_since)}: {self.sign_in.reason}")
        if self.backlog:
            lines.append(f"working through backlog: {self.backlog.done:,} of {self.backlog.total:,}")
        return lines


def age_words(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def link_status(store: Store, link: Link) -> LinkStatus:
    """The one reading of a link's status, from the store (so any process's rounds count)."""
    state, counts = read_state(store, link.id), read_counts(store, link.id)
    oldest = min((t for t in (counts.oldest_pending, state.unread_since) if t), default=None)
    backlog = Backlog(state.backlog_done, state.backlog_total) if state.backlog_total else None
    return LinkStatus(link.name, link.enabled, state.last_round_at, state.last_success_at,
                      SignIn(link.auth.value, state.failing_since, state.failing_reason), state.unread,
                      counts.pending, counts.waiting, oldest, counts.quarantined, counts.outbox, backlog)


def all_statuses(store: Store) -> list[LinkStatus]:
    return [link_status(store, link) for link in store.links()]


class RoundWatch:
    """What one polling round tells the link's status and the metrics while it runs."""

    def __init__(self, store: Store, link: Link, progress: Progress | None = None) -> None:
        self._store, self._link, self._progress = store, link, progress
        self.unread: int | None = None  # None until the mailbox was read
        self._finished = self._unsaved = 0
        self._backlog = Backlog(0, 0)
        self._following = False  # the store follows the backlog while the round runs

    def found(self, unread: int) -> None:
        """The mailbox holds `unread` mails to handle. A few are done before anyone looks, so the store follows
        only a larger batch, or a backlog earlier rounds began, as the round goes (one commit per mail at most)."""
        self.unread = unread
        state = read_state(self._store, self._link.id)
        self._following = unread > SAVE_EVERY or (state.backlog_total is not None and unread > 0)
        if self._following:
            backlog_seen(self._store, self._link.id, unread)
            state = read_state(self._store, self._link.id)
        self._backlog = Backlog(state.backlog_done, state.backlog_total or unread)
        self._tell()

    def handled(self, outcome: str, final: bool) -> None:
        """A mail reached `outcome`; `final`: it is done and left the mailbox's unhandled mail."""
        MAILS.labels(self._link.name, outcome).inc()
        if not final:
            return
        self._finished += 1
        self._unsaved += 1
        self._backlog = Backlog(min(self._backlog.done + 1, self._backlog.total), self._backlog.total)
        if self._following and self._unsaved >= SAVE_EVERY:
            backlog_worked(self._store, self._link.id, self._unsaved)
            self._unsaved = 0
        self._tell()

    def ended(self, error: str | None) -> LinkState:
        """The round is over; `error` says why it failed, None that it went well."""
        return round_ended(self._store, self._link.id, error=error, found=self.unread, finished=self._finished,
                           uncounted=self._unsaved)

    def _tell(self) -> None:
        if self._progress and self._backlog.total:
            self._progress(self._link.name, self._backlog.done, self._backlog.total)
