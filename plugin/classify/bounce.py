"""Failed recipients of a bounce: RFC 3464 delivery-status reports and the plain-text bounces of MTAs."""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

from flufl.bounce import all_failures

from plugin.classify.bounce_formats import inline_dsn_blocks, recipient_lines, sentence_recipients
from plugin.domain import BounceRecipient, BounceReport
from plugin.parse import budget
from plugin.parse.charsets import decode_text
from plugin.parse.html_text import html_to_text

log = logging.getLogger(__name__)
# flufl.bounce logs each of its detectors at INFO for every message, and a detector that trips over
# a damaged mail at ERROR before re-raising; _flufl_failures handles that, so both are noise.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)

# RFC 3464 section 2.3.3: actions that report a successful delivery, not a failure.
SUCCESS_ACTIONS = frozenset({"delivered", "relayed", "expanded", "deliverable"})
_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status", "text/delivery-status")
_ORIGINAL_TYPES = ("message/rfc822", "message/global", "text/rfc822-headers",
                   "message/rfc822-headers", "text/rfc822-header")

# An address starts where its local part starts, so a long run of such characters is scanned once.
_ADDRESS = re.compile(r"(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]++@[\w-]++(?:\.[\w-]++)+", re.UNICODE)
# RFC 3463 enhanced status codes ("5.1.1", qmail's "#5.1.1"); never part of an IP address.
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
# RFC 5321 reply codes at the start of a reply ("550 ", "550-", "550:").
_REPLY_CODE = re.compile(r"(?<![\w.#-])([245])\d\d(?=[\s:-]|$)")
_HEADER_LINE = re.compile(r"^[\w-]+:\s")
_MESSAGE_ID = re.compile(r"^[ \t]*Message-I[Dd]:[ \t]*<?([^\s<>]+@[^\s<>]+)>?", re.MULTILINE)

# Where MTAs start quoting the returned message; nothing below names a failed recipient.
_QUOTE_START = re.compile(
    r"^\s*+(?:[-=_*]{2,}+.*\b(?:original|returned|unsent|undelivered|copy of|headers?|message follows|"
    r"message text|rejected message)\b"
    r"|.*\bbelow this line is a copy\b|.*\bbelow is a copy of\b|message headers follow"
    r"|original mail as follows|your message reads\b"
    r"|the original message (?:headers?|text) (?:is|are|follows?)"
    r"|(?:received|return-path|dkim-signature|domainkey-signature|x-original-to|delivered-to"
    r"|mime-version):\s)",
    re.IGNORECASE)
# Lines naming the sender or the message, not a failed recipient.
_NOT_RECIPIENT_LINE = re.compile(
    r"\b(?:from|sender|return-path|reply-to|envelope-from|message-?id|references|in-reply-to|"
    r"original sender|postmaster|x-postfix-sender)\b\s*[:=(<]|\bmail from\b|\bfrom\s+<|\bfrom\s+\S+@|"
    r"\bcontact\b|\bwrite to\b|\bsend (?:e-?mail|mail|a message) to\b", re.IGNORECASE)
_DAEMON_LOCAL_PART = re.compile(r"^(?:mailer[-_]?daemon|mail[-_]?daemon|double-bounce|mdaemon)$", re.IGNORECASE)
_TEMPORARY_TEXT = re.compile(
    r"\b(?:delay(?:ed)?|has not yet been delivered|will (?:continue to )?(?:be )?retr(?:y|ied)|"
    r"will keep trying|still (?:be )?trying|warning: message|postponed|deferred|"
    r"will continue (?:trying|to try|to attempt)|will (?:be )?re-?attempt(?:ed)?|try again later|"
    r"(?:do|need) not (?:need to )?resend|temporar(?:y|ily) (?:failure|error|unavailable|rejected))\b", re.IGNORECASE)
# What a notice says of a recipient it gave up on.
_PERMANENT_TEXT = re.compile(
    r"failed permanently|permanent(?:ly)? (?:failure|error|fatal)|could ?n[o']t be delivered(?! for)|"
    r"does(?: not|n't) exist|user unknown|unknown (?:user|recipient)|no such (?:user|mailbox|recipient)|"
    r"undeliverable|(?:was|has been) rejected|giving up|gave up|retry timeout exceeded|"
    r"could not be reached|cannot be reached", re.IGNORECASE)

