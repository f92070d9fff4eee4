"""'Test the link': can we read the mailbox, and can the request type take mail?"""
from __future__ import annotations

from dataclasses import dataclass, field

from plugin.domain import Link
from plugin.errors import MailRejected, RetryLater
from plugin.mailboxes import open_mailbox
from plugin.runtime import Runtime


@dataclass
class LinkCheck:
    ok: bool = True
    lines: list[str] = field(default_factory=list)

    def passed(self, line: str) -> None:
        self.lines.append(f"ok: {line}")

    def failed(self, line: str) -> None:
        self.ok = False
        self.lines.append(f"FAILED: {line}")


def check_link(link: Link, runtime: Runtime) -> LinkCheck:
    check = LinkCheck()
    try:
        with open_mailbox(link, cafile=runtime.settings.ca_file) as mailbox:
            count = len(mailbox.unhandled())
        check.passed(f"mailbox {link.username}@{link.host}/{link.folder}: {count} mail(s) waiting")
    except RetryLater as exc:
        check.failed(f"mailbox {link.host}: {exc.detail}")
    except ValueError as exc:
        check.failed(f"mailbox settings: {exc}")
    try:
        request_type = runtime.jira.request_type(link.service_desk_id, link.request_type_id)
        if request_type.email_suitable:
            check.passed(f"request type {request_type.name!r} has summary and description")
        else:
            check.failed(f"request type {request_type.name!r} lacks a summary or description field")
        check.passed(f"Jira: {runtime.jira.server_title()}, project {runtime.jira.project_key(link.service_desk_id)}")
    except (RetryLater, MailRejected) as exc:
        check.failed(f"Jira: {exc}")
    return check
