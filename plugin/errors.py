"""The two ways a mail leaves the happy path: rejected for good, or retried later."""
from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    TOO_LARGE = "too-large"
    MALFORMED = "malformed"
    MISSING_FROM = "missing-from"
    MISSING_TO = "missing-to"
    SENDER_NOT_ALLOWED = "sender-not-allowed"
    SENDER_NOT_CUSTOMER = "sender-not-customer"
    SENDER_QUARANTINED = "sender-quarantined"
    JIRA_REFUSED = "jira-refused"
    INTERNAL_ERROR = "internal-error"


class MailRejected(Exception):
    """This mail cannot become a request or comment; it is labelled rejected with a reason."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class RetryLater(Exception):
    """Jira or the mailbox is unavailable; leave the mail untouched and try again later."""

    def __init__(self, detail: str, after_s: float = 60.0) -> None:
        super().__init__(detail)
        self.detail = detail
        self.after_s = after_s


class MailGone(RetryLater):
    """The mail left the mailbox (another client moved or deleted it) after it was listed: nothing to handle."""