_FAILURE_TEXT = re.compile(
    r"could ?n[o']t be delivered|non-?delivery report|(?:could not|cannot) be reached|"
    r"(?:delivery|message)[\w ]{0,40}(?:delayed|postponed|deferred)|"
    r"will continue (?:trying|to try)|undeliverable|delivery (?:to the following|has failed|failed|failure)|"
    r"failed recipient|did not reach|unable to deliver|not (?:be )?delivered|"
    r"permanent(?:ly)? (?:error|fatal)|following (?:address|recipient)|returned to sender|user unknown|"
    r"mailbox unavailable|error (?:delivering|sending)|(?:was|were) rejected|rejected by|"
    r"配信できません|届きませんでした|送信できませんでした|宛先(?:不明|が見つかりません)",
    re.IGNORECASE)

# Diagnostic phrases of RFC 3463 classes, for bounces that give neither status nor reply code.
_DIAGNOSTIC_STATUS = (
    (re.compile(r"user unknown|unknown user|no such (?:user|mailbox|recipient)|does not exist|"
                r"invalid recipient|recipient (?:address )?rejected|mailbox unavailable|"
                r"not (?:a )?(?:valid|known) (?:user|recipient|mailbox)|no mailbox|unknown recipient|"
                r"user not found|addressee unknown|account (?:has been )?disabled|"
                # Lotus Notes / Domino directory misses, Exchange 2003's "Unknown Recipient".
                r"not listed in (?:public name|domino directory)|name is not recognized", re.IGNORECASE), "5.1.1"),
    (re.compile(r"host unknown|domain not found|unrouteable|no mx|name server|dns", re.IGNORECASE), "5.1.2"),
    (re.compile(r"mailbox (?:is )?full|full mailbox|quota|exceeded|over ?quota|insufficient|storage",
                re.IGNORECASE), "5.2.2"),
    (re.compile(r"too (?:large|big)|size limit|message size", re.IGNORECASE), "5.3.4"),
    (re.compile(r"spam|blocked|blacklist|block ?list|policy|denied|refused|rejected", re.IGNORECASE), "5.7.1"),
    (re.compile(r"giving up|retry time|could not deliver for|timed? ?out|expired|too long", re.IGNORECASE), "4.4.7"),
)


def _status(text: str) -> str | None:
    """The enhanced status code in a diagnostic, or one derived from its reply code or wording."""
    if match := _STATUS.search(text):
        return ".".join(match.groups())
    if match := _REPLY_CODE.search(text):
        return f"{match.group(1)}.0.0"
    for pattern, status in _DIAGNOSTIC_STATUS:
        if pattern.search(text):
            return status
    return None


def _permanent(status: str | None, action: str) -> bool:
    """Whether the message was given up for this recipient.

    RFC 3464 section 2.3.3: "failed" means no further attempt is made, even when the status is of
    class 4 (RFC 3463: a persistent transient condition such as a full mailbox, which expired);
    "delayed" is a warning and class 2 a success. Without an action, the status class decides.
    """
    if action.startswith(("fail", "error")):
        return True
    if action.startswith(("delayed", *SUCCESS_ACTIONS)):
        return False
    return status is None or status.startswith("5")


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return decode_text(payload, part.get_content_charset()).text
    if isinstance(payload, list):
        return "\n".join(p.as_string() if isinstance(p, Message) else str(p) for p in payload)
    return str(part.get_payload() or "")


def _dsn_blocks(part: Message) -> list[dict[str, str]]:
    """Header blocks of a delivery-status body (RFC 3464 section 2.1), field names lower-cased."""
    payload = part.get_payload()
    text = _text_of(part) if not isinstance(payload, list) else "\n\n".join(
        "\n".join(f"{k}: {v}" for k, v in block.items()) for block in payload if isinstance(block, Message))
    blocks = []
    for chunk in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        fields: dict[str, str] = {}
        for name, value in HeaderParser().parsestr(chunk.strip() + "\n").items():
            fields.setdefault(name.lower(), " ".join(str(value).split()))
        if fields:
            blocks.append(fields)
    return blocks


def _dsn_status(status_field: str, diagnostic: str) -> str | None:
    """Status, or the remote server's own enhanced code of the same class when its reply has one:
    the reporting MTA's Status is often a generic translation ("5.0.0") of that reply."""
    status = _status(status_field)
    remote = _STATUS.search(diagnostic)
    if remote and (status is None or status[0] == remote.group(1)):
        return ".".join(remote.groups())
    return status or _status(diagnostic)


