"""bytes -> InboundMail: headers, charsets, bodies and attachments, with no policy applied."""
from __future__ import annotations

import email.utils
import hashlib
import mimetypes
import re
import urllib.parse
from dataclasses import dataclass, field
from email.message import Message

from plugin.domain import Address, Attachment, InboundMail, MailRef, RawMail, ThreadHeaders
from plugin.errors import MailRejected, RejectReason
from plugin.parse import budget
from plugin.parse.charsets import (
    ENCODED_WORD,
    Decoded,
    charset_from_html,
    decode_body_with_hint,
    decode_header_bytes,
    decode_text,
    decode_words,
)
from plugin.parse.headers import FOLDED_LINE_BREAK, Headers, date_of, message_id_of, message_ids_of
from plugin.parse.html_text import html_to_text
from plugin.parse.mime import UU_BLOCK, Part, parse_mail_entity, transfer_decode, uudecode

_UNKNOWN_REF = MailRef(link_id=0, uid="")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_BODY = frozenset(("text/plain", "text/html"))
_EXTENSIONS = {"message/rfc822": ".eml", "message/global": ".eml", "message/delivery-status": ".txt",
               "message/global-delivery-status": ".txt", "message/disposition-notification": ".txt",
               "text/rfc822-headers": ".txt", "text/calendar": ".ics", "application/pgp-signature": ".asc",
               "application/pgp-encrypted": ".asc", "application/pkcs7-signature": ".p7s",
               "application/pkcs7-mime": ".p7m", "application/ms-tnef": ".dat"}
_NAME_PARAMETERS = (("content-disposition", "filename"), ("content-type", "name"),
                    ("content-disposition", "name"), ("content-type", "filename"))
_FILE_NAME = re.compile(r"[\w\-. ]{1,200}\.[A-Za-z0-9]{1,5}")
_MIME_TYPES = mimetypes.MimeTypes(filenames=())  # built-in table only: same names on every host


@dataclass(slots=True)
class _Html:
    """An HTML body kept as markup until its text is needed: converting HTML is the slow step."""

    markup: str
    converted: str | None = None

    @property
    def text(self) -> str:
        if self.converted is None:
            self.converted = html_to_text(self.markup)
        return self.converted


@dataclass(slots=True)
class _Found:
    """What a walk over the MIME tree found: body pieces in order and the attachments."""

    texts: list[str | _Html] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    attachments: list[Part] = field(default_factory=list)
    repaired: bool = False
    hint: str | None = None  # the charset of text parts that declare none


def parse_bytes(data: bytes, ref: MailRef = _UNKNOWN_REF) -> InboundMail:
    """Parse one raw message; raise MailRejected(MALFORMED) when the bytes are not a mail."""
    raw = _lf_line_ends(data)
    root = parse_mail_entity(raw)
    if not root.message.keys() or any("\x00" in value for _, value in root.message.raw_items()):
        raise MailRejected(RejectReason.MALFORMED, "no header section")
    headers = Headers(root.message, _first_charset(root))
    found = _Found(hint=_first_charset(root) or _encoded_word_charset(headers))
    _walk(root, found)
    attachments = tuple(_attachment(part, index, found) for index, part in enumerate(found.attachments, 1))
    sender, sender_repair = _sender(headers)
    return InboundMail(
        message_id=message_id_of(headers.raw("Message-ID")),
        sender=sender,
        reply_to=headers.addresses("Reply-To"),
        to=headers.addresses("To"),
        cc=headers.addresses("Cc"),
        subject=headers.text("Subject"),
        date=date_of(headers.raw("Date")),
        body_text="\n\n".join(text for text in map(_plain, found.texts) if text),
        body_html=found.htmls[0] if found.htmls else None,
        attachments=attachments,
        thread=ThreadHeaders(message_id_of(headers.raw("In-Reply-To")),
                             message_ids_of(headers.raw("References")),
                             (headers.raw("Thread-Index") or "").strip() or None),
        charset_repaired=headers.repaired or found.repaired,
        size_bytes=len(data),
        raw_sha256=hashlib.sha256(data).hexdigest(),
        message=root.message,
        repairs=root.repairs + sender_repair,
    )


