"""Arrival in seconds: a kept IMAP connection per link that starts the link's polling round when new mail arrives."""
from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from datetime import UTC, datetime, timedelta

from plugin.domain import Link, MailProtocol
from plugin.errors import RetryLater
from plugin.mailboxes import MailboxStore
from plugin.mailboxes.imap import IDLE_RENEW_S, NOOP_INTERVAL_S, ImapWatch
from plugin.mailboxes.network import RETRY_AFTER_CONFIG_S, TIMEOUT_S

log = logging.getLogger(__name__)
BACKOFF_FIRST_S = 1.0
BACKOFF_CAP_S = 300.0
STEADY_S = 60.0  # a connection that stood this long ends the backoff; a shorter one keeps it growing
JOIN_TIMEOUT_S = TIMEOUT_S + 5  # a watcher stops within one IDLE tick, or one server reply at worst


def backoff_s(failures: int, after_s: float = 0.0) -> float:
    """Exponential backoff with jitter, capped; refused logins and untrusted certificates wait the cap at once,
    as repeated tries only risk a lockout."""
    base = BACKOFF_CAP_S if after_s >= RETRY_AFTER_CONFIG_S else min(BACKOFF_CAP_S,
                                                                      BACKOFF_FIRST_S * 2 ** (failures - 1))
    # "Equal jitter": half fixed, half random, so watchers of one server do not return in step.
    return base / 2 + random.uniform(0, base / 2)


class IdleWatcher:
    """One thread that keeps an ImapWatch on one link and calls `news(link_id)` when mail arrives."""

    def __init__(self, link: Link, news: Callable[[int], None], *, cafile: str | None, store: MailboxStore | None,
                 catch_up: bool) -> None:
        self.link = link
        self._news = news
        self._cafile = cafile
        self._store = store
        self._catch_up = catch_up  # announce mail on the first connection too: the watcher replaces another
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"arrival {link.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to log out and end; `join()` waits for it."""
        self._stopping.set()

    def join(self) -> None:
        self._thread.join(JOIN_TIMEOUT_S)
        if self._thread.is_alive():
            log.warning("the watcher of link=%s did not stop within %.0f s", self.link.name, JOIN_TIMEOUT_S)

    def _run(self) -> None:
        failures = 0
        down_since: float | None = None  # when the current outage began; one warning per outage
        while not self._stopping.is_set():
            connected: float | None = None
            try:
                with closing(ImapWatch.connect(self.link, cafile=self._cafile, store=self._store)) as watch:
                    connected = time.monotonic()
                    self._watching(watch, down_since)
                    down_since = None
                    while not self._stopping.is_set():
                        if watch.wait_for_mail(IDLE_RENEW_S, self._stopping):
                            self._news(self.link.id)
            except Exception as failure:  # RetryLater: the server or the network; anything else is a bug here
                if connected is not None and time.monotonic() - connected >= STEADY_S:
                    failures = 0
                failures += 1
                if down_since is None:
                    down_since = time.monotonic()
                    if isinstance(failure, RetryLater):
                        log.warning("not watching link=%s for new mail, it is polled on schedule until the watch is "
                                    "back: %s", self.link.name, failure.detail)
                    else:
                        log.exception("the watcher of link=%s failed; it is polled on schedule until the watch is "
                                      "back", self.link.name)
                self._stopping.wait(backoff_s(failures, failure.after_s if isinstance(failure, RetryLater) else 0))
        log.debug("stopped watching link=%s", self.link.name)

    def _watching(self, watch: ImapWatch, down_since: float | None) -> None:
        how = "IDLE" if watch.uses_idle else f"NOOP every {NOOP_INTERVAL_S:.0f} s (the server offers no IDLE)"
        if down_since is None:
            log.info("watching link=%s for new mail by %s", self.link.name, how)
        else:
            log.info("watching link=%s again after %.0f s, by %s", self.link.name, time.monotonic() - down_since, how)
        if down_since is not None or self._catch_up:
            self._news(self.link.id)  # mail may have come while nobody watched
        self._catch_up = False