def _dsn_address(fields: dict[str, str]) -> str | None:
    """Original-Recipient when given (the address we wrote), else Final-Recipient."""
    for name in ("original-recipient", "final-recipient", "x-actual-recipient"):
        value = fields.get(name, "")
        if match := _ADDRESS.search(value.partition(";")[2] or value):
            return match.group(0)
    return None


def dsn_parts(msg: Message) -> list[Message]:
    """The delivery-status parts of a message, outside any returned original."""
    return [part for part in _own_parts(msg) if part.get_content_type() in _DSN_TYPES]


def read_dsn(msg: Message) -> tuple[BounceRecipient, ...]:
    """One recipient per per-recipient block of the RFC 3464 reports in the message."""
    recipients: dict[str, BounceRecipient] = {}
    for part in dsn_parts(msg):
        for fields in _dsn_blocks(part):
            address = _dsn_address(fields)
            if address is None or address.lower() in recipients:
                continue
            action = fields.get("action", "").lower()
            status = _dsn_status(fields.get("status", ""), fields.get("diagnostic-code", ""))
            if status is None and action.startswith(tuple(SUCCESS_ACTIONS)):
                status = "2.0.0"
            recipients[address.lower()] = BounceRecipient(address, status, _permanent(status, action))
    return tuple(recipients.values())


def _own_parts(msg: Message) -> Iterator[Message]:
    """Leaf parts of the bounce itself, not descending into a returned message."""
    if msg.is_multipart() and msg.get_content_maintype() == "multipart":
        for sub in msg.get_payload():
            if isinstance(sub, Message):
                yield from _own_parts(sub)
    else:
        yield msg


def notice_text(msg: Message) -> str:
    """The bounce's own explanation, up to where it starts quoting the returned message."""
    texts = []
    for part in _own_parts(msg):
        ctype = part.get_content_type()
        if part.get_filename() or ctype not in ("text/plain", "text/html"):
            continue
        text = _text_of(part)
        if ctype == "text/html":
            if any(p.get_content_type() == "text/plain" for p in _own_parts(msg)):
                continue
            text = html_to_text(text)
        lines = []
        for line in text.replace("\r\n", "\n").split("\n"):
            if _QUOTE_START.match(line):
                break
            lines.append(line)
        texts.append("\n".join(lines))
    return "\n".join(texts)


def _original_headers(msg: Message) -> Message | None:
    """Headers of the returned original: its attached copy, or the headers quoted in the notice."""
    for part in msg.walk():
        if part is msg or part.get_content_type() not in _ORIGINAL_TYPES:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        return HeaderParser().parsestr(_text_of(part).lstrip())
    for part in _own_parts(msg):
        if part.get_content_maintype() != "text":
            continue
        lines = _text_of(part).replace("\r\n", "\n").split("\n")
        start = next((i for i, line in enumerate(lines) if _QUOTE_START.match(line)), None)
        if start is None:
            continue
        # The quoted header block: from its first header line to the first blank line after it.
        block = [line.strip() if _HEADER_LINE.match(line.strip()) else line for line in lines[start:]]
        first = next((i for i, line in enumerate(block) if _HEADER_LINE.match(line)), None)
        if first is not None:
            return HeaderParser().parsestr("\n".join(block[first:]))
    return None


def original_message_id(msg: Message) -> str | None:
    """Message-ID of the returned original: from its attached copy or its quoted headers."""
    headers = _original_headers(msg)
    value = headers.get("Message-ID") if headers is not None else None
    if value:
        return str(value).strip().strip("<>").strip() or None
    for part in _own_parts(msg):
        if part.get_content_maintype() == "text" and (match := _MESSAGE_ID.search(_text_of(part))):
            return match.group(1)
    return None


def _original_recipients(msg: Message) -> list[str]:
    """The To addresses of the returned original, when the notice itself names nobody."""
    headers = _original_headers(msg)
    if headers is None:
        return []
    return list(dict.fromkeys(_ADDRESS.findall(" ".join(str(v) for v in headers.get_all("To", [])))))


