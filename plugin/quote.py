"""Reply text vs quoted history and signature."""
from __future__ import annotations

from enum import Enum

from plugin import quote_patterns as qp
from plugin.quote_html import visible_text_before_history


class _Kind(Enum):
    TEXT = "text"
    BLANK = "blank"
    QUOTE = "quote"
    ATTRIBUTION = "attribution"  # "On ... wrote:" directly above a quote


def reply_text(body_text: str, body_html: str | None = None) -> str:
    """What the person wrote in this mail, without quoted history and signature.

    The text part decides; the HTML part is read when there is no text, and its structure
    (Gmail or Outlook quote containers, signature blocks) may end the text part's reply earlier.
    """
    if body_html and not body_text.strip():
        return reply_from_text(visible_text_before_history(body_html))
    reply = reply_from_text(body_text)
    if body_html and reply:
        reply = _trim_to_html_reply(reply, reply_from_text(visible_text_before_history(body_html)))
    return reply


def reply_from_text(text: str) -> str:
    """The reply in a plain-text body: history, trailing quotes and signature removed."""
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = normalized.split("\n")
    lines = lines[:_history_start(lines)]
    lines = lines[:_signature_delimiter(lines)]
    kinds = _line_kinds(lines)
    end = _reply_end(lines, kinds)
    reply = _without_quoted_lines(lines[:end], kinds[:end]).strip()
    # Text with nothing removed comes back as given, line endings included.
    return text.strip() if reply == normalized.strip() else reply


def _history_start(lines: list[str]) -> int:
    """Index of the first line of unquoted history (Outlook header, "On ... wrote:" + text)."""
    for i, line in enumerate(lines):
        if qp.QUOTED_LINE.match(line) or not line.strip():
            continue
        if qp.FORWARD_MARKER.match(line):
            break
        if qp.ORIGINAL_MESSAGE.match(line):
            return i
        if qp.HEADER_LINE.match(line) and _is_header_block(lines, i):
            return _rule_above(lines, i)
        if qp.ATTRIBUTION_END.search(line) and not _quote_follows(lines, i):
            start = _attribution_start(lines, i)
            # Without a quote below, only a dated or addressed attribution is trusted.
            if start is not None and qp.HAS_DATE_OR_ADDRESS.search(" ".join(lines[start:i + 1])):
                return start
    return len(lines)


def _is_header_block(lines: list[str], i: int) -> bool:
    """True when lines[i] opens a From/Sent/To/Subject block (any order, localized keys)."""
    first = lines[i]
    if qp.FROM_LINE.match(first) and len(qp.INLINE_OTHER_KEY.findall(first)) >= 2:
        return True
    keys, has_from, others_in_row = 0, False, 0
    for line in lines[i:i + 10]:
        if not line.strip():
            break
        if qp.HEADER_LINE.match(line):
            keys += 1
            has_from = has_from or bool(qp.FROM_LINE.match(line))
            others_in_row = 0
        else:
            # A long To: list wraps onto following lines.
            others_in_row += 1
            if others_in_row > 2:
                break
    return keys >= 2 and has_from


def _rule_above(lines: list[str], i: int) -> int:
    """Start the history at the rule line Outlook draws above its header block, if any."""
    j = i
    while j > 0 and not lines[j - 1].strip():
        j -= 1
    if j > 0 and (qp.RULE_LINE.match(lines[j - 1]) or qp.ORIGINAL_MESSAGE.match(lines[j - 1])):
        return j - 1
    return i


def _attribution_start(lines: list[str], i: int) -> int | None:
    """First line of an attribution ending on line i, wrapped over up to three lines."""
    fallback = None
    for k in range(3):
        start = i - k
        if start < 0:
            break
        block = lines[start:i + 1]
        if any(not line.strip() or qp.QUOTED_LINE.match(line) for line in block):
            break
        joined = " ".join(line.strip() for line in block)
        if len(joined) > 400 or not _is_attribution(joined):
            continue
        if qp.ATTRIBUTION_START.match(block[0]):
            return start
        if k == 0:
            fallback = start
    return fallback


