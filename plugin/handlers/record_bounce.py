"""A bounce of our mail, recorded on its request as an internal comment; never answered."""
from __future__ import annotations

from plugin.context import Context
from plugin.domain import BounceOf, BounceRecipient, Outcome, OutcomeState, RawMail
from plugin.handlers.recovery import already_on_issue


def delivered(recipient: BounceRecipient) -> bool:
    """RFC 3463: a 2.x.x status reports success (a DSN asked for, or a relay's notice)."""
    return (recipient.status or "").startswith("2.")


def recipient_line(recipient: BounceRecipient) -> str:
    if delivered(recipient):
        return f"Mail to {recipient.address} was delivered: {recipient.status}"
    kind = "permanent failure" if recipient.permanent else "temporary failure"
    return f"Mail to {recipient.address} bounced: {recipient.status or 'no status'} ({kind})"


def bounce_text(route: BounceOf) -> str:
    lines = [recipient_line(r) for r in (route.report.recipients if route.report else ())]
    return "\n".join(lines) or "A mail about this request bounced (no recipient named in the report)."


class RecordBounce:
    name = "record-bounce"

    def apply(self, route: BounceOf, raw: RawMail, ctx: Context) -> Outcome:
        recipients = route.report.recipients if route.report else ()
        if route.issue_key is None:
            return Outcome(OutcomeState.IGNORED, detail=f"bounce, not of a request's mail: {bounce_text(route)}",
                           evidence=route.evidence)
        if recipients and all(delivered(r) for r in recipients):
            # A success report says nothing an agent needs; a note on the request would only read as a bounce.
            return Outcome(OutcomeState.IGNORED, detail=f"delivery report about {route.issue_key}, nothing failed: "
                                                        f"{bounce_text(route)}", evidence=route.evidence)
        if not already_on_issue(ctx, route.mail, route.issue_key):
            ctx.jira.add_comment(route.issue_key, bounce_text(route), public=False, ledger_key=route.mail.ledger_id)
        for r in recipients:
            if r.permanent:
                ctx.store.mark_undeliverable(r.address, r.status, route.issue_key)
        return Outcome(OutcomeState.BOUNCE_RECORDED, route.issue_key,
                       detail=f"internal comment on {route.issue_key}: {bounce_text(route)}", evidence=route.evidence)
