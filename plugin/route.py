"""Threading: which request a mail belongs to, and why."""
from __future__ import annotations

import re

# A Jira issue key: project key (uppercase letter, then letters, digits or _) and a number.
_ISSUE_KEY = re.compile(r"(?<![A-Za-z0-9_-])([A-Z][A-Z0-9_]{0,254}-[1-9][0-9]*)(?![A-Za-z0-9_-])")


def issue_keys_in(subject: str) -> list[str]:
    """Issue keys in the subject, leftmost first, without repeats."""
    return list(dict.fromkeys(_ISSUE_KEY.findall(subject)))
