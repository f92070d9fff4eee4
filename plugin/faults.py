"""Fault points: named moments where a test can have the process killed, to prove crash recovery.

`JSM_MAIL_FAULT=kill-at:POINT` (or `kill-at:POINT:N`, the N-th time) sends SIGKILL to this
process when it reaches POINT. Unset, `reached` costs one comparison.
"""
from __future__ import annotations

import os
import signal

POINTS = ("jira-created", "jira-commented", "jira-attached", "recorded", "labelled")

_armed: list[str | int] = []  # [point, remaining count]; empty when no fault is set


def arm(spec: str | None) -> None:
    """Arm a fault from its setting; a spec that names no known point is refused."""
    _armed.clear()
    if not spec:
        return
    action, _, rest = spec.partition(":")
    point, _, count = rest.partition(":")
    if action != "kill-at" or point not in POINTS or (count and not count.isdigit()):
        raise ValueError(f"JSM_MAIL_FAULT={spec!r}: expected kill-at:POINT[:N] with POINT one of {', '.join(POINTS)}")
    _armed.extend([point, int(count or 1)])


def reached(point: str) -> None:
    if not _armed or _armed[0] != point:
        return
    remaining = int(_armed[1]) - 1
    _armed[1] = remaining
    if remaining <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
