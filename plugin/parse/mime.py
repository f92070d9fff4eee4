"""Raw bytes -> a tree of MIME parts: header bounds, multipart boundaries and transfer decoding."""
from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from plugin.errors import MailRejected, RejectReason
from plugin.parse import budget
from plugin.parse.charsets import decode_base64

_MAX_DEPTH = 40  # deeper MIME nesting is an attack, not a mail; the rest stays one opaque part
# No mail client writes this many parts; each costs memory and a Jira attachment.
MAX_PARTS = 1_000
_PARTS_SEEN: ContextVar[list[int]] = ContextVar("mime_parts_seen")
_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[ \t]")  # as email.feedparser reads them
# Fields a header section of a real mail has; a line naming one confirms that a header block goes on.
_KNOWN_FIELD = re.compile(
    rb"(?:from|to|cc|bcc|subject|date|sender|reply-to|return-path|message-id|in-reply-to|references"
    rb"|mime-version|content-[a-z-]+|received|delivered-to|envelope-to|resent-[a-z-]+|x-[\x21-\x39\x3b-\x7e]+"
    rb"|thread-index|thread-topic|importance|priority|organization|user-agent|list-[a-z-]+|precedence"
    rb"|auto-submitted|dkim-signature|authentication-results|arc-[a-z-]+|received-spf)[ \t]*:", re.IGNORECASE)
