"""Raw bytes -> a tree of MIME parts: header bounds, multipart boundaries and transfer decoding."""
from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from plugin.parse.charsets import decode_base64

_MAX_DEPTH = 40  # deeper MIME nesting is an attack, not a mail; the rest stays one opaque part
_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[ \t]")  # as email.feedparser reads them
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_GUESSED_BOUNDARY = re.compile(rb"^--([\x21-\x7e][\x20-\x7e]{0,69}?)[ \t]*\r?$", re.M)
_QP_PADDED_BREAK = re.compile(rb"=[ \t]+(?=\n)")
# POSIX uuencode (IEEE Std 1003.1, uuencode): "begin MODE NAME", encoded lines, "end".
UU_BLOCK = re.compile(r"^begin [0-7]{3,4} ([^\r\n]+?)[ \t]*\n(.*?)^end[ \t]*$\n?", re.M | re.S)


@dataclass(frozen=True, slots=True)
class Part:
    """One MIME entity: its stdlib headers, its body still transfer-encoded, its children."""

    message: Message
    body: bytes
    children: tuple[Part, ...] = ()
    inner: Part | None = None  # the parsed mail inside a message/rfc822 part


def parse_entity(data: bytes, depth: int, default_type: str = "text/plain") -> Part:
    """Split one entity into headers and body and recurse into multipart and message parts."""
    header_end, body_start = header_bounds(data)
    message = BytesHeaderParser(policy=compat32).parsebytes(data[:header_end])
    message.set_default_type(default_type)
    body = data[body_start:]
    ctype = message.get_content_type()
    if depth < _MAX_DEPTH and message.get_content_maintype() == "multipart":
        part = _parse_multipart(message, body, depth)
        if part is not None:
            return part
    if depth < _MAX_DEPTH and ctype in ("message/rfc822", "message/global"):
        inner = parse_entity(transfer_decode(message, body), depth + 1)
        message.set_payload([inner.message])
        return Part(message, body, inner=inner)
    if ctype == "message/delivery-status":
        # RFC 3464: per-message and per-recipient field blocks, as the stdlib parser keeps them.
        blocks = [b for b in _BLANK_LINE.split(transfer_decode(message, body)) if b.strip()]
        message.set_payload([BytesHeaderParser(policy=compat32).parsebytes(b) for b in blocks])
        return Part(message, body)
    message.set_payload(body.decode("ascii", "surrogateescape"))
    return Part(message, body)


def header_bounds(data: bytes) -> tuple[int, int]:
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