def parse_mail(raw: RawMail) -> InboundMail:
    """Parse a mail fetched from a mailbox."""
    return parse_bytes(raw.data, raw.ref)


def _lf_line_ends(data: bytes) -> bytes:
    """Mail from classic Mac OS mailers ends lines with CR alone; read those as line ends."""
    head = data[:65536]
    if b"\r" in head and b"\n" not in head:
        return data.replace(b"\r", b"\n")
    return data


# Where a sender's address may stand when From has none, in order (RFC 5322 section 3.6.2, RFC 5321 4.4).
_SENDER_FIELDS = ("Sender", "Reply-To", "Return-Path")
_USABLE_ADDRESS = re.compile(r"[^\s@<>]+@[^\s@<>]+")


def _sender(headers: Headers) -> tuple[Address | None, tuple[str, ...]]:
    """The first From mailbox with an address; when none has one, the first of Sender, Reply-To
    and Return-Path that has, named as the From names the sender when it has no name of its own."""
    written = headers.addresses("From", keep_bare=True)
    usable = [a for a in written if _USABLE_ADDRESS.fullmatch(a.address)]
    if usable:
        skipped = () if usable[0] is written[0] else ("sender: a From without address skipped",)
        return usable[0], skipped
    for name in _SENDER_FIELDS:
        found = next((a for a in headers.addresses(name) if _USABLE_ADDRESS.fullmatch(a.address)), None)
        if found is not None:
            display = found.name or next((a.name or a.address for a in written if a.name or a.address), "")
            return Address(display, found.address), (f"sender: from {name}, the From has no usable address",)
    return (written[0] if written else None), ()


def _encoded_word_charset(headers: Headers) -> str | None:
    """The charset the sender's mailer named in the Subject's or From's encoded-words (RFC 2047)."""
    for name in ("Subject", "From"):
        match = ENCODED_WORD.search(headers.raw(name) or "")
        if match:
            return match.group(1)
    return None


def _first_charset(part: Part) -> str | None:
    """The first charset the mail declares for its text, in tree order."""
    charset = part.message.get_content_charset()
    if charset or part.inner is not None:
        return charset
    return next((c for c in map(_first_charset, part.children) if c), None)


# --- bodies and attachments -----------------------------------------------------------------

def _walk(part: Part, found: _Found, parent_type: str = "") -> None:
    """Collect body text in order and every other leaf as an attachment."""
    budget.check()
    if part.children and part.message.get_content_type() == "multipart/alternative":
        _walk_alternative(part, found)
    elif part.children:
        for child in part.children:
            _walk(child, found, part.message.get_content_type())
    elif _is_body(part) and not _is_html_file(part, found, parent_type):
        text = _body_text(part, found)
        found.texts.append(text)
        if isinstance(text, _Html):
            found.htmls.append(text.markup)
    else:
        found.attachments.append(part)


def _walk_alternative(part: Part, found: _Found) -> None:
    """RFC 2046 section 5.1.4: one rendering is the body; plain text is preferred when it says it all."""
    versions = [_Found(hint=found.hint) for _ in part.children]
    for child, version in zip(part.children, versions, strict=True):
        _walk(child, version)
        found.attachments.extend(version.attachments)
        found.repaired |= version.repaired
    plain = next((v for v in versions if v.texts and not v.htmls), None)
    rich = next((v for v in reversed(versions) if v.htmls), None)
    if rich is not None:
        found.htmls.extend(rich.htmls)
    chosen = plain if plain is not None else rich
    if plain is not None and rich is not None and _says_less(plain, rich):
        chosen = rich
    if chosen is not None:
        found.texts.extend(chosen.texts)


def _says_less(plain: _Found, rich: _Found) -> bool:
    """A plain part that is empty or a stub ("view this mail in a browser") beside a full HTML one."""
    words = _word_count(plain.texts)
    # The markup's whitespace-separated pieces bound its words from above: most plain parts
    # say enough without the HTML being read at all.
    if words * 3 >= sum(len(t.markup.split()) if isinstance(t, _Html) else len(t.split()) for t in rich.texts):
        return False
    return words * 3 < _word_count(rich.texts)


