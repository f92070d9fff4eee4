"""Processing-log rows as `logs --json` prints them: which way the mail went, and for outbound mail to whom."""
from __future__ import annotations

from typing import Any

from plugin.store.outbox import Outbox
from plugin.store.store import Store


def with_direction(store: Store, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with `direction` ("in" or "out"); outbound rows also with `recipients` and `comment_id`."""
    sent = Outbox(store).by_message_ids(row["message_id"] for row in rows if row["message_id"])
    described = []
    for row in rows:
        entry = sent.get(row["message_id"] or "")
        if entry is None or row["outcome"] not in ("sent", "send-failed"):
            described.append(row | {"direction": "in"})
        else:
            recipients = [a.strip() for a in entry.recipients.split(",") if a.strip()]
            described.append(row | {"direction": "out", "recipients": recipients, "comment_id": entry.comment_id})
    return described
