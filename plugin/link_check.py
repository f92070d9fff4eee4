"""'Test the link': can we sign in to the mailbox, list its folder and write a label, and can the request
type take mail?"""
from __future__ import annotations

from dataclasses import dataclass, field

from plugin.domain import Link, MailProtocol
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
    _check_mailbox(link, runtime, check)
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


def _check_mailbox(link: Link, runtime: Runtime, check: LinkCheck) -> None:
    """The mailbox's own probe, as before a switch of sign-in: login, the folder listed, a label written on
    no mail (an IMAP STORE on a UID that cannot exist, a Graph PATCH or EWS UpdateItem of an id that cannot
    exist); what passed is said, and what failed in the mailbox's own words ("could not connect: ...",
    "could not write a label: ...")."""
    mailbox_name = f"{link.protocol.value} mailbox {link.address or link.username}"
    try:
        with open_mailbox(link, cafile=runtime.settings.ca_file, store=runtime.store) as mailbox:
            check.passed(f"signed in to {mailbox_name} ({link.auth.value})")
            mailbox.probe()
            count = len(mailbox.unhandled())
        check.passed(f"folder {link.folder}: {count} mail(s) waiting")
        check.passed(_label_line(link))
    except RetryLater as exc:
        check.failed(f"{mailbox_name}: {exc.detail}")
    except ValueError as exc:
        check.failed(f"mailbox settings: {exc}")


def _label_line(link: Link) -> str:
    if link.protocol is MailProtocol.POP3:
        return "POP3 has no labels: handled mail is deleted, rejected mail stays on the server"
    if link.protocol is MailProtocol.MAILDIR:
        return "a local folder: handled mail is marked in it"
    return f"labels {link.processed_label} and {link.rejected_label} can be written"