# Fields that only a mail's own header section has (RFC 5322 section 3.6).
_MAIL_FIELD = re.compile(rb"(?:from|to|subject|date|sender|message-id|received|return-path)[ \t]*:", re.IGNORECASE)
_MAX_JUNK_LINES = 8  # forwarding banners and saved-mail prefixes above the header block
_LF = b"\n"
_MAX_LOST_FOLDS = 3  # unfolded lines in a row that a later field still proves to be header text
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_GUESSED_BOUNDARY = re.compile(rb"^--([\x21-\x7e][\x20-\x7e]{0,69}?)[ \t]*\r?$", re.MULTILINE)
_QP_PADDED_BREAK = re.compile(rb"=[ \t]+(?=\n)")
# POSIX uuencode (IEEE Std 1003.1, uuencode): "begin MODE NAME", encoded lines, "end".
UU_BLOCK = re.compile(r"^begin [0-7]{3,4} ([^\r\n]+?)[ \t]*\n(.*?)^end[ \t]*$\n?", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class Part:
    """One MIME entity: its stdlib headers, its body still transfer-encoded, its children."""

    message: Message
    body: bytes
    children: tuple[Part, ...] = ()
    inner: Part | None = None  # the parsed mail inside a message/rfc822 part
    repairs: tuple[str, ...] = ()  # how a damaged header section was read


@dataclass(frozen=True, slots=True)
class HeaderSection:
    """The header section as it will be parsed, where the body starts, and what was repaired."""

    data: bytes
    body_start: int
    repairs: tuple[str, ...] = ()


def parse_mail_entity(data: bytes) -> Part:
    """The top-level entity of a mail, its header section read tolerantly (see read_header_section);
    raises MailRejected(MALFORMED) for a mail of more than MAX_PARTS parts."""
    token = _PARTS_SEEN.set([0])
    try:
        return parse_entity(data, 0, section=read_header_section(data))
    finally:
        _PARTS_SEEN.reset(token)


def parse_entity(data: bytes, depth: int, default_type: str = "text/plain",
                 section: HeaderSection | None = None) -> Part:
    """Split one entity into headers and body and recurse into multipart and message parts."""
    if section is None:
        header_end, body_start = header_bounds(data)
        section = HeaderSection(data[:header_end], body_start)
    body_start = section.body_start
    message = BytesHeaderParser(policy=compat32).parsebytes(section.data)
    message.set_default_type(default_type)
    body = data[body_start:]
    ctype = message.get_content_type()
    if depth < _MAX_DEPTH and message.get_content_maintype() == "multipart":
        part = _parse_multipart(message, body, depth)
        if part is not None:
            return Part(part.message, part.body, part.children, repairs=section.repairs)
    if depth < _MAX_DEPTH and ctype in ("message/rfc822", "message/global"):
        inner = parse_entity(transfer_decode(message, body), depth + 1)
        message.set_payload([inner.message])
        return Part(message, body, inner=inner, repairs=section.repairs)
    if ctype == "message/delivery-status":
        # RFC 3464: per-message and per-recipient field blocks, as the stdlib parser keeps them.
        blocks = [b for b in _BLANK_LINE.split(transfer_decode(message, body)) if b.strip()]
        message.set_payload([BytesHeaderParser(policy=compat32).parsebytes(b) for b in blocks])
        return Part(message, body, repairs=section.repairs)
    message.set_payload(body.decode("ascii", "surrogateescape"))
    return Part(message, body, repairs=section.repairs)


def header_bounds(data: bytes, start: int = 0) -> tuple[int, int]:
    """Where the header section from start ends and the body starts (RFC 5322 section 2.1)."""
    return _bounds(data, start, _BLANK_LINE.search(data, start))


def _bounds(data: bytes, start: int, match: re.Match[bytes] | None) -> tuple[int, int]:
    """header_bounds with the first blank line from start (None: there is none) found already."""
    if data[start:start + 1] in (b"\n", b"\r"):
        return start, start + (2 if data.startswith(b"\r\n", start) else 1)
    end = match.start() if match else len(data)
    position = start
    while position < end:
        if not _HEADER_LINE.match(data, position) or (position > start and data.startswith(b"From ", position)):
            # A line that is no header field ends the header section without a blank line.
            return position, position
        line_end = data.find(b"\n", position, end)
        if line_end < 0:
            break
        position = line_end + 1
    return end, match.end() if match else len(data)


def read_header_section(data: bytes) -> HeaderSection:
    """A mail's header section as a tolerant reader finds it: after a few lines of junk (a
    forwarding banner, a blank line) when no header field starts the mail, and with lines that
    lost the leading whitespace of their fold (RFC 5322 section 2.2.3) read as continuations."""
    repairs = []
    start = 0
    if header_bounds(data)[0] == 0:
        start = _header_block_after_junk(data)
        if start:
            repairs.append(f"headers: {data.count(_LF, 0, start)} line(s) before the header section skipped")
    header_end, body_start, folds = _header_end_with_lost_folds(data, start)
    section = data[start:header_end]
    if folds:
        section = b"".join(b" " + data[a:b] if (a, b) in folds else data[a:b]
                           for a, b in _line_spans(data, start, header_end))
        repairs.append(f"headers: {len(folds)} folded line(s) without leading whitespace joined")
    return HeaderSection(section, body_start, tuple(repairs))


def _line_spans(data: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
    position = start
    while position < end:
        line_end = data.find(b"\n", position, end)
        line_end = end if line_end < 0 else line_end + 1
        yield position, line_end
        position = line_end


def _header_block_after_junk(data: bytes) -> int:
    """Where a header block starts below a few junk lines, or 0 when there is none: the block
    must open with two header fields, one of them a field only a mail's own header has."""
    spans = list(_first_lines(data, _MAX_JUNK_LINES + 2))
    for index, (start, _) in enumerate(spans[1:_MAX_JUNK_LINES + 1], 1):
        following = spans[index + 1] if index + 1 < len(spans) else None
        if (following and _KNOWN_FIELD.match(data, start) and _KNOWN_FIELD.match(data, following[0])
                and (_MAIL_FIELD.match(data, start) or _MAIL_FIELD.match(data, following[0]))
                and not _KNOWN_FIELD.match(data, spans[index - 1][0])):
            return start
    return 0


def _first_lines(data: bytes, count: int) -> Iterator[tuple[int, int]]:
    position = 0
    for _ in range(count):
        if position >= len(data):
            return
        line_end = data.find(b"\n", position)
        line_end = len(data) if line_end < 0 else line_end + 1
        yield position, line_end
        position = line_end


def _header_end_with_lost_folds(data: bytes, start: int) -> tuple[int, int, set[tuple[int, int]]]:
    """header_bounds from start, going on past lines that are no field when a known field follows
    within a few lines before the blank line: those lines are folds that lost their whitespace."""
    blank = _BLANK_LINE.search(data, start)
    header_end, body_start = _bounds(data, start, blank)
    folds: set[tuple[int, int]] = set()
    limit = blank.start() if blank else len(data)
    while header_end < limit and header_end > start and not data.startswith(b"From ", header_end):
        pending: list[tuple[int, int]] = []
        position = header_end
        while position < limit and len(pending) < _MAX_LOST_FOLDS and not _HEADER_LINE.match(data, position):
            line_end = data.find(b"\n", position, limit)
            line_end = limit if line_end < 0 else line_end + 1
            pending.append((position, line_end))
            position = line_end
        if position >= limit or not pending or not _KNOWN_FIELD.match(data, position):
            break
        folds.update(pending)
        header_end, body_start = _bounds(data, position, blank)
    return header_end, body_start, folds


def _parse_multipart(message: Message, body: bytes, depth: int) -> Part | None:
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
    return Part(message, body, tuple(children))


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
              boundary: bytes) -> tuple[list[Part], int]:
    """Parse body parts up to a close delimiter; a nested multipart that reuses its parent's
    boundary (seen in spam) takes the parts up to the next close delimiter as its own."""
    children = []
    while index < len(segments):
        _count_part()
        chunk, closed = segments[index]
        index += 1
        child = parse_entity(chunk, depth + 1, child_type)
        if not closed and not child.children and _reuses_boundary(child.message, boundary, depth + 1):
            nested, index = _children(segments, index, depth + 1, _child_type(child.message), boundary)
            child.message.set_payload([grandchild.message for grandchild in nested])
            child = Part(child.message, b"", tuple(nested))
        children.append(child)
        if closed:
            break
    return children, index


def _count_part() -> None:
    budget.check()
    seen = _PARTS_SEEN.get(None)
    if seen is None:
        return
    seen[0] += 1
    if seen[0] > MAX_PARTS:
        raise MailRejected(RejectReason.MALFORMED, f"this mail has more than {MAX_PARTS:,} MIME parts; "
                           "no mail program writes so many, so it is not read")


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


def transfer_decode(message: Message, body: bytes) -> bytes:
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
        block = UU_BLOCK.search(body.decode("latin-1"))
        decoded = uudecode(block.group(2) if block else body.decode("latin-1"))
        return body if decoded is None else decoded
    if encoding == "quoted-printable":
        # RFC 2045 section 6.7 rule 3: whitespace after a soft line break "=" is transport padding.
        return binascii.a2b_qp(_QP_PADDED_BREAK.sub(b"=", body))
    return body


def uudecode(lines: str) -> bytes | None:
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
