"""What outbound mail is made of: a Jira comment, its request, and the mail's threading and recipients."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from plugin.domain import Address, Attachment

OUR_PROPERTY = "jsm-mail"  # comment entity property {"ledger": ...} on comments written from inbound mail


@dataclass(frozen=True, slots=True)
class JiraAttachment:
    id: str
    filename: str
    size: int
    mime_type: str
    created: datetime | None
    author_account_id: str | None
    url: str  # Jira's download address, shown instead of a file over the link's size cap


@dataclass(frozen=True, slots=True)
class JiraComment:
    id: str
    issue_key: str
    author_account_id: str | None
    author_name: str
    author_email: str | None  # hidden by account privacy, or a customer's own comment from the portal
    created: datetime
    body: str  # Jira wiki markup (REST v2), or the text of an ADF document
    rendered_html: str | None  # expand=renderedBody
    public: bool  # jsdPublic; internal comments are never mailed
    property_keys: frozenset[str]  # comment entity properties, e.g. OUR_PROPERTY

    def written_by(self, account_id: str | None) -> bool:
        """Ours: written from an inbound mail (our property), or by the account jsm-mail calls Jira as."""
        return OUR_PROPERTY in self.property_keys or (account_id is not None and self.author_account_id == account_id)


@dataclass(frozen=True, slots=True)
class UpdatedIssue:
    key: str
    updated: datetime


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    """A request as the mail needs it: subject line, people, and the files agents attached."""

    key: str
    summary: str
    project_key: str
    reporter: Address | None
    participants: tuple[Address, ...]
    attachments: tuple[JiraAttachment, ...]


@dataclass(frozen=True, slots=True)
class Threading:
    message_id: str  # ours, without angle brackets
    in_reply_to: str | None  # the customer's latest mail on the request
    references: tuple[str, ...]
    customer_subject: str | None  # that mail's subject, for the "Re: ..." subject style


@dataclass(frozen=True, slots=True)
class Recipients:
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    left_out: tuple[str, ...]  # "address (why)", for the processing log

    @property
    def all(self) -> tuple[Address, ...]:
        return self.to + self.cc


@dataclass(frozen=True, slots=True)
class Notification:
    """Everything compose needs; no I/O behind it."""

    request: OutboundRequest
    comment: JiraComment
    sender: Address
    recipients: Recipients
    threading: Threading
    files: tuple[Attachment, ...]
    too_large: tuple[JiraAttachment, ...]
