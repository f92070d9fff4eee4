"""A bounce of our mail, recorded on its request as an internal comment; never answered."""
from __future__ import annotations

from plugin.context import Context
from plugin.domain import BounceOf, Outcome, OutcomeState, RawMail


def bounce_text(route: BounceOf) -> str:
    lines = []
    for r in route.report.recipients if route.report else ():
        kind = "permanent failure" if r.permanent else "temporary failure"
        lines.append(f"Mail to {r.address} bounced: {r.status or 'no status'} ({kind})")
    return "\n".join(lines) or "A mail about this request bounced (no recipient named in the report)."


class RecordBounce:
    name = "record-bounce"

    def apply(self, route: BounceOf, raw: RawMail, ctx: Context) -> Outcome:
        if route.issue_key is None:
            return Outcome(OutcomeState.IGNORED, detail=f"bounce, not of a request's mail: {bounce_text(route)}",
                           evidence=route.evidence)
        entry = ctx.store.ledger_entry(ctx.link.id, route.mail.ledger_id)
        already = entry and entry.attempts > 1 and route.mail.ledger_id in ctx.jira.ledger_keys(route.issue_key)
        if not already:
            ctx.jira.add_comment(route.issue_key, bounce_text(route), public=False, ledger_key=route.mail.ledger_id)
        for r in route.report.recipients if route.report else ():
            if r.permanent:
                ctx.store.mark_undeliverable(r.address, r.status, route.issue_key)
        return Outcome(OutcomeState.BOUNCE_RECORDED, route.issue_key,
                       detail=f"internal comment on {route.issue_key}: {bounce_text(route)}", evidence=route.evidence)
