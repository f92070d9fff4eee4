"""What threading may ask of the world, as small interfaces the pipeline hands in."""
from __future__ import annotations

from datetime import datetime
from typing import Protocol

from plugin.domain import KnownMail, RequestInfo


class ThreadIndex(Protocol):
    """Mails of requests that this link received or sent."""

    def known_mail(self, message_id: str) -> KnownMail | None: ...

    def conversation_issue(self, conversation_id: str) -> str | None: ...

    def recent_subjects(self, since: datetime) -> list[tuple[str, list[str], set[str]]]:
        """(issue key, subject words, addresses) of mails since a time, newest first."""
        ...


class Requests(Protocol):
    """Requests as Jira has them."""

    @property
    def project_key(self) -> str: ...

    def request(self, key_or_id: str) -> RequestInfo | None: ...
