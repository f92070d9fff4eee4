"""Jira's own notification Message-IDs, which name the issue they are about."""
from __future__ import annotations

import re

# Message-ID JIRA.{issue-id}.{created-millis}.{seq}.{now-millis}@{host}; the In-Reply-To of a
# notification thread is <JIRA.{issue-id}.{created-millis}@{host}>.
_JIRA_MESSAGE_ID = re.compile(r"^JIRA\.(\d+)\.\d+(?:\.\d+\.\d+)?@", re.IGNORECASE)


def jira_issue_id(message_id: str | None) -> str | None:
    """The issue id inside a Jira notification's Message-ID, or None for any other id."""
    match = _JIRA_MESSAGE_ID.match(message_id or "")
    return match.group(1) if match else None
