"""bytes -> InboundMail: headers, charsets, bodies and attachments, with no policy applied."""
from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
from email.message import Message

from plugin.domain import Address, Attachment, InboundMail, MailRef, RawMail, ThreadHeaders
from plugin.errors import MailRejected, RejectReason

_UNKNOWN_REF = MailRef(link_id=0, uid="")


def _addresses(msg: Message, name: str) -> tuple[Address, ...]:
    values = [str(v) for v in msg.get_all(name, [])]
    return tuple(Address(n, a) for n, a in email.utils.getaddresses(values) if a)


def _strip_id(value: str | None) -> str | None:
    if not value:
        return None
    value = str(value).strip()
    return value[1:-1].strip() if value.startswith("<") and value.endswith(">") else value or None


def parse_bytes(data: bytes, ref: MailRef = _UNKNOWN_REF) -> InboundMail:
    """Parse one raw message; raise MailRejected(MALFORMED) when nothing usable is there."""
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    text_parts: list[str] = []
    html = None
    attachments: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if ctype in ("text/plain", "text/html") and not filename and disposition != "attachment":
            text = payload.decode(part.get_content_charset() or "utf-8", errors="replace")
            if ctype == "text/plain":
                text_parts.append(text)
            elif html is None:
                html = text
            continue
        cid = _strip_id(part.get("Content-ID"))
        attachments.append(Attachment(filename or "attachment", ctype, payload,
                                      inline=disposition == "inline" or bool(cid), content_id=cid))
    sender = _addresses(msg, "From")
    date = None
    try:
        date = email.utils.parsedate_to_datetime(msg["Date"]) if msg["Date"] else None
    except (TypeError, ValueError):
        pass
    references = tuple(filter(None, (_strip_id(r) for r in str(msg.get("References") or "").split())))
    return InboundMail(
        message_id=_strip_id(msg.get("Message-ID")),
        sender=sender[0] if sender else None,
        reply_to=_addresses(msg, "Reply-To"),
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        subject=str(email.header.make_header(email.header.decode_header(msg.get("Subject") or ""))),
        date=date,
        body_text="\n".join(text_parts),
        body_html=html,
        attachments=tuple(attachments),
        thread=ThreadHeaders(_strip_id(msg.get("In-Reply-To")), references,
                             (msg.get("Thread-Index") or "").strip() or None),
        charset_repaired=False,
        size_bytes=len(data),
        raw_sha256=hashlib.sha256(data).hexdigest(),
        message=msg,
    )


def parse_mail(raw: RawMail) -> InboundMail:
    return parse_bytes(raw.data, raw.ref)


__all__ = ["parse_bytes", "parse_mail", "MailRejected", "RejectReason"]
