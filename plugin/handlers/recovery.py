"""What an interrupted earlier attempt at the same mail already did in Jira."""
from __future__ import annotations

from plugin.context import Context
from plugin.domain import InboundMail


def already_on_issue(ctx: Context, mail: InboundMail, issue_key: str) -> bool:
    """True when a retried mail's ledger key is on the issue: its comment was added before the crash."""
    entry = ctx.store.ledger_entry(ctx.link.id, mail.ledger_id)
    return bool(entry and entry.attempts > 1 and mail.ledger_id in ctx.jira.ledger_keys(issue_key))
