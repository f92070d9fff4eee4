"""Reply text vs quoted history and signature."""
from __future__ import annotations

from enum import Enum

from plugin.parse import budget
from plugin.reply import patterns as qp
from plugin.reply.html_quotes import visible_text_before_history

_MAX_ATTRIBUTION_CHARS = 400
# Fewer quoted lines than this, with no attribution, are the person's own text (a code line
# starting with ">", a single quoted phrase); talon draws the same line.
_MIN_QUOTE_LINES = 3
# A quoted line at least this long that stops mid-sentence was wrapped by the client.
_REWRAP_WIDTH = 50


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
    if not body_html:
        return reply_from_text(body_text)
    html_reply = reply_from_text(visible_text_before_history(body_html, _has_reply))
    reply = reply_from_text(body_text)
    # A text part made from the HTML has lost the quote markers of a bottom-posted reply.
    if not reply:
        return html_reply
    return _trim_to_html_reply(reply, html_reply)


def _has_reply(text: str) -> bool:
    return bool(reply_from_text(text))


def reply_from_text(text: str) -> str:
    """The reply in a plain-text body: history, trailing quotes and signature removed."""
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = _split_inline_attributions(normalized.split("\n"))
    lines = lines[:_history_start([_probe(line) for line in lines])]
    lines = lines[:_signature_delimiter(lines)]
    lines = lines[:_device_signature(lines)]
    kinds = _rewrapped_quotes(lines, _line_kinds([_probe(line) for line in lines]))
    end = _reply_end(lines, kinds)
    reply = _without_quoted_lines(lines[:end], kinds[:end]).strip()
    # Text with nothing removed comes back as given, line endings included.
    return text.strip() if reply == normalized.strip() else reply


def _probe(line: str) -> str:
    """The line as the attribution rules read it: Zoho's "---- On ... wrote ----" frame taken off
    and a colon added to an attribution that lost it ("On ... Bob wrote")."""
    budget.check()
    if len(line) > _MAX_ATTRIBUTION_CHARS:
        return line  # no attribution is this long; the searches below would cost a pass per verb
    framed = qp.FRAMED_LINE.match(line)
    if framed and qp.ATTRIBUTION_START.match(framed["inner"]):
        return framed["inner"].rstrip().rstrip(":：") + ":"
    if qp.BARE_ATTRIBUTION_VERB.search(line) and qp.ATTRIBUTION_START.match(line) and qp.HAS_DATE.search(line):
        return line.rstrip() + ":"
    return line


def _split_inline_attributions(lines: list[str]) -> list[str]:
    """Put an attribution appended to the reply's own line ("Thanks On ... wrote:") on its own line."""
    return [part for line in lines for part in _split_attribution(line)]


def _split_attribution(line: str) -> list[str]:
    """The line, or its reply and its attribution when some client joined the two."""
    # A line that already opens like an attribution is one, names such as "Le Gall" inside it.
    if (len(line) > _MAX_ATTRIBUTION_CHARS or not line.rstrip().endswith((":", "："))
            or qp.ATTRIBUTION_START.match(line) or not qp.ATTRIBUTION_VERB.search(line)):
        return [line]
    match = qp.INLINE_ATTRIBUTION.match(line)
    if match is None or not qp.HAS_DATE.search(match["attribution"]):
        return [line]
    return [match["reply"], match["attribution"]]


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
            if start is not None and _is_unquoted_history_attribution(lines[start:i + 1]):
                return start
    return len(lines)


def _is_unquoted_history_attribution(block: list[str]) -> bool:
    """Without a quote below, only an attribution shaped like a client's is trusted.

    "On <date> ... wrote:" (Gmail, Apple Mail, Yahoo) or "Name <addr> wrote:" qualifies;
    a sentence such as "In ticket SD-42 you wrote:" does not.
    """
    joined = " ".join(line.strip() for line in block)
    if qp.ATTRIBUTION_START.match(block[0]) or qp.QUOTING_LINE.match(joined):
        return bool(qp.HAS_DATE.search(joined) or qp.HAS_ADDRESS.search(joined))
    # Date-first forms without a verb (Gmail in Russian, mail.ru's "... от Name <addr>:") carry a time.
    if qp.HAS_TIME.search(joined) and qp.ATTRIBUTION_ADDRESS.search(joined):
        return True
    return bool(qp.HAS_ADDRESS.search(joined)) and bool(qp.ATTRIBUTION_VERB.search(joined))