class ArrivalWatch:
    """Watchers for up to `max_connections` IMAP links, and which links must poll again at once.

    `poke(link_id, delay_s)` starts the link's polling round (the scheduler's job); a round that is
    running when mail is announced runs once more instead (`round_starts`, `more_news`, `round_ends`).
    """

    def __init__(self, max_connections: int, poke: Callable[[int, float], None], *, cafile: str | None = None,
                 store: MailboxStore | None = None) -> None:
        self.max_connections = max_connections
        self._poke = poke
        self._cafile = cafile
        self._store = store
        self._lock = threading.Lock()
        self._watchers: dict[int, IdleWatcher] = {}
        self._news: set[int] = set()
        self._running: set[int] = set()
        self._held: dict[int, datetime] = {}
        self._over: tuple[str, ...] = ()
        self._followed = False
        self._stopped = False

    def follow(self, links: Iterable[Link]) -> None:
        """Watch the enabled IMAP links, the first `max_connections` by id; stop watchers of links that were
        removed, disabled or changed, and start them again with the new settings."""
        imap = sorted((link for link in links if link.enabled and link.protocol is MailProtocol.IMAP),
                      key=lambda link: link.id)
        wanted = {link.id: link for link in imap[:self.max_connections]}
        over = tuple(link.name for link in imap[self.max_connections:])
        if over != self._over and over:
            log.info("%d IMAP links are beyond JSM_MAIL_IDLE_MAX_CONNECTIONS=%d and are polled on schedule only: %s",
                     len(over), self.max_connections, ", ".join(over))
        self._over = over
        with self._lock:
            if self._stopped:
                return
            leaving = [w for link_id, w in self._watchers.items() if wanted.get(link_id) != w.link]
            for watcher in leaving:
                watcher.stop()
                del self._watchers[watcher.link.id]
            for link_id, link in wanted.items():
                if link_id not in self._watchers:
                    self._watchers[link_id] = watcher = IdleWatcher(
                        link, self.news, cafile=self._cafile, store=self._store, catch_up=self._followed)
                    watcher.start()
            self._followed = True
        for watcher in leaving:
            watcher.join()

    def watched(self) -> list[int]:
        """The ids of the links watched now."""
        with self._lock:
            return sorted(self._watchers)

    def stop(self) -> None:
        """Stop every watcher and wait until each has logged out."""
        with self._lock:
            self._stopped = True
            watchers = list(self._watchers.values())
            self._watchers.clear()
        for watcher in watchers:
            watcher.stop()
        for watcher in watchers:
            watcher.join()

    def news(self, link_id: int) -> None:
        """New mail on a link: its round starts now (or when a hold ends), or runs once more if it is running."""
        with self._lock:
            self._news.add(link_id)
            if link_id in self._running:
                return
            delay_s = self._held_s(link_id)
        self._poke(link_id, delay_s)

    def missed(self, link_id: int) -> float | None:
        """The scheduler skipped a start because the round was still ending: in how many seconds to start it
        again, or None when no mail waits for it."""
        with self._lock:
            if link_id not in self._news or link_id in self._running:
                return None
            return self._held_s(link_id)

    def round_starts(self, link_id: int) -> None:
        with self._lock:
            self._running.add(link_id)
            self._news.discard(link_id)
            self._held.pop(link_id, None)

    def more_news(self, link_id: int) -> bool:
        """Whether mail was announced during the round just done (and so another round is due)."""
        with self._lock:
            if link_id not in self._news:
                return False
            self._news.discard(link_id)
            return True

    def round_ends(self, link_id: int, hold_s: float | None = None) -> None:
        """The round is over; with `hold_s` (Jira's Retry-After or outage) announced mail starts no round sooner."""
        with self._lock:
            self._running.discard(link_id)
            if hold_s:
                self._held[link_id] = datetime.now(UTC) + timedelta(seconds=hold_s)

    def _held_s(self, link_id: int) -> float:
        """Seconds until a hold on the link ends; 0 when none."""
        until = self._held.get(link_id)
        return max(0.0, (until - datetime.now(UTC)).total_seconds()) if until else 0.0
