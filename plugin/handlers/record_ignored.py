"""Automatic mail that needs no request and no answer: only recorded."""
from __future__ import annotations

from plugin.context import Context
from plugin.domain import Ignore, Outcome, OutcomeState
from plugin.handlers.recovery import Attempt


class RecordIgnored:
    name = "record-ignored"

    def apply(self, route: Ignore, attempt: Attempt, ctx: Context) -> Outcome:
        return Outcome(OutcomeState.IGNORED, detail="automatic mail: no request, no comment, never answered",
                       evidence=route.reason)
