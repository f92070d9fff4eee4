"""Threading: which request a mail belongs to, and the evidence for it.

The rules are tried in the order the product promises (DESIGN.md section 4); the first that
finds a request wins, and every rule tried leaves a note, so the processing log can say why.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from plugin.domain import (
    BounceOf,
    FollowUp,
    Ignore,
    InboundMail,
    Link,
    MailKind,
    NewRequest,
    RequestInfo,
    Route,
    SmartMatch,
    ThreadEntry,
    Verdict,
)
from plugin.mapping.summary import is_forward, strip_reply_prefix
from plugin.route.jira_ids import jira_issue_id
from plugin.route.lookups import Requests, ThreadIndex

# A Jira issue key: project key (uppercase letter, then letters, digits or _) and a number.
_ISSUE_KEY = re.compile(r"(?<![A-Za-z0-9_-])([A-Z][A-Z0-9_]{0,254}-[1-9][0-9]*)(?![A-Za-z0-9_-])")
# Outlook Thread-Index: 22 bytes of header (time + conversation GUID) name the conversation.
_CONVERSATION_BYTES = 22


def issue_keys_in(subject: str) -> list[str]:
    """Issue keys in the subject, leftmost first, without repeats."""
    return list(dict.fromkeys(_ISSUE_KEY.findall(subject)))


def conversation_id(thread_index: str | None) -> str | None:
    """The conversation part of an Outlook Thread-Index header, as hex; None if unreadable."""
    if not thread_index:
        return None
    try:
        raw = base64.b64decode("".join(thread_index.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw[:_CONVERSATION_BYTES].hex() if len(raw) >= _CONVERSATION_BYTES else None


@dataclass(frozen=True, slots=True)
class Match:
    issue_key: str
    evidence: str


@dataclass(frozen=True, slots=True)
class Lookups:
    """What the rules consult: the link's settings, its threading index and Jira's requests."""

    link: Link
    threads: ThreadIndex
    requests: Requests


Rule = Callable[[InboundMail, Lookups], "Match | str"]


def _by_headers(mail: InboundMail, ctx: Lookups) -> Match | str:
    """In-Reply-To, then References newest first, against mails we received or sent."""
    candidates = [("In-Reply-To", mail.thread.in_reply_to)] if mail.thread.in_reply_to else []
    candidates += [("References", ref) for ref in reversed(mail.thread.references)]
    for header, message_id in candidates:
        found = _request_of_message(message_id, ctx)
        if found:
            return Match(found.issue_key, f"{header} <{message_id}> = {found.evidence}")
    return "In-Reply-To/References: no known Message-ID" if candidates else "no In-Reply-To/References"


def _subject_key(subject: str, ctx: Lookups) -> str | None:
    """The leftmost key of this link's project, or of its tracking token ([CRM:0001234])."""
    project = ctx.requests.project_key
    for key in issue_keys_in(subject):
        if key.rsplit("-", 1)[0] == project:
            return key
    token = ctx.link.tracking_token
    if token:
        found = re.search(rf"\[{re.escape(token)}:(\d+)\]", subject)
        if found:
            return f"{project}-{int(found.group(1))}"
    return None


def _involved(mail: InboundMail, info: RequestInfo) -> bool:
    sender = mail.sender.address.lower() if mail.sender else ""
    return sender in info.people


def _by_subject_key(mail: InboundMail, ctx: Lookups) -> Match | str:
    """An issue key of this project in the subject, if the request exists and the sender may comment."""
    key = _subject_key(mail.subject, ctx)
    if key is None:
        return "no issue key of this project in the subject"
    info = ctx.requests.request(key)
    if info is None or info.project_key != ctx.requests.project_key:
        return f"subject key {key}: no such request"
    if _involved(mail, info):
        return Match(key, f"subject key {key}, sender is reporter or participant")
    if ctx.link.anyone_may_comment:
        return Match(key, f"subject key {key}, link lets anyone comment")
    return f"subject key {key} ignored (sender not involved)"


def _by_thread_index(mail: InboundMail, ctx: Lookups) -> Match | str:
    conversation = conversation_id(mail.thread.thread_index)
    if conversation is None:
        return "no Thread-Index"
    key = ctx.threads.conversation_issue(conversation)
    if key is None:
        return "Thread-Index: no match"
    return Match(key, f"Thread-Index conversation {conversation[:12]}... = conversation of {key}")


def subject_words(subject: str, settings: SmartMatch) -> list[str]:
    """The normalised subject smart match compares: prefixes and keyword-filter matches removed."""
    text = strip_reply_prefix(subject)
    with contextlib.suppress(re.error):  # a broken admin filter must not stop mail; prefixes are already gone
        text = re.sub(settings.keyword_filter, "", text)
    return text.lower().split()[:settings.hash_max_count]


def mail_addresses(mail: InboundMail) -> set[str]:
    people = ([mail.sender] if mail.sender else []) + list(mail.to) + list(mail.cc)
    return {p.address.lower() for p in people}


