"""Where the failed recipients stand in the plain-text bounces of particular MTAs."""
from __future__ import annotations

import re
from collections.abc import Callable

_ADDR = r"(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]++@[\w-]++(?:\.[\w-]++)+"

# Each reader names one MTA family's recipient line; a line matching one is a failed recipient.
RecipientLine = tuple[str, re.Pattern[str]]
RECIPIENT_LINES: tuple[RecipientLine, ...] = (
    # qmail, its clones and Postfix before DSN: "<user@example.jp>:" alone or before the reason,
    # Postfix with "(expanded from <alias@example.jp>)" between.
    ("qmail-postfix", re.compile(rf"^\s*(?:To\s*:\s*)?<({_ADDR})>(?:\s*\(expanded from [^)]*\))?\s*:", re.IGNORECASE)),
    # Exchange 2003: "user@example.jp on Thu, 29 Apr 2010 16:51:51 -0500".
    ("exchange2003", re.compile(rf"^\s*(?:\S*SMTP=)?({_ADDR}) on\s+\S", re.IGNORECASE)),
    # Unknown MTA #1: "user@example.jp [User unknown]".
    ("x1", re.compile(rf"^\s*({_ADDR})\s+\[[^\]]+\]\s*$")),
    # Unknown MTA #3 (and list-like notices): "  * user@example.jp".
    ("bullet", re.compile(rf"^\s+[*\-]\s+<?({_ADDR})>?\s*$")),
    # McAfee Email Appliance: "<user@example.jp>   (Unknown user user@example.jp)".
    ("mcafee", re.compile(rf"^\s*<({_ADDR})>\s+\(.+\)\s*$")),
    # au by KDDI: "    Could not be delivered to: <user@example.jp>".
    ("kddi", re.compile(rf"^\s*Could not be delivered to:\s*<?({_ADDR})>?", re.IGNORECASE)),
    # au EZweb and Courier transcripts: "    Recipient: <user@example.jp>".
    ("ezweb", re.compile(rf"^\s*Recipient:\s*<({_ADDR})>", re.IGNORECASE)),
    # IMail Server: "Unknown user: user@example.jp", "undeliverable to user@example.jp".
    ("imail", re.compile(rf"^(?:Unknown user|Invalid final delivery userid|User mailbox exceeds allowed size|"
                         rf"undeliverable to)\s*:?\s*<?({_ADDR})>?\s*$", re.IGNORECASE)),
    # sendmail transcripts: "550 5.1.1 <user@example.jp>... User unknown".
    ("sendmail", re.compile(rf"^\s*(?:[45]\d\d[ -](?:[245]\.\d{{1,3}}\.\d{{1,3}}\s+)?)?<({_ADDR})>\.\.\.\s",
                            re.IGNORECASE)),
    # Site-specific notices: "Recipient: user@example.jp", "Recipient address: <user@example.jp>".
    ("recipient-field", re.compile(
        rf"^\s*(?:original |final |failed )?recipient(?:\(s\))?(?: address)?\s*:\s*<?({_ADDR})>?", re.IGNORECASE)),
    # Exim, Gmail, Domino, Lotus Notes and most others: the address alone on an indented line.
    ("indented", re.compile(rf"^\s+<?({_ADDR})>?\s*$")),
)

# Notices that name the recipient in a sentence: "Your message could not be delivered to x.",
# "The message you sent to x has been postponed", "Delivery to x failed".
_SENTENCE_RECIPIENT = re.compile(
    rf"(?:could ?n[o']t be delivered to|not be delivered to|undeliverable to|failed to deliver to"
    rf"|message (?:you sent |sent )?to|delivery to|unable to deliver (?:your message )?to)\s*+:?\s*+<?({_ADDR})>?",
    re.IGNORECASE)

# RFC 3464 fields copied into a text body (unknown MTA #5, flattened reports): one block per recipient.
_INLINE_FINAL_RECIPIENT = re.compile(rf"^[ \t]*Final-Recipient:[ \t]*(?:[\w-]+[ \t]*;[ \t]*)?<?({_ADDR})>?",
                                     re.IGNORECASE | re.MULTILINE)
_INLINE_ACTION = re.compile(r"^[ \t]*Action:[ \t]*([\w-]+)", re.IGNORECASE | re.MULTILINE)
_INLINE_STATUS = re.compile(r"^[ \t]*Status:[ \t]*([245]\.\d{1,3}\.\d{1,3})", re.IGNORECASE | re.MULTILINE)
_INLINE_DIAGNOSTIC = re.compile(r"^[ \t]*Diagnostic-Code:[ \t]*(.*)", re.IGNORECASE | re.MULTILINE)


def recipient_lines(text: str, keep: Callable[[str], bool]) -> list[str]:
    """Addresses on the recipient lines of a notice, in order, once each, that `keep` accepts."""
    found: dict[str, str] = {}
    for line in text.split("\n"):
        for _, pattern in RECIPIENT_LINES:
            if (match := pattern.match(line)) and keep(match.group(1)):
                found.setdefault(match.group(1).lower(), match.group(1))
                break
    return list(found.values())


def sentence_recipients(text: str) -> list[str]:
    """Addresses that a notice names in a sentence about their delivery, in order, once each."""
    found: dict[str, str] = {}
    for match in _SENTENCE_RECIPIENT.finditer(text):
        found.setdefault(match.group(1).lower(), match.group(1))
    return list(found.values())


def inline_dsn_blocks(text: str) -> list[tuple[str, str, str]]:
    """(recipient, action, status and diagnostic) of each Final-Recipient block written as text."""
    starts = list(_INLINE_FINAL_RECIPIENT.finditer(text))
    blocks = []
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        block = text[match.end():end]
        action = m.group(1).lower() if (m := _INLINE_ACTION.search(block)) else ""
        status = m.group(1) if (m := _INLINE_STATUS.search(block)) else ""
        diagnostic = m.group(1) if (m := _INLINE_DIAGNOSTIC.search(block)) else ""
        blocks.append((match.group(1), action, f"{status} {diagnostic}".strip()))
    return blocks
