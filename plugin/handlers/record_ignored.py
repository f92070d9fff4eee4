"""Automatic mail that needs no request and no answer: only recorded."""
from __future__ import annotations

from plugin.context import Context
from plugin.domain import Ignore, Outcome, OutcomeState, RawMail


class RecordIgnored:
    name = "record-ignored"

    def apply(self, route: Ignore, raw: RawMail, ctx: Context) -> Outcome:
        return Outcome(OutcomeState.IGNORED, detail="automatic mail: no request, no comment, never answered",
                       evidence=route.reason)
