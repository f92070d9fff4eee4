"""A public agent comment as the mail the customer receives: headers, text and HTML, attachments."""
from __future__ import annotations

import html
import secrets
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from typing import Any, Self

from plugin.classify.detectors import LOOP_HEADERS
from plugin.domain import Address, Link
from plugin.outbound import iso2022jp
from plugin.outbound.model import Notification
from plugin.parse.html_text import html_to_text

# Headers are RFC 2047 encoded and bodies 7bit-safe, so any relay takes the mail (RFC 6152 not needed).
POLICY = SMTP.clone(cte_type="7bit")
LOOP_HEADER = LOOP_HEADERS[0]  # what plugin.classify.detectors recognises as our own mail coming back
ISO_2022_JP = "iso-2022-jp"
SUBJECT_REPLY = "reply"
MAX_7BIT_LINE = 998  # RFC 5322 section 2.1.1


def sender_of(link: Link) -> Address:
    """The From of a link's mail: its from-address (default: the mailbox's address) and display name."""
    address = link.from_address or link.address or (link.username if "@" in link.username else "")
    return Address(link.from_name, address)


def message_id_domain(link: Link) -> str:
    """The domain of our Message-IDs, as plugin.pipeline.own_message_id_domains recognises it."""
    return f"jsm-mail.{sender_of(link).domain}"


def new_message_id(link: Link, comment_id: str) -> str:
    """Our Message-ID for the mail of one comment (RFC 5322 section 3.6.4: unique, with our domain)."""
    return f"comment-{comment_id}.{secrets.token_hex(6)}@{message_id_domain(link)}"


def subject_for(note: Notification, style: str) -> str:
    key = note.request.key
    if style == SUBJECT_REPLY and note.threading.customer_subject:
        earlier = note.threading.customer_subject
        subject = earlier if earlier.lower().startswith("re:") else f"Re: {earlier}"
        return subject if key in subject else f"{subject} [{key}]"
    return f"[{key}] {note.request.summary}"


def reply_hint(key: str) -> str:
    return f"Reply to this mail to answer; keep [{key}] in the subject."


def text_body(note: Notification) -> str:
    comment = note.comment
    text = html_to_text(comment.rendered_html) if comment.rendered_html else comment.body
    lines = [text.strip(), ""]
    lines += [f"{a.filename} ({_size(a.size)}, too large to attach): {a.url}" for a in note.too_large]
    lines += ["", "-- ", reply_hint(note.request.key)]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def html_body(note: Notification) -> str:
    comment = note.comment
    body = comment.rendered_html or "<p>" + html.escape(comment.body).replace("\n", "<br>") + "</p>"
    files = "".join(f'<li><a href="{html.escape(a.url)}">{html.escape(a.filename)}</a> '
                    f"({_size(a.size)}, too large to attach)</li>" for a in note.too_large)
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body>"
            f"<div>{body}</div>" + (f"<ul>{files}</ul>" if files else "")
            + f'<p style="color:#777">{html.escape(reply_hint(note.request.key))}</p></body></html>\n')


def compose(note: Notification, link: Link, *, now: datetime | None = None) -> EmailMessage:
    """The notification mail; pure, so a table of comments tests it without a server."""
    japanese = link.outbound_charset == ISO_2022_JP
    msg = EmailMessage(policy=POLICY)
    msg["From"] = formataddr((note.sender.name, note.sender.address))
    msg["To"] = [formataddr((a.name, a.address)) for a in note.recipients.to]
    if note.recipients.cc:
        msg["Cc"] = [formataddr((a.name, a.address)) for a in note.recipients.cc]
    subject = subject_for(note, link.subject_style)
    msg["Subject"] = _PreEncoded("Subject", subject) if japanese and iso2022jp.can_encode(subject) else subject
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = f"<{note.threading.message_id}>"
    if note.threading.in_reply_to:
        msg["In-Reply-To"] = f"<{note.threading.in_reply_to}>"
    if note.threading.references:
        msg["References"] = " ".join(f"<{r}>" for r in note.threading.references)
    # RFC 3834 section 5: automatic mail says so, so that responders do not answer it; Exchange
    # honours X-Auto-Response-Suppress (MS-OXCMAIL 2.2.3.2.14) instead.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = f"{link.name}; comment={note.comment.id}"
    _set_text(msg, text_body(note), "plain", japanese)
    _add_html(msg, html_body(note), japanese)
    for file in note.files:
        maintype, _, subtype = file.content_type.partition("/")
        msg.add_attachment(file.data, maintype=maintype or "application", subtype=subtype or "octet-stream",
                           filename=file.filename)
    return msg


def _set_text(msg: EmailMessage, text: str, subtype: str, japanese: bool) -> None:
    if japanese and iso2022jp.can_encode(text):
        msg.set_content(iso2022jp.encode(text), maintype="text", subtype=subtype, cte=_cte(text),
                        params={"charset": "ISO-2022-JP"})
    else:
        msg.set_content(text, subtype=subtype, charset="utf-8")


def _add_html(msg: EmailMessage, body: str, japanese: bool) -> None:
    if japanese:
        # Characters outside CP50220 become HTML character references, which every browser reads.
        safe = "".join(c if iso2022jp.can_encode(c) else f"&#{ord(c)};" for c in body)
        safe = safe.replace('<meta charset="utf-8">', '<meta charset="iso-2022-jp">')
        msg.add_alternative(iso2022jp.encode(safe), maintype="text", subtype="html", cte=_cte(safe),
                            params={"charset": "ISO-2022-JP"})
    else:
        msg.add_alternative(body, subtype="html", charset="utf-8")


def _cte(text: str) -> str:
    """7bit as old Japanese clients expect, unless a line would break RFC 5322's length limit."""
    return "7bit" if all(len(iso2022jp.encode(line)) <= MAX_7BIT_LINE for line in text.split("\n")) else "base64"


def _size(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB" if size >= 1024 * 1024 else f"{max(1, size // 1024)} kB"


class _PreEncoded(str):
    """A header value already in RFC 2047 ISO-2022-JP words, written as is.

    The email package would re-encode a Japanese subject as UTF-8, and its iso-2022-jp codec
    lacks the NEC and IBM characters; a value with `name` and `fold` is stored and folded by
    the policy as the object it is (email.policy.EmailPolicy.header_store_parse).
    """

    name: str

    def __new__(cls, name: str, text: str) -> Self:
        value = super().__new__(cls, text)
        value.name = name
        return value

    def fold(self, *, policy: Any) -> str:
        words = iso2022jp.encoded_words(str(self)).split(" ")
        linesep = str(policy.linesep)
        return f"{self.name}: " + f"{linesep} ".join(words) + linesep