def _own_addresses(msg: Message) -> set[str]:
    """Addresses in the bounce's own envelope headers: its sender and the original sender."""
    names = ("From", "To", "Cc", "Reply-To", "Sender", "Return-Path", "Envelope-To")
    return {a.lower() for name in names for v in msg.get_all(name, []) for a in _ADDRESS.findall(str(v))}


@dataclass(frozen=True, slots=True)
class _Notice:
    """A notice's text as lines, and the first line that names each address in it."""

    text: str
    lines: tuple[str, ...]
    first_line: dict[str, int]
    first_offset: dict[str, int]  # where in the text, for the order of a set of addresses

    @classmethod
    def of(cls, text: str) -> _Notice:
        lines = tuple(text.split("\n"))
        first_line: dict[str, int] = {}
        first_offset: dict[str, int] = {}
        offset = 0
        for index, line in enumerate(lines):
            if not index % 1024:  # lines here are cheap; the budget is looked at every so many
                budget.check()
            for match in _ADDRESS.finditer(line):
                for key in (match.group().lower(), match.group().lower().strip(".")):
                    first_line.setdefault(key, index)
                    first_offset.setdefault(key, offset + match.start())
            offset += len(line) + 1
        return cls(text, lines, first_line, first_offset)


def _recipient(address: str, notice: _Notice, temporary: bool, alone: bool = False) -> BounceRecipient:
    """A recipient of a plain-text notice with its own status and whether it was given up: its
    own lines decide, else the nearest heading above it, else the notice as a whole (which is
    all about it when it is the only recipient)."""
    lines = notice.lines
    at = notice.first_line.get(address.lower())
    if at is None:
        return BounceRecipient(address, _status(notice.text), not temporary)
    own = [lines[at]]
    for line in lines[at + 1:at + 8]:
        if not line.strip() or (_ADDRESS.search(line) and not _STATUS.search(line)):
            break
        own.append(line)
    block = "\n".join(own)
    context = notice.text if alone else "\n".join(lines[at:at + 8])
    status = _status(block) or _status(context)
    verdict = _given_up(block)
    for line in reversed(lines[max(0, at - 12):at]):
        if verdict is not None:
            break
        verdict = _given_up(line)
    if verdict is None:
        verdict = not temporary
    if status and status[0] == "5" and not verdict and not (_STATUS.search(block) or _REPLY_CODE.search(block)):
        status = "4" + status[1:]  # a class read from the wording of a notice that will retry
    return BounceRecipient(address, status, verdict)


def _given_up(text: str) -> bool | None:
    """True when the text says delivery failed for good, False when it will be retried, else None."""
    if _TEMPORARY_TEXT.search(text):
        return False
    return True if _PERMANENT_TEXT.search(text) else None


def _is_recipient(address: str, exclude: set[str]) -> bool:
    """Neither an address of the bounce's own envelope nor a mailer daemon's."""
    key = address.lower()
    return key not in exclude and not _DAEMON_LOCAL_PART.match(key.partition("@")[0])


def _inline_dsn(text: str) -> tuple[BounceRecipient, ...]:
    """Recipients of RFC 3464 fields written into the notice text instead of a delivery-status part."""
    recipients: dict[str, BounceRecipient] = {}
    for address, action, diagnostic in inline_dsn_blocks(text):
        status = _status(diagnostic)
        recipients.setdefault(address.lower(), BounceRecipient(address, status, _permanent(status, action)))
    return tuple(recipients.values())


def _scan_text(text: str, exclude: set[str]) -> list[str]:
    """Addresses the notice names as recipients, in order, without senders or daemons."""
    found: dict[str, str] = {}
    for line in text.split("\n"):
        budget.check()
        if _NOT_RECIPIENT_LINE.search(line) or re.search(r"https?://", line):
            continue
        for address in _ADDRESS.findall(line):
            address = address.strip(".")
            if _is_recipient(address, exclude):
                found.setdefault(address.lower(), address)
    return list(found.values())


# An SMTP reply as MTAs quote it ("550 ", "<<< 550-", "said: 550", "[SMTP Error Code 550]").
_TRANSCRIPT_REPLY = re.compile(r"^[ \t]*(?:<<<[ \t]*)?[45]\d\d[ -]|\bsaid:\s*[45]\d\d\b|error code:?\s*[45]\d\d\b",
                               re.MULTILINE | re.IGNORECASE)


