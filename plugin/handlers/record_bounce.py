"""A bounce of our mail, recorded on its request as an internal comment; never answered."""
from __future__ import annotations

from plugin.context import Context
from plugin.domain import BounceOf, BounceRecipient, Facts, Outcome, OutcomeState
from plugin.handlers.recovery import Attempt, done_parts
from plugin.jira.gateway import Mark


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

    def apply(self, route: BounceOf, attempt: Attempt, ctx: Context) -> Outcome:
        recipients = route.report.recipients if route.report else ()
        if route.issue_key is None:
            return Outcome(OutcomeState.IGNORED, detail=f"bounce, not of a request's mail: {bounce_text(route)}",
                           evidence=route.evidence)
        if recipients and all(delivered(r) for r in recipients):
            # A success report says nothing an agent needs; a note on the request would only read as a bounce.
            return Outcome(OutcomeState.IGNORED, detail=f"delivery report about {route.issue_key}, nothing failed: "
                                                        f"{bounce_text(route)}", evidence=route.evidence)
        if "bounce" not in done_parts(ctx, attempt, route.issue_key):
            ctx.jira.add_comment(route.issue_key, bounce_text(route), public=False,
                                 mark=Mark(attempt.ledger_key, "bounce"))
        return Outcome(OutcomeState.BOUNCE_RECORDED, route.issue_key,
                       detail=f"internal comment on {route.issue_key}: {bounce_text(route)}", evidence=route.evidence,
                       facts=Facts(undeliverable=tuple(r for r in recipients if r.permanent)))
