"""Automatic mail that needs no request and no answer: only recorded."""
from __future__ import annotations

from plugin.context import Context
from plugin.domain import Ignore, Outcome, OutcomeState
from plugin.handlers.recovery import Attempt


class RecordIgnored:
    name = "record-ignored"

    def apply(self, route: Ignore, attempt: Attempt, ctx: Context) -> Outcome:
        about = f" (an answer to mail about {route.issue_key})" if route.issue_key else ""
        return Outcome(OutcomeState.IGNORED, route.issue_key, evidence=route.reason,
                       detail=f"automatic mail{about}: no request, no comment, never answered")
