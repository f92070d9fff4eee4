"""bytes -> InboundMail: headers, charsets, bodies and attachments, with no policy applied."""
from __future__ import annotations

import binascii
import email.utils
import hashlib
import mimetypes
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from plugin.charsets import Decoded, charset_from_html, decode_base64, decode_text, decode_words
from plugin.domain import Address, Attachment, InboundMail, MailRef, RawMail, ThreadHeaders
from plugin.errors import MailRejected, RejectReason
from plugin.html_text import html_to_text

_UNKNOWN_REF = MailRef(link_id=0, uid="")
_MAX_DEPTH = 40  # deeper MIME nesting is an attack, not a mail; the rest stays one opaque part
_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[ \t]")  # as email.feedparser reads them
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_ANGLE_ID = re.compile(r"<([^<>]*)>")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?]*\?=")
_ATOM = re.compile(r'[^\s"(),;:<>]+')
_EMAIL = re.compile(r"[^\s<>()\"',;:]+@[^\s<>()\"',;:]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_GUESSED_BOUNDARY = re.compile(rb"^--([\x21-\x7e][\x20-\x7e]{0,69}?)[ \t]*\r?$", re.M)
_QP_PADDED_BREAK = re.compile(rb"=[ \t]+(?=\n)")
# POSIX uuencode (IEEE Std 1003.1, uuencode): "begin MODE NAME", encoded lines, "end".
_UU_BLOCK = re.compile(r"^begin [0-7]{3,4} ([^\r\n]+?)[ \t]*\n(.*?)^end[ \t]*$\n?", re.M | re.S)
_HTML_TAG = re.compile(r"(?is)<(script|style|head)\b.*?</\1\s*>|<[^>]*>")
_TEXT_BODY = frozenset(("text/plain", "text/html"))
_EXTENSIONS = {"message/rfc822": ".eml", "message/global": ".eml", "message/delivery-status": ".txt",
               "message/global-delivery-status": ".txt", "message/disposition-notification": ".txt",
               "text/rfc822-headers": ".txt", "text/calendar": ".ics", "application/pgp-signature": ".asc",
               "application/pgp-encrypted": ".asc", "application/pkcs7-signature": ".p7s",
               "application/pkcs7-mime": ".p7m", "application/ms-tnef": ".dat"}
_MIME_TYPES = mimetypes.MimeTypes(filenames=())  # built-in table only: same names on every host


@dataclass(frozen=True, slots=True)
class _Part:
    """One MIME entity: its stdlib headers, its body still transfer-encoded, its children."""

    message: Message
    body: bytes
    children: tuple[_Part, ...] = ()
    inner: _Part | None = None  # the parsed mail inside a message/rfc822 part


@dataclass(frozen=True, slots=True)
class _Html:
    """An HTML body kept as markup until it is chosen: converting HTML is the slow step."""

    markup: str


@dataclass(slots=True)
class _Found:
    """What a walk over the MIME tree found: body pieces in order and the attachments."""

    texts: list[str | _Html] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    attachments: list[_Part] = field(default_factory=list)
    repaired: bool = False


def parse_bytes(data: bytes, ref: MailRef = _UNKNOWN_REF) -> InboundMail:
    """Parse one raw message; raise MailRejected(MALFORMED) when the bytes are not a mail."""
    raw = _lf_line_ends(data)
    root = _parse_entity(raw, 0)
    if not root.message.keys() or b"\x00" in raw[:_header_bounds(raw)[0]]:
        raise MailRejected(RejectReason.MALFORMED, "no header section")
    headers = _Headers(root.message, _first_charset(root))
    found = _Found()
    _walk(root, found)
    attachments = tuple(_attachment(part, index, found) for index, part in enumerate(found.attachments, 1))
    sender = headers.addresses("From", keep_bare=True)
    return InboundMail(
        message_id=_first_id(headers.raw("Message-ID")),
        sender=sender[0] if sender else None,
        reply_to=headers.addresses("Reply-To"),
        to=headers.addresses("To"),
        cc=headers.addresses("Cc"),
        subject=headers.text("Subject"),
        date=_date(headers.raw("Date")),
        body_text="\n\n".join(text for text in map(_plain, found.texts) if text),
        body_html=found.htmls[0] if found.htmls else None,
        attachments=attachments,
        thread=ThreadHeaders(_first_id(headers.raw("In-Reply-To")), _ids(headers.raw("References")),
                             (headers.raw("Thread-Index") or "").strip() or None),
        charset_repaired=headers.repaired or found.repaired,
        size_bytes=len(data),
        raw_sha256=hashlib.sha256(data).hexdigest(),
        message=root.message,
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


def _first_charset(part: _Part) -> str | None:
    """The first charset the mail declares for its text, in tree order."""
    charset = part.message.get_content_charset()
    if charset or part.inner is not None:
        return charset
    return next((c for c in map(_first_charset, part.children) if c), None)


# --- MIME structure -------------------------------------------------------------------------

def _parse_entity(data: bytes, depth: int, default_type: str = "text/plain") -> _Part:
    """Split one entity into headers and body and recurse into multipart and message parts."""
    header_end, body_start = _header_bounds(data)
    message = BytesHeaderParser(policy=compat32).parsebytes(data[:header_end])
    message.set_default_type(default_type)
    body = data[body_start:]
    ctype = message.get_content_type()
    if depth < _MAX_DEPTH and message.get_content_maintype() == "multipart":
        part = _parse_multipart(message, body, depth)
        if part is not None:
            return part
    if depth < _MAX_DEPTH and ctype in ("message/rfc822", "message/global"):
        inner = _parse_entity(_transfer_decode(message, body), depth + 1)
        message.set_payload([inner.message])
        return _Part(message, body, inner=inner)
    if ctype == "message/delivery-status":
        # RFC 3464: per-message and per-recipient field blocks, as the stdlib parser keeps them.
        blocks = [b for b in _BLANK_LINE.split(_transfer_decode(message, body)) if b.strip()]
        message.set_payload([BytesHeaderParser(policy=compat32).parsebytes(b) for b in blocks])
        return _Part(message, body)
    message.set_payload(body.decode("ascii", "surrogateescape"))
    return _Part(message, body)


def _header_bounds(data: bytes) -> tuple[int, int]:
    """Where the header section ends and the body starts (RFC 5322 section 2.1)."""
    if data[:1] in (b"\n", b"\r"):
        return 0, 2 if data.startswith(b"\r\n") else 1
    match = _BLANK_LINE.search(data)
    end = match.start() if match else len(data)
    position = 0
    while position < end:
        if not _HEADER_LINE.match(data, position) or (position and data.startswith(b"From ", position)):
            # A line that is no header field ends the header section without a blank line.
            return position, position
        line_end = data.find(b"\n", position, end)
        if line_end < 0:
            break
        position = line_end + 1
    return end, match.end() if match else len(data)


def _parse_multipart(message: Message, body: bytes, depth: int) -> _Part | None:
    for boundary in _boundaries(message, body):
        split = _split_parts(body, boundary)
        if split is not None:
            break
    else:
        return None
    preamble, segments, epilogue = split
    children, _ = _children(segments, 0, depth, _child_type(message), boundary)
    message.set_payload([child.message for child in children])
    message.preamble = preamble.decode("ascii", "surrogateescape")
    message.epilogue = epilogue.decode("ascii", "surrogateescape")
    return _Part(message, body, tuple(children))


def _boundaries(message: Message, body: bytes) -> Iterator[bytes]:
    """The declared boundary, then the first delimiter-like line: spam and broken mailers omit
    the boundary parameter or declare another one than they use."""
    declared = message.get_boundary()
    if declared:
        yield declared.encode("utf-8", "surrogateescape")
    guessed = _GUESSED_BOUNDARY.search(body[:65536])
    if guessed:
        yield guessed.group(1)


def _child_type(message: Message) -> str:
    """RFC 2046 section 5.1.5: parts of a digest are mails unless they say otherwise."""
    return "message/rfc822" if message.get_content_subtype() == "digest" else "text/plain"


def _children(segments: list[tuple[bytes, bool]], index: int, depth: int, child_type: str,
              boundary: bytes) -> tuple[list[_Part], int]:
    """Parse body parts up to a close delimiter; a nested multipart that reuses its parent's
    boundary (seen in spam) takes the parts up to the next close delimiter as its own."""
    children = []
    while index < len(segments):
        chunk, closed = segments[index]
        index += 1
        child = _parse_entity(chunk, depth + 1, child_type)
        if not closed and not child.children and _reuses_boundary(child.message, boundary, depth + 1):
            nested, index = _children(segments, index, depth + 1, _child_type(child.message), boundary)
            child.message.set_payload([grandchild.message for grandchild in nested])
            child = _Part(child.message, b"", tuple(nested))
        children.append(child)
        if closed:
            break
    return children, index


def _reuses_boundary(message: Message, boundary: bytes, depth: int) -> bool:
    own = message.get_boundary() if message.get_content_maintype() == "multipart" else None
    return depth < _MAX_DEPTH and own is not None and own.encode("utf-8", "surrogateescape") == boundary


def _split_parts(body: bytes, boundary: bytes) -> tuple[bytes, list[tuple[bytes, bool]], bytes] | None:
    """Cut a multipart body at its delimiter lines (RFC 2046 section 5.1.1): the preamble, each
    part with whether a close delimiter follows it, and the epilogue; None if there are none."""
    delimiters = _delimiter_lines(body, b"--" + boundary)
    opens = [index for index, (_, _, closing) in enumerate(delimiters) if not closing]
    if not opens:
        return None
    segments = []
    for index in opens:
        content = delimiters[index][1]
        following = delimiters[index + 1] if index + 1 < len(delimiters) else None
        end = following[0] if following else len(body)
        segments.append((_before_line_break(body, content, end), bool(following and following[2])))
    last = delimiters[-1]
    epilogue = body[last[1]:] if last[2] else b""
    return _before_line_break(body, 0, delimiters[opens[0]][0]), segments, epilogue


def _delimiter_lines(body: bytes, delimiter: bytes) -> list[tuple[int, int, bool]]:
    """(line start, next line start, is close delimiter) of every delimiter line in order."""
    found = []
    position = body.find(delimiter)
    while position >= 0:
        line_end = body.find(b"\n", position)
        line_end = len(body) if line_end < 0 else line_end
        tail = body[position + len(delimiter):line_end].rstrip(b" \t\r")
        if (position == 0 or body[position - 1] == 0x0A) and tail in (b"", b"--"):
            found.append((position, min(line_end + 1, len(body)), tail == b"--"))
        position = body.find(delimiter, line_end)
    return found


def _before_line_break(body: bytes, start: int, end: int) -> bytes:
    """The CRLF before a delimiter belongs to the delimiter (RFC 2046 section 5.1.1)."""
    if end > start and body[end - 1] == 0x0A:
        end -= 2 if end - 1 > start and body[end - 2] == 0x0D else 1
    return body[start:max(start, end)]


def _transfer_decode(message: Message, body: bytes) -> bytes:
    """Undo Content-Transfer-Encoding (RFC 2045 section 6); unknown encodings are left as they are."""
    encoding = str(message.get("Content-Transfer-Encoding", "")).strip().strip('"').lower()
    try:
        if encoding == "base64":
            return decode_base64(body)
    except (binascii.Error, ValueError):
        return body
    if encoding in ("8bit", "binary"):
        return body  # kept byte for byte, line ends included
    # 7bit, quoted-printable and uuencoded data is lines of text (RFC 2045 sections 2.7, 6.7)
    # whose CRLF ends belong to the transport; stored text uses LF.
    body = body.replace(b"\r\n", b"\n")
    if encoding in ("x-uuencode", "uuencode", "x-uue"):
        block = _UU_BLOCK.search(body.decode("latin-1"))
        decoded = _uudecode(block.group(2) if block else body.decode("latin-1"))
        return body if decoded is None else decoded
    if encoding == "quoted-printable":
        # RFC 2045 section 6.7 rule 3: whitespace after a soft line break "=" is transport padding.
        return binascii.a2b_qp(_QP_PADDED_BREAK.sub(b"=", body))
    return body


def _uudecode(lines: str) -> bytes | None:
    """Decode uuencoded lines, None when they are not; a line with trailing junk is cut to the
    length its count character gives, as the stdlib uu module did."""
    out = bytearray()
    for line in lines.encode("latin-1", "replace").split(b"\n"):
        line = line.rstrip(b"\r")
        if not line.strip(b" `"):
            continue
        try:
            out += binascii.a2b_uu(line)
        except binascii.Error:
            try:
                out += binascii.a2b_uu(line[:(((line[0] - 32) & 63) * 4 + 5) // 3])
            except binascii.Error:
                return None
    return bytes(out)


# --- bodies and attachments -----------------------------------------------------------------

def _walk(part: _Part, found: _Found) -> None:
    """Collect body text in order and every other leaf as an attachment."""
    if part.children and part.message.get_content_type() == "multipart/alternative":
        _walk_alternative(part, found)
    elif part.children:
        for child in part.children:
            _walk(child, found)
    elif _is_body(part):
        text = _body_text(part, found)
        found.texts.append(text)
        if isinstance(text, _Html):
            found.htmls.append(text.markup)
    else:
        found.attachments.append(part)


def _walk_alternative(part: _Part, found: _Found) -> None:
    """RFC 2046 section 5.1.4: one rendering is the body; plain text is preferred when it says it all."""
    versions = [_Found() for _ in part.children]
    for child, version in zip(part.children, versions):
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
    return _word_count(plain.texts) * 3 < _word_count(rich.texts)


def _word_count(texts: list[str | _Html]) -> int:
    """Words in body pieces; HTML is counted with its tags cut out, without converting it."""
    return sum(len((_HTML_TAG.sub(" ", t.markup) if isinstance(t, _Html) else t).split()) for t in texts)


def _plain(text: str | _Html) -> str:
    return html_to_text(text.markup) if isinstance(text, _Html) else text


def _is_body(part: _Part) -> bool:
    """A text part shown as the mail, or a multipart whose parts could not be found (read as text)."""
    message = part.message
    if message.get_content_maintype() == "multipart":
        return True
    return (message.get_content_type() in _TEXT_BODY and _disposition(message) != "attachment"
            and not message.get_param("filename", header="content-disposition")
            and not message.get_param("name"))


def _body_text(part: _Part, found: _Found) -> str | _Html:
    """The part as plain text, or its HTML; uuencoded files in plain text become attachments."""
    message = part.message
    data = _transfer_decode(message, part.body)
    is_html = message.get_content_subtype() == "html"
    declared = message.get_content_charset() or (charset_from_html(data) if is_html else None)
    decoded = decode_text(data, declared)
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
        data = _uudecode(match.group(2))
        if data is None:
            return match.group()
        found.attachments.append(_Part(_file_headers(match.group(1)), data))
        return ""
    return _UU_BLOCK.sub(extract, text) if "begin " in text else text


def _file_headers(filename: str) -> Message:
    """MIME headers for a file that came without any: type from its name, sent as is."""
    message = Message()
    message["Content-Type"] = _MIME_TYPES.guess_type(filename)[0] or "application/octet-stream"
    message["Content-Transfer-Encoding"] = "binary"
    message.add_header("Content-Disposition", "attachment", filename=filename)
    return message


def _unflow(text: str, delete_space: bool) -> str:
    """Join RFC 3676 soft line breaks (a line ending in a space continues on the next line)."""
    lines: list[str] = []
    joining = False
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        content = content[1:] if content.startswith(" ") else content  # RFC 3676 space-stuffing
        if joining and lines and lines[-1][0] == depth:
            lines[-1] = (depth, lines[-1][1] + content)
        else:
            lines.append((depth, content))
        joining = content.endswith(" ") and content != "-- "
        if joining and delete_space:
            lines[-1] = (depth, lines[-1][1][:-1])
    return "\n".join(">" * depth + (" " if depth else "") + content for depth, content in lines)


def _attachment(part: _Part, index: int, found: _Found) -> Attachment:
    message = part.message
    data = _transfer_decode(message, part.body)
    name, repaired = _filename(message)
    found.repaired |= repaired
    content_id = _first_id(str(message.get("Content-ID", "")))
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


def _filename(message: Message) -> tuple[str | None, bool]:
    """Decoded filename from Content-Disposition, else Content-Type name (RFC 2183, 2231, 2047)."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        value = message.get_param(param, None, header=header)
        if not value:
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded as Latin-1)
            decoded = decode_text(_param_bytes(value[2]), value[0])
        else:
            decoded = decode_text(email.utils.unquote(value).encode("utf-8", "surrogateescape"), None)
        words = decode_words(decoded.text)
        name = _CONTROL.sub("", re.split(r"[\\/]", words.text)[-1]).strip()
        if name:
            return name, decoded.repaired or words.repaired
    return _location_name(message), False


def _location_name(message: Message) -> str | None:
    """The last path segment of Content-Location (RFC 2557), which Exchange gives nameless images."""
    location = str(message.get("Content-Location", "")).strip()
    path = urllib.parse.urlsplit(_FOLD.sub("", location).replace("\n", "")).path if location.isascii() else ""
    name = _CONTROL.sub("", urllib.parse.unquote(path.rstrip("/").rpartition("/")[2])).strip()
    return name or None


def _param_bytes(text: str) -> bytes:
    """The octets behind an RFC 2231 value, which the stdlib %-decodes as Latin-1."""
    try:
        return text.encode("latin-1", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def _generated_name(part: _Part, index: int) -> str:
    """A name for a nameless part: an attached mail's subject, else its Content-Description
    (RFC 2045 section 8; MTAs label returned mail so), else attachment-N.ext."""
    ctype = part.message.get_content_type()
    extension = _EXTENSIONS.get(ctype) or _MIME_TYPES.guess_extension(ctype) or ".bin"
    subject = _Headers(part.inner.message).text("Subject") if part.inner is not None else ""
    description = _Headers(part.message).text("Content-Description")
    for label in (subject, description):
        label = _CONTROL.sub("", label.replace("/", "_").replace("\\", "_")).strip()[:200]
        if label:
            return label if label.lower().endswith(extension) else f"{label}{extension}"
    return "forwarded-message.eml" if part.inner is not None else f"attachment-{index}{extension}"


# --- headers --------------------------------------------------------------------------------

class _Headers:
    """Header fields as sent (raw 8-bit kept), decoded on request."""

    def __init__(self, message: Message, body_charset: str | None = None) -> None:
        self._fields: dict[str, list[str]] = {}
        for name, value in message.raw_items():
            self._fields.setdefault(name.strip().lower(), []).append(_FOLD.sub("", value))
        self._body_charset = body_charset
        self.repaired = False

    def raw(self, name: str) -> str | None:
        values = self._fields.get(name.lower())
        return values[0] if values else None

    def text(self, name: str) -> str:
        """An unstructured field (RFC 5322 section 3.2.5) as text: charset and encoded-words decoded."""
        value = self.raw(name)
        return "" if value is None else self._decode(value).strip()

    def addresses(self, name: str, keep_bare: bool = False) -> tuple[Address, ...]:
        """Every address in every such field; bare words without @ only when keep_bare."""
        found = []
        for value in self._fields.get(name.lower(), []):
            for display, address in _address_list(self._unescape_8bit(value)):
                if address and (keep_bare or "@" in address):
                    found.append(Address(_unquoted(self._decode(display)), address))
        return tuple(found)

    def _decode(self, value: str) -> str:
        decoded = decode_words(self._unescape_8bit(value))
        self.repaired |= decoded.repaired
        return decoded.text.replace("\r", "").replace("\n", "")

    def _unescape_8bit(self, value: str) -> str:
        """Raw 8-bit header bytes (RFC 6532 UTF-8, or Shift_JIS or Latin-1 from old mailers) as text.
        Bytes that are not UTF-8 are read in the charset the body declares, as Thunderbird does."""
        if value.isascii():
            return value
        try:
            raw = value.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:
            return value  # already text
        decoded = decode_text(raw, "utf-8")
        if decoded.repaired and self._body_charset:
            decoded = Decoded(decode_text(raw, self._body_charset).text, True)
        self.repaired |= decoded.repaired
        return decoded.text


def _unquoted(name: str) -> str:
    """A display name without the quotes Outlook puts around it inside quoted or encoded text."""
    name = name.strip()
    while len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
        name = name[1:-1].strip()
    return name


def _address_list(value: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address-list (RFC 5322 section 3.4), leniently."""
    pairs = []
    chunk: list[tuple[str, str]] = []
    for kind, text in _tokens(value) + [("special", ",")]:
        if kind == "special" and text == ":" and not any(k == "angle" for k, _ in chunk):
            chunk = []  # RFC 5322 group: its display name is not a mailbox
        elif kind == "special":
            if chunk:
                pairs.append(_mailbox(chunk))
            chunk = []
        else:
            chunk.append((kind, text))
    return pairs


def _tokens(value: str) -> list[tuple[str, str]]:
    """Quoted strings, comments, angle addresses, specials, words and spaces of a header value."""
    tokens = []
    position = 0
    while position < len(value):
        char = value[position]
        word = _ENCODED_WORD.match(value, position)
        if word:
            tokens.append(("atom", word.group()))
            position = word.end()
        elif char == '"':
            position = _quoted(value, position, tokens)
        elif char == "(":
            position = _comment(value, position, tokens)
        elif char == "<":
            end = value.find(">", position)
            end = len(value) if end < 0 else end
            tokens.append(("angle", value[position + 1:end]))
            position = end + 1
        elif char in ",;:":
            tokens.append(("special", char))
            position += 1
        elif char.isspace() or char in ">)":  # stray closing brackets separate words
            tokens.append(("space", " "))
            position += 1
        else:
            atom = _ATOM.match(value, position)
            tokens.append(("atom", atom.group()))
            position = atom.end()
    return tokens


def _quoted(value: str, position: int, tokens: list[tuple[str, str]]) -> int:
    text = []
    position += 1
    while position < len(value) and value[position] != '"':
        if value[position] == "\\" and position + 1 < len(value):
            position += 1
        text.append(value[position])
        position += 1
    tokens.append(("quoted", "".join(text)))
    return position + 1


def _comment(value: str, position: int, tokens: list[tuple[str, str]]) -> int:
    depth, start = 0, position
    while position < len(value):
        if value[position] == "\\":
            position += 1
        elif value[position] == "(":
            depth += 1
        elif value[position] == ")":
            depth -= 1
            if depth == 0:
                break
        position += 1
    tokens.append(("comment", value[start + 1:position].strip()))
    return position + 1


def _mailbox(chunk: list[tuple[str, str]]) -> tuple[str, str]:
    """One mailbox: name-addr, addr-spec with a comment, or the broken shapes real mail has."""
    comments = " ".join(text for kind, text in chunk if kind == "comment" and text)
    angle = next((text for kind, text in chunk if kind == "angle"), None)
    words = _words(chunk)
    if angle is not None:
        address = re.sub(r"\s+", "", angle.removeprefix("mailto:"))
        return " ".join(words) or comments, address.split(":")[-1] if address.startswith("@") else address
    with_at = [index for index, word in enumerate(words) if "@" in word]
    if with_at:
        address = words.pop(with_at[-1])
        if address.startswith('"') and address.endswith('"') and address.count('"') == 2:
            address = address[1:-1]  # the whole address was quoted, e.g. "a@example.com"
        return " ".join(words) or comments, address
    in_comment = _EMAIL.search(comments)
    if in_comment:
        return " ".join(words), in_comment.group()  # Name (address@example.com)
    return comments, " ".join(words)


def _words(chunk: list[tuple[str, str]]) -> list[str]:
    """Space-separated words; quoted strings keep their quotes when glued to other text."""
    words: list[str] = []
    current: list[tuple[str, str]] = []
    for kind, text in chunk + [("space", " ")]:
        if kind in ("atom", "quoted"):
            current.append((kind, text))
            continue
        if kind == "space" and current:
            if len(current) == 1:
                words.append(current[0][1])
            else:
                words.append("".join(f'"{t}"' if k == "quoted" else t for k, t in current))
            current = []
    return words


def _readable(value: str) -> str:
    """Raw 8-bit header bytes as UTF-8 text (RFC 6532), never as lone surrogates a database refuses."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _first_id(value: str | None) -> str | None:
    """A Message-ID without its angle brackets (RFC 5322 section 3.6.4)."""
    if not value:
        return None
    value = _readable(value)
    match = _ANGLE_ID.search(value)
    found = (match.group(1) if match else value).strip()
    return found.split()[0] if found else None


def _ids(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    value = _readable(value)
    ids = [i.strip() for i in _ANGLE_ID.findall(value) if i.strip()]
    return tuple(ids or value.split())


def _date(value: str | None) -> datetime | None:
    """The Date field as an aware datetime; a zone of -0000 (RFC 5322 section 3.3) is read as UTC."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


__all__ = ["parse_bytes", "parse_mail", "MailRejected", "RejectReason"]
