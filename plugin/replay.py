"""What a link would do with a mail file, and optionally doing it: threading decisions explained."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from plugin.context import Context
from plugin.domain import BounceOf, FollowUp, Ignore, Link, MailRef, NewRequest, Outcome, RawMail, Route
from plugin.errors import MailRejected, RetryLater
from plugin.parse.mail import parse_mail
from plugin.pipeline import process, understand
from plugin.runtime import Runtime


class _NotInAMailbox:
    """A replayed file has no mailbox to label."""

    def label(self, ref: MailRef, outcome: Outcome) -> None:
        pass


def describe_route(route: Route) -> str:
    if isinstance(route, FollowUp):
        return f"comment on {route.issue_key}: {route.evidence}"
    if isinstance(route, NewRequest):
        related = f" linked to {route.related_key}" if route.related_key else ""
        return f"new request{related}: {route.evidence}"
    if isinstance(route, BounceOf):
        target = f"recorded on {route.issue_key}" if route.issue_key else "logged only"
        return f"bounce, {target}: {route.evidence}"
    assert isinstance(route, Ignore)
    return f"ignored: {route.reason}"


def replay_file(path: Path, link: Link, runtime: Runtime, *, apply: bool, shown_as: str | None = None) -> str:
    """One line: the decision for this mail on this link (and what happened, with --apply).

    `shown_as` names the mail in the line instead of `path` (an upload's own name, not a temp file)."""
    name = shown_as or str(path)
    raw = RawMail(MailRef(link.id, f"replay:{path.name}"), path.read_bytes())
    ctx = Context(runtime.settings, link, runtime.store, runtime.jira)
    try:
        if apply:
            outcome = process(raw, ctx, _NotInAMailbox()).outcome
            if runtime.settings.demo and outcome.issue_key:
                outcome = replace(outcome, detail=f"dry run, nothing sent to Jira: would be {outcome.detail}")
            return (f"{name}: {outcome.state.value} {outcome.issue_key or outcome.reason or ''}: "
                    f"{outcome.detail}" + (f" [{outcome.evidence}]" if outcome.evidence else ""))
        return f"{name}: would be {describe_route(understand(parse_mail(raw), ctx))}"
    except MailRejected as rejected:
        return f"{name}: rejected {rejected.reason.value}: {rejected.detail}"
    except RetryLater as outage:
        return f"{name}: cannot decide now, Jira or the mailbox is unavailable: {outage.detail}"