def _is_header_block(lines: list[str], i: int) -> bool:
    """True when lines[i] opens a From/Sent/To/Subject block (any order, localized keys)."""
    first = lines[i]
    if qp.FROM_LINE.match(first) and len(qp.INLINE_OTHER_KEY.findall(first)) >= 2:
        return True
    keys, has_from, has_date, others_in_row = 0, False, False, 0
    for line in lines[i:i + 10]:
        if not line.strip():
            break
        if qp.HEADER_LINE.match(line):
            keys += 1
            has_from = has_from or bool(qp.FROM_LINE.match(line))
            has_date = has_date or bool(qp.DATE_LINE.match(line))
            others_in_row = 0
        else:
            # A long To: list wraps onto following lines.
            others_in_row += 1
            if others_in_row > 2:
                break
    # "From: Tokyo office / To: Osaka office" in a customer's note is not a client's header block.
    return has_from and ((has_date and keys >= 2) or keys >= 3)


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
        if len(joined) > _MAX_ATTRIBUTION_CHARS or not _is_attribution(joined):
            continue
        if qp.ATTRIBUTION_START.match(block[0]):
            return start
        # Date-first attributions wrapped by the client: "ma 5.1.2026 klo 9.00 Matti (<m@x.fi>)" + "kirjoitti:".
        if k == 0 or (qp.HAS_TIME.search(block[0]) and qp.HAS_ADDRESS.search(joined)):
            fallback = start
    return fallback


def _is_attribution(joined: str) -> bool:
    """Ends like "... wrote:" or, as Gmail writes it in German or Japanese, "... <addr>:"."""
    if qp.ATTRIBUTION_VERB.search(joined) or qp.QUOTING_LINE.match(joined):
        return True
    has_date = bool(qp.HAS_DATE.search(joined))
    return has_date and bool(qp.ATTRIBUTION_ADDRESS.search(joined) or qp.ATTRIBUTION_VERB_INSIDE.search(joined))


def _attribution_left_behind(lines: list[str], i: int) -> bool:
    """The first line of an attribution whose rest was wrapped into the quote below it:
    "On Mon, Jan 5, 2026 at 9:00 AM Bob <" directly above "> bob@example.com> wrote:"."""
    line = lines[i].strip()
    if i + 1 >= len(lines) or not qp.QUOTED_LINE.match(lines[i + 1]) or len(line) > _MAX_ATTRIBUTION_CHARS:
        return False
    return bool(qp.ATTRIBUTION_START.match(line) and qp.HAS_TIME.search(line)
                and (qp.HAS_ADDRESS.search(line) or line.endswith(("<", ","))))


def _quote_follows(lines: list[str], i: int) -> bool:
    """True when the next non-blank line after i is a quoted line."""
    for j in range(i + 1, len(lines)):
        if lines[j].strip():
            return bool(qp.QUOTED_LINE.match(lines[j]))
    return False


def _signature_delimiter(lines: list[str]) -> int:
    """Index of the first unquoted "-- " line (RFC 3676 signature separator)."""
    for i, line in enumerate(lines):
        if qp.SIGNATURE_DELIMITER.match(line):
            return i
    return len(lines)


def _device_signature(lines: list[str]) -> int:
    """Index of the first unquoted device signature ("Sent from my iPhone") below some reply:
    what a phone appends ends what the person typed, whatever the app added after it."""
    seen_text = False
    for i, line in enumerate(lines):
        if qp.QUOTED_LINE.match(line) or not line.strip():
            continue
        if seen_text and qp.MOBILE_SIGNATURE.match(qp.LINK.sub("", line).strip()):
            while i and (qp.SEPARATOR_LINE.match(lines[i - 1]) or not lines[i - 1].strip()):
                i -= 1
            return i
        seen_text = True
    return len(lines)


