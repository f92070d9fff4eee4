"""How long reading one mail may take: a deadline the loops that grow with the mail check as they go."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from plugin.errors import MailRejected, RejectReason

# A thread cannot be interrupted from outside in Python, so the stages stop themselves: every loop
# whose rounds grow with the mail (parts, lines, encoded words, HTML chunks) calls check().
# The budget is the thread's processor time: waiting for Jira or the mailbox is not reading the mail,
# and a slow Jira must never get a mail rejected (it is retried instead). Reading that clock is a
# system call; the wall clock is cheap and never behind it, so it is asked first.
DEFAULT_SECONDS = 10.0  # JSM_MAIL_MAIL_TIME_BUDGET_S when unset


@dataclass(slots=True)
class _Deadline:
    seconds: float
    cpu_at: float  # thread_time() past which the mail is over budget
    wall_at: float  # perf_counter() before which it cannot be


_DEADLINE: ContextVar[_Deadline | None] = ContextVar("mail_deadline", default=None)


class TookTooLong(MailRejected):
    """Reading the mail went past its time budget; it is rejected as malformed, never half-read."""

    def __init__(self, seconds: float) -> None:
        super().__init__(RejectReason.MALFORMED,
                         f"reading this mail took longer than {seconds:g} s (JSM_MAIL_MAIL_TIME_BUDGET_S); "
                         "it is built to exhaust a reader, or far larger than mail people write")


@contextmanager
def reading(seconds: float | None) -> Iterator[None]:
    """Let the code inside spend at most `seconds` of processor time on one mail (None: no limit).
    A budget already running (an outer stage of the same mail) stays in force."""
    if seconds is None or _DEADLINE.get() is not None:
        yield
        return
    token = _DEADLINE.set(_Deadline(seconds, time.thread_time() + seconds, time.perf_counter() + seconds))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check() -> None:
    """Raise TookTooLong when the mail being read is past its budget; cheap enough for every round."""
    deadline = _DEADLINE.get()
    if deadline is None or time.perf_counter() < deadline.wall_at:
        return
    left = deadline.cpu_at - time.thread_time()
    if left < 0:
        raise TookTooLong(deadline.seconds)
    deadline.wall_at = time.perf_counter() + left  # the time went to waiting; look again when it could be up
