"""Everything the product asks of Jira, as one typed interface; RestJira and DryRunJira implement it."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from plugin.domain import Address, Attachment, RequestInfo
from plugin.outbound.model import JiraComment, OutboundRequest, UpdatedIssue

LEDGER_PROPERTY = "jsm-mail"  # comment entity property {"ledger": <ledger key>, "part": <which effect>}


@dataclass(frozen=True, slots=True)
class IssueRef:
    key: str
    id: str


@dataclass(frozen=True, slots=True)
class ServiceDeskInfo:
    id: str
    name: str  # the project's name
    project_key: str


@dataclass(frozen=True, slots=True)
class RequestTypeInfo:
    id: str
    name: str
    field_ids: frozenset[str]

    @property
    def email_suitable(self) -> bool:
        """Mail fills summary and description; a request type without both cannot take mail."""
        return {"summary", "description"} <= self.field_ids


@dataclass(frozen=True, slots=True)
class Mark:
    """The identity of one effect of one mail in Jira: its ledger key and which part of the mail's work."""

    ledger_key: str
    part: str  # "comment", "bounce", "related-note", ...


class JiraGateway(Protocol):
    """Typed calls to Jira Service Management.

    Every method raises `RetryLater` when Jira is unreachable, answers 5xx or 429 (with
    `after_s` from Retry-After) or refuses our credentials, and `MailRejected(JIRA_REFUSED, ...)`
    when Jira refuses the content itself (other 4xx). No call is retried inside: a POST whose
    answer was lost is found again by its mark, never repeated blindly.
    """

    def server_title(self) -> str: ...

    def service_desks(self) -> list[ServiceDeskInfo]:
        """Every service desk the account can see, for picking one by name."""

    def request_types(self, service_desk_id: str) -> list[RequestTypeInfo]: ...

    def request_type(self, service_desk_id: str, request_type_id: str) -> RequestTypeInfo: ...

    def project_key(self, service_desk_id: str) -> str: ...

    def find_customer(self, address: str) -> str | None:
        """The accountId of the account with this e-mail address, if Jira has one."""

    def create_customer(self, address: Address) -> str:
        """A new customer account; returns its accountId."""

    def create_request(self, service_desk_id: str, request_type_id: str, summary: str, description: str,
                       reporter_account_id: str, participant_account_ids: Sequence[str] = ()) -> IssueRef:
        """A customer request raised on behalf of the reporter."""

    def find_request(self, project_key: str, reference: str) -> IssueRef | None:
        """The request whose description carries this mail reference (see handlers.recovery)."""

    def request(self, key_or_id: str) -> RequestInfo | None: ...

    def add_participants(self, issue_key: str, account_ids: Sequence[str]) -> None: ...

    def add_comment(self, issue_key: str, body: str, *, public: bool, mark: Mark | None = None) -> str:
        """A comment, public (customers see it) or internal; returns its id. The mark is set atomically."""

    def marked_parts(self, issue_key: str, ledger_key: str) -> frozenset[str]:
        """The parts of this mail's work that the issue's comments are marked with."""

    def attachment_names(self, issue_key: str) -> frozenset[tuple[str, int]]:
        """(filename, size) of the issue's attachments."""

    def attach(self, service_desk_id: str, issue_key: str, attachments: Sequence[Attachment],
               *, public: bool = True) -> None: ...

    def link_issues(self, inward_key: str, outward_key: str, link_type: str = "Relates") -> None: ...

    # Outbound: agents' public comments mailed to customers.

    def myself_account_id(self) -> str:
        """The account jsm-mail calls Jira as; what it writes is never mailed back."""

    def updated_requests(self, project_key: str, since: datetime, limit: int) -> list[UpdatedIssue]:
        """Requests of the project updated since then, oldest update first, at most `limit`."""

    def comments_since(self, issue_key: str, since: datetime) -> list[JiraComment]:
        """The request's comments created since then, oldest first, public and internal."""

    def comment(self, issue_key: str, comment_id: str) -> JiraComment | None: ...

    def outbound_request(self, issue_key: str) -> OutboundRequest | None:
        """Summary, reporter, participants and attachments: what a mail about the request needs."""

    def attachment_content(self, attachment_id: str) -> bytes: ...
