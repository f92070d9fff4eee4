"""The identity of a mail's effects in Jira, and what an interrupted earlier attempt already did.

A request carries its mail's reference in the description (set in the same call that creates it);
comments carry the mail's ledger key as an entity property (set with the comment); attachments
go after the request or comment they belong to. So a retry finds every earlier effect by the
ledger key alone and repeats only what is missing.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from plugin.context import Context
from plugin.domain import Attachment, RawMail
from plugin.errors import MailRejected, RetryLater


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt at one mail, with what the ledger knows of the attempts before it."""

    raw: RawMail
    ledger_key: str
    retry: bool  # an earlier attempt began and may have left effects in Jira
    issue_key: str | None = None  # the request an earlier attempt created, when it got that far
    started_at: datetime | None = None  # when the earlier attempt began


def mail_reference(link_id: int, ledger_key: str) -> str:
    """One word of letters and digits, so Jira's text search finds it as a whole."""
    return "jsm" + hashlib.sha256(f"{link_id}\n{ledger_key}".encode()).hexdigest()[:24]


def earlier_request(ctx: Context, attempt: Attempt, reference: str) -> str | None:
    """The request an interrupted attempt created, found by the reference in its description."""
    if not attempt.retry:
        return None
    if attempt.issue_key:
        return attempt.issue_key
    lag_s = ctx.settings.jira_index_lag_s
    if attempt.started_at and lag_s:
        waited = (datetime.now(UTC) - attempt.started_at).total_seconds()
        if waited < lag_s:
            # Jira's search index trails a create by seconds: asking now could miss the request.
            raise RetryLater(f"an earlier attempt at this mail began {waited:.0f} s ago; looking for its "
                             f"request once Jira's search has caught up", lag_s - waited)
    found = ctx.jira.find_request(ctx.requests.project_key, reference)
    return found.key if found else None


def done_parts(ctx: Context, attempt: Attempt, issue_key: str) -> frozenset[str]:
    """The parts of this mail's work whose marked comments the issue already has."""
    return ctx.jira.marked_parts(issue_key, attempt.ledger_key) if attempt.retry else frozenset()


def attach_or_say_why(ctx: Context, issue_key: str, files: Sequence[Attachment], *, public: bool = True) -> str:
    """Attach the files; "" when Jira took them, else why not. The request or comment exists by now,
    so a file Jira refuses (too large for the site, a blocked type) never rejects the mail."""
    try:
        ctx.jira.attach(ctx.link.service_desk_id, issue_key, files, public=public)
    except MailRejected as refused:
        return f"attachments not added: {refused.detail}"
    return ""


def missing_files(ctx: Context, attempt: Attempt, issue_key: str, files: Sequence[Attachment],
                  *, anchor_done: bool) -> list[Attachment]:
    """Files still to attach: all on a first attempt or when their request/comment was only just made."""
    if not files or not attempt.retry or not anchor_done:
        return list(files)
    present = ctx.jira.attachment_names(issue_key)
    return [f for f in files if (f.filename, f.size) not in present]
