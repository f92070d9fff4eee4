"""A Jira that only records what would happen: demo mode, when no Jira is configured."""
from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plugin.domain import Address, Attachment, RequestInfo
from plugin.jira.gateway import IssueRef, Mark, RequestTypeInfo, ServiceDeskInfo
from plugin.outbound.model import JiraComment, OutboundRequest, UpdatedIssue

DEMO_PROJECT = "SD"


class DryRunJira:
    """Keeps would-be requests in a JSON file in the data dir, so demo replies thread across runs."""

    def __init__(self, state_file: Path) -> None:
        self._file = state_file
        self._lock = threading.Lock()
        self._state: dict[str, Any] = json.loads(state_file.read_text("utf-8")) if state_file.is_file() else {
            "next": 1, "requests": {}, "customers": {}}

    def _save(self) -> None:
        self._file.write_text(json.dumps(self._state, ensure_ascii=False, indent=1), "utf-8")

    def server_title(self) -> str:
        return "dry run (no Jira configured)"

    def service_desks(self) -> list[ServiceDeskInfo]:
        return [ServiceDeskInfo("1", "Demo service desk", DEMO_PROJECT)]

    def request_types(self, service_desk_id: str) -> list[RequestTypeInfo]:
        return [RequestTypeInfo("10", "Emailed request", frozenset({"summary", "description", "attachment"}))]

    def request_type(self, service_desk_id: str, request_type_id: str) -> RequestTypeInfo:
        return self.request_types(service_desk_id)[0]

    def project_key(self, service_desk_id: str) -> str:
        return DEMO_PROJECT

    def find_customer(self, address: str) -> str | None:
        account = self._state["customers"].get(address.lower())
        return None if account is None else str(account)

    def create_customer(self, address: Address) -> str:
        with self._lock:
            customers = self._state["customers"]
            account = customers.setdefault(address.address.lower(), f"dry-run-{len(customers) + 1}")
            self._save()
            return str(account)

    def create_request(self, service_desk_id: str, request_type_id: str, summary: str, description: str,
                       reporter_account_id: str, participant_account_ids: Sequence[str] = ()) -> IssueRef:
        with self._lock:
            number = self._state["next"]
            self._state["next"] = number + 1
            key = f"{DEMO_PROJECT}-{number}"
            self._state["requests"][key] = {"id": str(10000 + number), "summary": summary,
                                            "description": description, "reporter": self._email(reporter_account_id),
                                            "participants": [], "marks": [], "comments": 0,
                                            "created": datetime.now(UTC).isoformat()}
            self._save()
        self.add_participants(key, participant_account_ids)
        return IssueRef(key, str(10000 + number))

    def find_request(self, project_key: str, reference: str) -> IssueRef | None:
        for key, req in self._state["requests"].items():
            if reference in req.get("description", ""):
                return IssueRef(key, req["id"])
        return None

    def request(self, key_or_id: str) -> RequestInfo | None:
        for key, req in self._state["requests"].items():
            if key_or_id in (key, req["id"]):
                return RequestInfo(key, req["id"], req["reporter"], frozenset(req["participants"]), None)
        return None

    def add_participants(self, issue_key: str, account_ids: Sequence[str]) -> None:
        with self._lock:
            people = self._state["requests"][issue_key]["participants"]
            people.extend(e for e in map(self._email, account_ids) if e and e not in people)
            self._save()

    def add_comment(self, issue_key: str, body: str, *, public: bool, mark: Mark | None = None) -> str:
        with self._lock:
            req = self._state["requests"][issue_key]
            req["comments"] += 1
            if mark:
                req.setdefault("marks", []).append([mark.ledger_key, mark.part])
            self._save()
            return str(req["comments"])

    def marked_parts(self, issue_key: str, ledger_key: str) -> frozenset[str]:
        marks = self._state["requests"].get(issue_key, {}).get("marks", [])
        return frozenset(part for ledger, part in marks if ledger == ledger_key)

    def attachment_names(self, issue_key: str) -> frozenset[tuple[str, int]]:
        return frozenset()

    def attach(self, service_desk_id: str, issue_key: str, attachments: Sequence[Attachment], *,
               public: bool = True) -> None:
        pass

    def link_issues(self, inward_key: str, outward_key: str, link_type: str = "Relates") -> None:
        pass

    def _email(self, account_id: str) -> str | None:
        return next((e for e, a in self._state["customers"].items() if a == account_id), None)

    # -- outbound: a dry-run Jira has no agents, so there is never a comment to mail

    def myself_account_id(self) -> str:
        return "dry-run-jsm-mail"

    def updated_requests(self, project_key: str, since: datetime, limit: int) -> list[UpdatedIssue]:
        return []

    def comments_since(self, issue_key: str, since: datetime) -> list[JiraComment]:
        return []

    def comment(self, issue_key: str, comment_id: str) -> JiraComment | None:
        return None

    def outbound_request(self, issue_key: str) -> OutboundRequest | None:
        return None

    def attachment_content(self, attachment_id: str) -> bytes:
        raise KeyError(attachment_id)