def _word_count(texts: list[str | _Html]) -> int:
    return sum(len((t.text if isinstance(t, _Html) else t).split()) for t in texts)


def _is_html_file(part: Part, found: _Found, parent_type: str) -> bool:
    """An HTML part in a multipart/mixed after a plain-text body is a file the sender attached
    (a report, a saved page), not another rendering of the text (RFC 2046 section 5.1.3)."""
    return (parent_type == "multipart/mixed" and part.message.get_content_type() == "text/html"
            and any(isinstance(text, str) and text.strip() for text in found.texts)
            and not any(isinstance(text, _Html) for text in found.texts))


def _plain(text: str | _Html) -> str:
    return text.text if isinstance(text, _Html) else text


def _is_body(part: Part) -> bool:
    """A text part shown as the mail, or a multipart whose parts could not be found (read as text)."""
    message = part.message
    if message.get_content_maintype() == "multipart":
        return True
    return (message.get_content_type() in _TEXT_BODY and _disposition(message) != "attachment"
            and not any(message.get_param(param, header=header) for header, param in _NAME_PARAMETERS))


def _body_text(part: Part, found: _Found) -> str | _Html:
    """The part as plain text, or its HTML; uuencoded files in plain text become attachments."""
    message = part.message
    data = transfer_decode(message, part.body)
    is_html = message.get_content_subtype() == "html"
    declared = message.get_content_charset() or (charset_from_html(data) if is_html else None)
    decoded = decode_text(data, declared) if declared else decode_body_with_hint(data, found.hint)
    found.repaired |= decoded.repaired
    text = decoded.text.replace("\r\n", "\n").replace("\r", "\n")
    if is_html:
        return _Html(text)
    if str(message.get_param("format", "")).lower() == "flowed":
        text = _unflow(text, str(message.get_param("delsp", "")).lower() == "yes")
    return _extract_uuencoded(text, found).strip("\n")


def _extract_uuencoded(text: str, found: _Found) -> str:
    """Files pasted into a text body with uuencode (pre-MIME mailers, Outlook Express) become
    attachments, as Thunderbird and Outlook show them; a block that does not decode stays text."""
    def extract(match: re.Match[str]) -> str:
        data = uudecode(match.group(2))
        if data is None:
            return match.group()
        found.attachments.append(Part(_file_headers(match.group(1)), data))
        return ""
    return UU_BLOCK.sub(extract, text) if "begin " in text else text


def _file_headers(filename: str) -> Message:
    """MIME headers for a file that came without any: type from its name, sent as is."""
    message = Message()
    message["Content-Type"] = _MIME_TYPES.guess_type(filename)[0] or "application/octet-stream"
    message["Content-Transfer-Encoding"] = "binary"
    message.add_header("Content-Disposition", "attachment", filename=filename)
    return message


def _unflow(text: str, delete_space: bool) -> str:
    """Join RFC 3676 soft line breaks (a line ending in a space continues on the next line)."""
    lines: list[tuple[int, str]] = []
    joining = False
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        content = content.removeprefix(" ")  # RFC 3676 space-stuffing
        if joining and lines and lines[-1][0] == depth:
            lines[-1] = (depth, lines[-1][1] + content)
        else:
            lines.append((depth, content))
        joining = content.endswith(" ") and content != "-- "
        if joining and delete_space:
            lines[-1] = (depth, lines[-1][1][:-1])
    return "\n".join(">" * depth + (" " if depth else "") + content for depth, content in lines)


def _attachment(part: Part, index: int, found: _Found) -> Attachment:
    message = part.message
    data = transfer_decode(message, part.body)
    name, repaired = _filename(message, found.hint)
    found.repaired |= repaired
    content_id = message_id_of(str(message.get("Content-ID", "")))
    disposition = _disposition(message)
    return Attachment(
        filename=name or _generated_name(part, index),
        content_type=_content_type(message),
        data=data,
        inline=_shown_in_body(message, disposition, content_id),
        content_id=content_id,
    )


def _shown_in_body(message: Message, disposition: str, content_id: str | None) -> bool:
    """An image shown inline (RFC 2183) or any part the HTML refers to by Content-ID (RFC 2392);
    Apple Mail's inline PDFs and documents are files the agent opens, not pictures in the text."""
    if disposition == "attachment":
        return False
    return content_id is not None or (disposition == "inline" and message.get_content_maintype() == "image")


