"""Plain text to Jira wiki markup that shows exactly that text."""
from __future__ import annotations

import re

JIRA_TEXT_FIELD_LIMIT = 32_767  # Jira rejects longer text fields

_URL = re.compile(r"(?:https?|ftp|mailto):[^\s<>\"]+", re.IGNORECASE)
# Characters that start markup anywhere in a line: text effects, links, macros, tables, images.
_INLINE = re.compile(r"([\\{}\[\]*_+^~|!]|\?(?=\?))")
# Numbered and bulleted lists only count at the start of a line. The indent is whitespace within
# the line: a run across line breaks would make each blank line rescan all the blank lines below it.
_LINE_START = re.compile(r"^([^\S\n]*)([#-])", re.MULTILINE)
# "-word-" is strikethrough: escape a dash that opens or closes a word.
_DASH_EDGE = re.compile(r"(?<![\w-])-(?=\S)|(?<=\S)-(?![\w-])")


def _escape_words(text: str) -> str:
    text = _INLINE.sub(r"\\\1", text)
    return _DASH_EDGE.sub(r"\\-", text)


def escape_wiki(text: str) -> str:
    """Escape plain text so Jira renders it as written; URLs are left intact to stay links."""
    out, pos = [], 0
    for match in _URL.finditer(text):
        out.append(_escape_words(text[pos:match.start()]))
        out.append(match.group(0))
        pos = match.end()
    out.append(_escape_words(text[pos:]))
    escaped = "".join(out)
    return _LINE_START.sub(r"\1\\\2", escaped)
