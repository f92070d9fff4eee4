"""What a route does in Jira; one handler per route type, listed once."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from plugin.context import Context
from plugin.domain import BounceOf, FollowUp, Ignore, NewRequest, Outcome
from plugin.handlers.comment_on_request import CommentOnRequest
from plugin.handlers.create_request import CreateRequest
from plugin.handlers.record_bounce import RecordBounce
from plugin.handlers.record_ignored import RecordIgnored
from plugin.handlers.recovery import Attempt


class Handler(Protocol):
    name: str

    def apply(self, route: Any, attempt: Attempt, ctx: Context) -> Outcome: ...


HANDLERS: Mapping[type, Handler] = {
    NewRequest: CreateRequest(),
    FollowUp: CommentOnRequest(),
    BounceOf: RecordBounce(),
    Ignore: RecordIgnored(),
}
