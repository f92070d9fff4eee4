"""Which links have been failing, and since when: what /health reports while the service runs."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass
class LinkHealth:
    """The first failed poll of each link's current run of failures; a good poll clears it."""

    failing_since: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, link: str, error: str | None, now: datetime | None = None) -> None:
        """Record a poll of `link`: `error` says why it failed, None that it went well."""
        now = now or datetime.now(UTC)
        with self.lock:
            if error is None:
                self.failing_since.pop(link, None)
            else:
                self.failing_since[link] = (self.failing_since.get(link, (now, ""))[0], error)

    def problems(self, threshold_s: float, now: datetime | None = None) -> list[str]:
        """A sentence for each link that has failed for longer than `threshold_s`."""
        now = now or datetime.now(UTC)
        with self.lock:
            failing = sorted(self.failing_since.items())
        return [f"link {name} has failed since {since:%Y-%m-%d %H:%M} UTC: {error}"
                for name, (since, error) in failing if (now - since).total_seconds() > threshold_s]