def _rewrapped_quotes(lines: list[str], kinds: list[_Kind]) -> list[_Kind]:
    """Lines that lost their ">" when a client re-wrapped a long quoted line: text directly below
    a quoted line cut mid-sentence, going on in lower case."""
    kinds = list(kinds)
    for i in range(1, len(lines)):
        if kinds[i] is not _Kind.TEXT or kinds[i - 1] is not _Kind.QUOTE:
            continue
        above = lines[i - 1].lstrip(">").strip()
        below = lines[i].strip()
        if (len(above) >= _REWRAP_WIDTH and not above.endswith((".", "?", "!", ":"))
                and below[:1].islower() and (i + 1 == len(lines) or kinds[i + 1] is not _Kind.TEXT)):
            kinds[i] = _Kind.QUOTE
    return kinds


def _line_kinds(lines: list[str]) -> list[_Kind]:
    """Classify lines; an attribution counts only when a quote follows it."""
    kinds = [_Kind.BLANK if not line.strip() else _Kind.QUOTE if qp.QUOTED_LINE.match(line)
             else _Kind.TEXT for line in lines]
    for i, line in enumerate(lines):
        if kinds[i] is not _Kind.TEXT:
            continue
        budget.check()
        # A lone "From: bob@example.com" above the quote is an attribution too (Hotmail, AOL).
        if (qp.FROM_LINE.match(line) and _quote_follows(lines, i)) or _attribution_left_behind(lines, i):
            kinds[i] = _Kind.ATTRIBUTION
        elif qp.ATTRIBUTION_END.search(line) and _quote_follows(lines, i):
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
            while j and qp.SEPARATOR_LINE.match(paragraph[j - 1]):
                j -= 1
            return j
    first = paragraph[0]
    if at_top or not qp.SIGNATURE_OPENER.match(first):
        return None
    # "-item" lines one after another are a list, not "-Name".
    is_list = first[:1] == "-" and first[1:2] != "-" and any(line[:1] == "-" for line in paragraph[1:])
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
    drop = _history_quote_lines(kinds)
    out: list[str] = []
    dropped = False
    for i, (line, kind) in enumerate(zip(lines, kinds, strict=True)):
        if i in drop:
            dropped = True
            continue
        if dropped and kind is _Kind.BLANK and (not out or not out[-1].strip()):
            continue
        dropped = dropped and kind is _Kind.BLANK
        out.append(line)
    return "\n".join(out)


def _history_quote_lines(kinds: list[_Kind]) -> set[int]:
    """Indexes of quoted passages that are history: attributed, or at least a few lines long."""
    drop: set[int] = set()
    run: list[int] = []
    for i, kind in enumerate([*kinds, _Kind.TEXT]):
        if kind is not _Kind.TEXT:
            run.append(i)
            continue
        marked = [j for j in run if kinds[j] in (_Kind.QUOTE, _Kind.ATTRIBUTION)]
        has_attribution = any(kinds[j] is _Kind.ATTRIBUTION for j in marked)
        if has_attribution or len(marked) >= _MIN_QUOTE_LINES:
            drop.update(marked)
        run = []
    return drop


def _alnum(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def _trim_to_html_reply(reply: str, html_reply: str) -> str:
    """Cut the text reply where the HTML reply ends, when the HTML found history earlier."""
    target, whole = _alnum(html_reply), _alnum(reply)
    if not target or len(target) >= len(whole) or not whole.startswith(target):
        return reply
    seen = 0
    for pos, ch in enumerate(reply):  # noqa: B007  (pos is read after the loop)
        seen += ch.isalnum()
        if seen == len(target):
            break
    line_end = reply.find("\n", pos)
    return reply if line_end < 0 else reply[:line_end].strip()
