"""A Jira that only records what would happen: demo mode, when no Jira is configured."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from plugin.domain import Address, Attachment
from plugin.jira.gateway import IssueRef, RequestInfo, RequestTypeInfo
from plugin.outbound.model import JiraComment, OutboundRequest, UpdatedIssue

DEMO_PROJECT = "SD"


class DryRunJira:
    """Keeps would-be requests in a JSON file in the data dir, so demo replies thread across runs."""

    def __init__(self, state_file: Path) -> None:
        self._file = state_file
        self._lock = threading.Lock()
        self._state = json.loads(state_file.read_text("utf-8")) if state_file.is_file() else {
            "next": 1, "requests": {}, "customers": {}}

    def _save(self) -> None:
        self._file.write_text(json.dumps(self._state, ensure_ascii=False, indent=1), "utf-8")

    def server_title(self) -> str:
        return "dry run (no Jira configured)"

    def request_types(self, service_desk_id: str) -> list[RequestTypeInfo]:
        return [RequestTypeInfo("10", "Emailed request", frozenset({"summary", "description", "attachment"}))]

    def request_type(self, service_desk_id: str, request_type_id: str) -> RequestTypeInfo:
        return self.request_types(service_desk_id)[0]

    def project_key(self, service_desk_id: str) -> str:
        return DEMO_PROJECT

    def customer_account_id(self, service_desk_id: str, address: Address, *, create: bool) -> str | None:
        with self._lock:
            customers = self._state["customers"]
            key = address.address.lower()
            if key not in customers and create:
                customers[key] = f"dry-run-{len(customers) + 1}"
                self._save()
            return customers.get(key)

    def create_request(self, service_desk_id: str, request_type_id: str, summary: str, description: str,
                       reporter_account_id: str, ledger_key: str) -> IssueRef:
        with self._lock:
            number = self._state["next"]
            self._state["next"] = number + 1
            key = f"{DEMO_PROJECT}-{number}"
            email = next((e for e, a in self._state["customers"].items() if a == reporter_account_id), None)
            self._state["requests"][key] = {"id": str(10000 + number), "summary": summary, "reporter": email,
                                            "participants": [], "ledger": [ledger_key], "comments": 0,
                                            "created": datetime.now(timezone.utc).isoformat()}
            self._save()
            return IssueRef(key, str(10000 + number))

    def find_by_ledger_key(self, project_key: str, ledger_key: str) -> IssueRef | None:
        for key, req in self._state["requests"].items():
            if ledger_key in req["ledger"]:
                return IssueRef(key, req["id"])
        return None

    def ledger_keys(self, issue_key: str) -> frozenset[str]:
        return frozenset(self._state["requests"].get(issue_key, {}).get("ledger", ()))

    def requests_by_reporter_since(self, project_key: str, account_id: str,
                                   since: datetime) -> list[tuple[IssueRef, str]]:
        return []

    def request(self, issue_key: str) -> RequestInfo | None:
        for key, req in self._state["requests"].items():
            if issue_key in (key, req["id"]):
                return RequestInfo(key, req["id"], DEMO_PROJECT, req["reporter"],
                                   frozenset(req["participants"]), None)
        return None

    def add_participants(self, issue_key: str, account_ids: Sequence[str]) -> None:
        by_id = {a: e for e, a in self._state["customers"].items()}
        with self._lock:
            people = self._state["requests"][issue_key]["participants"]
            people.extend(by_id[a] for a in account_ids if by_id.get(a) and by_id[a] not in people)
            self._save()

    def attach(self, service_desk_id: str, issue_key: str, attachments: Sequence[Attachment], *,
               public: bool = True) -> None:
        pass

    def add_comment(self, issue_key: str, body: str, *, public: bool, ledger_key: str | None = None) -> str:
        with self._lock:
            req = self._state["requests"][issue_key]
            req["comments"] += 1
            if ledger_key:
                req["ledger"].append(ledger_key)
            self._save()
            return str(req["comments"])

    def link_issues(self, inward_key: str, outward_key: str, link_type: str = "Relates") -> None:
        pass

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