def looks_machine_written(msg: Message) -> bool:
    """Whether the notice carries what only an MTA writes: status codes, a transcript or the original."""
    text = notice_text(msg)
    return bool(_STATUS.search(text) or _TRANSCRIPT_REPLY.search(text)) or _original_headers(msg) is not None


def looks_like_notice(msg: Message) -> bool:
    """Whether the bounce's own text says that delivery failed."""
    return bool(_FAILURE_TEXT.search(notice_text(msg)[:4000]))


def _flufl_failures(msg: Message) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """flufl.bounce's (temporary, permanent) failed recipients; none when its detectors cannot read the mail."""
    try:
        return all_failures(msg)
    except Exception as exc:
        log.debug("flufl.bounce could not read a damaged notice (%s: %s); reading it ourselves",
                  type(exc).__name__, exc)
        return frozenset(), frozenset()


def read_mta_bounce(msg: Message) -> tuple[BounceRecipient, ...]:
    """Failed recipients of a bounce without delivery-status part, read from its notice text."""
    text = notice_text(msg)
    notice = _Notice.of(text)
    temporary = bool(_TEMPORARY_TEXT.search(text) or _TEMPORARY_TEXT.search(str(msg.get("Subject", ""))))
    # Exim names the failed recipients in a header of its own.
    failed = list(dict.fromkeys(a for v in msg.get_all("X-Failed-Recipients", []) for a in _ADDRESS.findall(str(v))))
    if failed:
        return tuple(_recipient(a, notice, temporary, len(failed) == 1) for a in failed)
    flufl_temporary, flufl_permanent = _flufl_failures(msg)
    found = {a.decode(errors="replace").strip("."): False for a in flufl_permanent}
    found |= {a.decode(errors="replace").strip("."): True for a in flufl_temporary}
    if found:
        # flufl.bounce reads one recipient of a notice that names each in its own sentence.
        own = _own_addresses(msg)
        known = {a.lower() for a in found}
        found |= {a: False for a in sentence_recipients(text) if a.lower() not in known and _is_recipient(a, own)}
        # flufl.bounce answers sets; report them in the order the notice names them.
        ordered = sorted(found.items(), key=lambda item: (notice.first_offset.get(item[0].lower(), len(text)),
                                                          item[0]))
        return tuple(_recipient(a, notice, temporary or temp, len(ordered) == 1) for a, temp in ordered)
    if inline := _inline_dsn(text):
        return inline
    own = _own_addresses(msg)
    addresses = (recipient_lines(text, lambda a: _is_recipient(a, own))
                 or [a for a in sentence_recipients(text) if _is_recipient(a, own)]
                 or _scan_text(text, own) or _original_recipients(msg))
    return tuple(_recipient(a, notice, temporary, len(addresses) == 1) for a in addresses)


def read_ses_notification(msg: Message) -> tuple[str, BounceReport] | None:
    """Amazon SES's JSON notice sent by SNS: ("Bounce" | "Delivery" | "Complaint", its recipients)."""
    if msg.is_multipart():
        return None
    text = _text_of(msg).strip()
    if not text.startswith("{"):
        return None
    try:
        notice, _ = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None
    kind = notice.get("notificationType") or notice.get("eventType") if isinstance(notice, dict) else None
    if kind not in ("Bounce", "Delivery", "Complaint"):
        return None
    detail = notice.get(kind.lower()) or {}
    original = (notice.get("mail") or {}).get("messageId")
    if kind == "Bounce":
        permanent = detail.get("bounceType") == "Permanent"
        recipients = tuple(BounceRecipient(r.get("emailAddress", ""), _status(r.get("status") or "")
                                           or _status(r.get("diagnosticCode") or ""), permanent)
                           for r in detail.get("bouncedRecipients", []))
    elif kind == "Delivery":
        status = _status(detail.get("smtpResponse") or "") or "2.0.0"
        recipients = tuple(BounceRecipient(a, status, False) for a in detail.get("recipients", []))
    else:
        recipients = tuple(BounceRecipient(r.get("emailAddress", ""), None, False)
                           for r in detail.get("complainedRecipients", []))
    return kind, BounceReport(recipients, original)


def report_of(msg: Message, recipients: Iterable[BounceRecipient]) -> BounceReport:
    """A bounce report of these recipients and the returned original's Message-ID."""
    return BounceReport(tuple(recipients), original_message_id(msg))
