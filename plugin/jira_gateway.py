"""Everything we ask of Jira, behind one typed interface; the only module that imports `jira`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, Sequence

from plugin.domain import Address, Attachment

LEDGER_PROPERTY = "jsm-mail"  # issue entity property {"ledger": [...ledger keys...]}


@dataclass(frozen=True, slots=True)
class IssueRef:
    key: str
    id: str


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
class RequestInfo:
    key: str
    id: str
    project_key: str
    reporter_email: str | None
    participant_emails: frozenset[str]
    resolved_at: datetime | None  # None while the request is open


class JiraGateway(Protocol):
    """Typed calls to Jira Service Management.

    Every method raises `RetryLater` when Jira is unreachable, answers 5xx or 429 (with
    `after_s` from Retry-After), and `MailRejected(JIRA_REFUSED, ...)` when Jira refuses the
    content itself (400). POST calls are never retried by the client library.
    """

    def server_title(self) -> str: ...

    def request_types(self, service_desk_id: str) -> list[RequestTypeInfo]: ...

    def request_type(self, service_desk_id: str, request_type_id: str) -> RequestTypeInfo: ...

    def project_key(self, service_desk_id: str) -> str: ...

    def customer_account_id(self, service_desk_id: str, address: Address, *, create: bool) -> str | None:
        """The customer's accountId; creates the customer (and adds them to the desk) when `create`."""

    def create_request(self, service_desk_id: str, request_type_id: str, summary: str,
                       description: str, reporter_account_id: str, ledger_key: str) -> IssueRef:
        """Create a customer request on behalf of the reporter; tag it with the ledger key."""

    def find_by_ledger_key(self, project_key: str, ledger_key: str) -> IssueRef | None:
        """The request or comment's issue that carries this ledger key, if Jira has one."""

    def request(self, issue_key: str) -> RequestInfo | None: ...

    def add_participants(self, issue_key: str, account_ids: Sequence[str]) -> None: ...

    def attach(self, service_desk_id: str, issue_key: str, attachments: Sequence[Attachment],
               *, public: bool = True) -> None:
        """Upload with attachTemporaryFile, then attach to the request."""

    def add_comment(self, issue_key: str, body: str, *, public: bool, ledger_key: str | None = None) -> str:
        """Add a request comment; returns its id. The ledger key is remembered on the issue."""

    def link_issues(self, inward_key: str, outward_key: str, link_type: str = "Relates") -> None: ...
