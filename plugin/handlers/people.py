"""Customers and participants: the accounts behind mail addresses."""
from __future__ import annotations

from collections.abc import Sequence

from plugin.context import Context
from plugin.domain import Address


def accounts_of(ctx: Context, people: Sequence[Address]) -> tuple[list[str], list[str], list[str]]:
    """(accountIds, added addresses, skipped addresses) of people who may join a request."""
    account_ids, added, skipped = [], [], []
    for person in people:
        account_id = ctx.customers.account_id(person)
        if account_id is None:
            skipped.append(person.address)
        else:
            account_ids.append(account_id)
            added.append(person.address)
    return account_ids, added, skipped


def add_participants(ctx: Context, issue_key: str, people: Sequence[Address]) -> tuple[list[str], list[str]]:
    """Add people as request participants; returns (added, skipped) addresses."""
    account_ids, added, skipped = accounts_of(ctx, people)
    if account_ids:
        ctx.jira.add_participants(issue_key, account_ids)
        ctx.requests.forget(issue_key)
    return added, skipped


def people_note(added: list[str], skipped: list[str]) -> str:
    parts = []
    if added:
        parts.append("participants added: " + ", ".join(added))
    if skipped:
        parts.append("not customers, not added: " + ", ".join(skipped))
    return "; ".join(parts)