def _is_attribution(joined: str) -> bool:
    """Ends like "... wrote:" or, as Gmail writes it in German or Japanese, "... <addr>:"."""
    if qp.ATTRIBUTION_VERB.search(joined):
        return True
    return bool(qp.ATTRIBUTION_ADDRESS.search(joined)) and any(ch.isdigit() for ch in joined)


def _quote_follows(lines: list[str], i: int) -> bool:
    """True when the next non-blank line after i is a quoted line."""
    for line in lines[i + 1:]:
        if line.strip():
            return bool(qp.QUOTED_LINE.match(line))
    return False


def _signature_delimiter(lines: list[str]) -> int:
    """Index of the first unquoted "-- " line (RFC 3676 signature separator)."""
    for i, line in enumerate(lines):
        if qp.SIGNATURE_DELIMITER.match(line):
            return i
    return len(lines)


def _line_kinds(lines: list[str]) -> list[_Kind]:
    """Classify lines; an attribution counts only when a quote follows it."""
    kinds = [_Kind.BLANK if not line.strip() else _Kind.QUOTE if qp.QUOTED_LINE.match(line)
             else _Kind.TEXT for line in lines]
    for i, line in enumerate(lines):
        if kinds[i] is _Kind.TEXT and qp.ATTRIBUTION_END.search(line) and _quote_follows(lines, i):
            start = _attribution_start(lines, i)
            if start is not None:
                kinds[start:i + 1] = [_Kind.ATTRIBUTION] * (i + 1 - start)
    return kinds


def _reply_end(lines: list[str], kinds: list[_Kind]) -> int:
    """End of the reply: trailing quotes, attributions and signature paragraphs peeled off."""
    end = len(lines)
    while True:
        while end and kinds[end - 1] is not _Kind.TEXT:
            end -= 1
        if end == 0:
            return 0
        start = end
        while start and kinds[start - 1] is _Kind.TEXT:
            start -= 1
        signature = _signature_in(lines[start:end], at_top=start == 0)
        if signature is None:
            return end
        end = start + signature


def _signature_in(paragraph: list[str], at_top: bool) -> int | None:
    """Where a signature starts in the last paragraph of the reply, if it is one."""
    for j, line in enumerate(paragraph):
        if qp.MOBILE_SIGNATURE.match(qp.LINK.sub("", line).strip()):
            return j
    first = paragraph[0]
    if at_top or not qp.SIGNATURE_OPENER.match(first):
        return None
    # "-item" lines one after another are a list, not "-Name".
    is_list = first[:1] == "-" and first[1:2] != "-" and any(l[:1] == "-" for l in paragraph[1:])
    return None if is_list else 0


def _quote_blocks(kinds: list[_Kind]) -> int:
    """Number of quoted passages, each followed by the person's own text."""
    blocks, in_quote = 0, False
    for kind in kinds:
        if kind in (_Kind.QUOTE, _Kind.ATTRIBUTION):
            in_quote = True
        elif kind is _Kind.TEXT:
            blocks += in_quote
            in_quote = False
    return blocks


def _without_quoted_lines(lines: list[str], kinds: list[_Kind]) -> str:
    """Drop a quote the person answered below (bottom-posting); keep interleaved answers whole."""
    # Answers between two or more quoted passages mean nothing without them.
    if _quote_blocks(kinds) >= 2:
        return "\n".join(lines)
    out: list[str] = []
    dropped = False
    for line, kind in zip(lines, kinds):
        if kind in (_Kind.QUOTE, _Kind.ATTRIBUTION):
            dropped = True
            continue
        if dropped and kind is _Kind.BLANK and (not out or not out[-1].strip()):
            continue
        dropped = dropped and kind is _Kind.BLANK
        out.append(line)
    return "\n".join(out)


def _alnum(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def _trim_to_html_reply(reply: str, html_reply: str) -> str:
    """Cut the text reply where the HTML reply ends, when the HTML found history earlier."""
    target, whole = _alnum(html_reply), _alnum(reply)
    if not target or len(target) >= len(whole) or not whole.startswith(target):
        return reply
    seen = 0
    for pos, ch in enumerate(reply):
        seen += ch.isalnum()
        if seen == len(target):
            break
    line_end = reply.find("\n", pos)
    return reply if line_end < 0 else reply[:line_end].strip()
