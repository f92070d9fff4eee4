"""Customers and participants: the accounts behind mail addresses."""
from __future__ import annotations

from typing import Sequence

from plugin.context import Context
from plugin.domain import Access, Address


def add_participants(ctx: Context, issue_key: str, people: Sequence[Address]) -> tuple[list[str], list[str]]:
    """Add people as request participants; returns (added, skipped) addresses."""
    create = ctx.link.access is Access.OPEN
    account_ids, added, skipped = [], [], []
    for person in people:
        account_id = ctx.jira.customer_account_id(ctx.link.service_desk_id, person, create=create)
        if account_id is None:
            skipped.append(person.address)
        else:
            account_ids.append(account_id)
            added.append(person.address)
    if account_ids:
        ctx.jira.add_participants(issue_key, account_ids)
        ctx.forget_request(issue_key)
    return added, skipped


def people_note(added: list[str], skipped: list[str]) -> str:
    parts = []
    if added:
        parts.append("participants added: " + ", ".join(added))
    if skipped:
        parts.append("not customers, not added: " + ", ".join(skipped))
    return "; ".join(parts)