def _content_type(message: Message) -> str:
    declared = str(message.get("Content-Type", "")).split(";")[0].strip()
    if declared and "/" not in declared:
        return "application/octet-stream"  # RFC 2045 section 5.2 would say text/plain; it is a file
    return message.get_content_type()


def _disposition(message: Message) -> str:
    return str(message.get("Content-Disposition", "")).split(";")[0].strip().lower()


def _filename(message: Message, hint: str | None) -> tuple[str | None, bool]:
    """Decoded filename from Content-Disposition, else Content-Type name (RFC 2183, 2231, 2047),
    else the same parameters where some mailers put them (name= in the disposition, filename= in
    the type), else Content-Location or Content-ID."""
    fields = _with_8bit_decoded(message, hint)
    for header, param in _NAME_PARAMETERS:
        value = fields.get_param(param, None, header=header)
        if not value:
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded as Latin-1)
            decoded = decode_text(_param_bytes(value[2]), value[0])
        else:
            decoded = Decoded(email.utils.unquote(value), fields is not message)  # raw 8-bit: undeclared
        words = decode_words(decoded.text)
        name = _CONTROL.sub("", re.split(r"[\\/]", words.text)[-1]).strip()
        if name:
            return name, decoded.repaired or words.repaired
    return _location_name(message) or _content_id_name(message), False


def _with_8bit_decoded(message: Message, hint: str | None) -> Message:
    """The part's Content-Type and Content-Disposition with raw 8-bit names read as header text
    (in the mail's own charset when it fits), which the stdlib would turn into U+FFFD."""
    raw = [(name, value) for name, value in message.raw_items()
           if name.lower() in ("content-type", "content-disposition") and not value.isascii()]
    if not raw:
        return message
    fields = Message()
    for name in ("Content-Type", "Content-Disposition"):
        value = next((v for n, v in raw if n.lower() == name.lower()), None)
        if value is not None:
            try:
                fields[name] = decode_header_bytes(value.encode("ascii", "surrogateescape"), hint).text
            except UnicodeEncodeError:
                fields[name] = value  # already text
        elif message.get(name) is not None:
            fields[name] = str(message.get(name))
    return fields


def _content_id_name(message: Message) -> str | None:
    """The local part of a Content-ID that is a file name, as Outlook writes them ("image001.png@01D...")."""
    local = (message_id_of(str(message.get("Content-ID", ""))) or "").partition("@")[0]
    return local if _FILE_NAME.fullmatch(local) else None


def _location_name(message: Message) -> str | None:
    """The last path segment of Content-Location (RFC 2557), which Exchange gives nameless images."""
    location = str(message.get("Content-Location", "")).strip()
    unfolded = FOLDED_LINE_BREAK.sub("", location).replace("\n", "")
    path = urllib.parse.urlsplit(unfolded).path if location.isascii() else ""
    name = _CONTROL.sub("", urllib.parse.unquote(path.rstrip("/").rpartition("/")[2])).strip()
    return name or None


def _param_bytes(text: str) -> bytes:
    """The octets behind an RFC 2231 value, which the stdlib %-decodes as Latin-1."""
    try:
        return text.encode("latin-1", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def _generated_name(part: Part, index: int) -> str:
    """A name for a nameless part: an attached mail's subject, else its Content-Description
    (RFC 2045 section 8; MTAs label returned mail so), else attachment-N.ext."""
    ctype = part.message.get_content_type()
    extension = _EXTENSIONS.get(ctype) or _MIME_TYPES.guess_extension(ctype) or ".bin"
    subject = Headers(part.inner.message).text("Subject") if part.inner is not None else ""
    description = Headers(part.message).text("Content-Description")
    for label in (subject, description):
        label = _CONTROL.sub("", label.replace("/", "_").replace("\\", "_")).strip()[:200]
        if label:
            return label if label.lower().endswith(extension) else f"{label}{extension}"
    return "forwarded-message.eml" if part.inner is not None else f"attachment-{index}{extension}"


__all__ = ["MailRejected", "RejectReason", "parse_bytes", "parse_mail"]