def _by_smart_match(mail: InboundMail, ctx: Lookups) -> Match | str:
    """Same normalised subject and enough shared addresses as a recent mail of a request."""
    settings = ctx.link.smart_match
    if not settings.enabled:
        return "smart match off"
    words = subject_words(mail.subject, settings)
    if not words:
        return "smart match: empty subject"
    addresses = mail_addresses(mail) - ctx.link.own_addresses
    since = datetime.now(UTC) - timedelta(days=settings.window_days)
    for key, earlier_words, earlier_addresses in ctx.threads.recent_subjects(since):
        differing = sum(a != b for a, b in zip(words, earlier_words, strict=False))
        differing += abs(len(words) - len(earlier_words))
        shared = len(addresses & earlier_addresses)
        if differing <= settings.hash_delta_subject_count and shared >= settings.hash_min_address_count:
            return Match(key, f"smart match: subject {' '.join(words)!r} and {shared} shared addresses = {key}")
    return "smart match: no match"


# The order is the product's promise (DESIGN.md section 4).
RULES: tuple[Rule, ...] = (_by_headers, _by_subject_key, _by_thread_index, _by_smart_match)


def find_request(mail: InboundMail, ctx: Lookups) -> tuple[Match | None, list[str]]:
    """The first rule that finds a request, and the notes of the rules tried before it."""
    notes: list[str] = []
    for rule in RULES:
        result = rule(mail, ctx)
        if isinstance(result, Match):
            return result, notes
        notes.append(result)
    return None, notes


def _resolved_long_ago(info: RequestInfo | None, window_days: int) -> int | None:
    """Days since resolution when a request was resolved longer ago than the link's window."""
    if info is None or info.resolved_at is None:
        return None
    days = (datetime.now(UTC) - info.resolved_at).days
    return days if days >= window_days else None


def choose_route(mail: InboundMail, verdict: Verdict, ctx: Lookups) -> Route:
    """What the mail means for Jira: ignore it, record a bounce, comment, or a new request."""
    if verdict.kind in (MailKind.AUTO_REPLY, MailKind.LOOP, MailKind.FEEDBACK_REPORT):
        answered = _by_headers(mail, ctx) if verdict.kind is MailKind.AUTO_REPLY else None
        return Ignore(mail, f"{verdict.kind.value}: {verdict.evidence}",
                      answered.issue_key if isinstance(answered, Match) else None)
    if verdict.kind is MailKind.BOUNCE:
        return _bounce_route(mail, verdict, ctx)
    match, notes = find_request(mail, ctx)
    if verdict.evidence:  # e.g. an allowlisted sender's auto-reply signal that was overridden
        notes.insert(0, verdict.evidence)
    if match is None:
        return NewRequest(mail, "; ".join(notes))
    info = ctx.requests.request(match.issue_key)
    if info is None:
        notes.append(f"{match.evidence}, but {match.issue_key} no longer exists")
        return NewRequest(mail, "; ".join(notes))
    if is_forward(mail.subject):
        return NewRequest(mail, f"forwarded mail, not a comment: {match.evidence}", related_key=match.issue_key)
    days = _resolved_long_ago(info, ctx.link.reopen_window_days)
    if days is not None:
        return NewRequest(mail, f"{match.evidence}; {match.issue_key} was resolved {days} days ago",
                          related_key=match.issue_key)
    return FollowUp(mail, match.issue_key, match.evidence)


def _bounce_route(mail: InboundMail, verdict: Verdict, ctx: Lookups) -> BounceOf:
    """A bounce belongs to the request its returned original was about: a mail of ours or Jira's."""
    report = verdict.bounce
    original = report.original_message_id if report else None
    match = _request_of_message(original, ctx) if original else None
    if match:
        return BounceOf(mail, report, match.issue_key, f"bounce of <{original}> = {match.evidence}")
    reason = f"original <{original}> is not a mail of ours" if original else "no original Message-ID"
    return BounceOf(mail, report, None, f"{verdict.evidence}; {reason}")


def _request_of_message(message_id: str, ctx: Lookups) -> Match | None:
    """The request a Message-ID belongs to: a mail we received or sent, or Jira's notification about it."""
    known = ctx.threads.known_mail(message_id)
    if known:
        return Match(known.issue_key, known.describe())
    issue_id = jira_issue_id(message_id)
    info = ctx.requests.request(issue_id) if issue_id else None
    if info and info.project_key == ctx.requests.project_key:
        return Match(info.key, f"Jira notification about {info.key}")
    return None


def thread_entry(mail: InboundMail, issue_key: str, role: str, smart_match: SmartMatch) -> ThreadEntry:
    """What the threading index keeps of a mail of a request, so later replies find it."""
    return ThreadEntry(issue_key, role, mail.message_id, conversation_id(mail.thread.thread_index),
                       tuple(subject_words(mail.subject, smart_match)), frozenset(mail_addresses(mail)))
