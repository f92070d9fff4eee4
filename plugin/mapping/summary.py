"""Request summary from a mail subject."""
from __future__ import annotations

import re
import unicodedata

MAX_SUMMARY_CHARS = 255

# Reply and forward prefixes in the languages our customers write, in ASCII and full width
# (Outlook JP writes "ＲＥ：", Japanese Thunderbird "返信:"), with counters such as "Re[2]:".
_REPLY_WORDS = r"re|aw|sv|vs|antw|odp|rif|res|回复|回覆|答复|返信|返事"
_FORWARD_WORDS = r"fwd?|wg|tr|enc|doorst|rv|転送|转发|轉寄"
_PREFIX = re.compile(
    rf"^\s*(?:(?:{_REPLY_WORDS}|{_FORWARD_WORDS})\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*)+",
    re.IGNORECASE)
_FORWARD = re.compile(rf"^\s*(?:{_FORWARD_WORDS})\s*(?:\[\d+\]|\(\d+\))?\s*[:：]", re.IGNORECASE)


def _fold_width(text: str) -> str:
    """Full-width ASCII to half width, so "ＲＥ：" reads as "RE:"; other text is unchanged."""
    return "".join(unicodedata.normalize("NFKC", ch) if "\uff01" <= ch <= "\uff5e" else ch for ch in text)


def strip_reply_prefix(subject: str) -> str:
    """The subject without any run of reply/forward prefixes at its start."""
    folded = _fold_width(subject)  # same length as subject: each full-width char maps to one
    match = _PREFIX.match(folded)
    return subject[match.end():] if match else subject


def is_forward(subject: str) -> bool:
    """True when the subject's first prefix is a forward prefix (Fwd:, FW:, WG:, 転送: ...)."""
    return bool(_FORWARD.match(_fold_width(subject)))


def one_line(text: str) -> str:
    return " ".join(text.split())


def summary_from(subject: str, body_text: str) -> str:
    """Subject without prefixes on one line, at most 255 characters; body's first line if empty."""
    summary = one_line(strip_reply_prefix(subject))
    if not summary:
        first = next((line for line in body_text.splitlines() if line.strip()), "")
        summary = one_line(first) or "(no subject)"
    if len(summary) > MAX_SUMMARY_CHARS:
        summary = summary[:MAX_SUMMARY_CHARS - 1].rstrip() + "…"
    return summary
