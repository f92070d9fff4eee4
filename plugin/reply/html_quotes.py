"""HTML body -> plain text up to where the client's quoted-history container starts."""
from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum
from html.parser import HTMLParser

from plugin.reply import patterns as qp

# Containers that clients put around the quoted original; everything from there on is history.
# Outlook on the web prefixes ids and classes of the original message with "x_".
_HISTORY_IDS = frozenset({
    "divRplyFwdMsg", "appendonsend", "OLK_SRC_BODY_SECTION", "zwchr", "stopSpelling",
    "mail-editor-reference-message-container",
})
_HISTORY_CLASSES = frozenset({
    "gmail_quote", "gmail_quote_container", "moz-cite-prefix",
    "OutlookMessageHeader", "protonmail_quote",
})
_SIGNATURE_IDS = frozenset({"Signature", "signature", "AppleMailSignature", "ms-outlook-mobile-signature"})
_SIGNATURE_CLASSES = frozenset({"gmail_signature", "moz-signature", "protonmail_signature_block"})
# Yahoo Mail prefixes its ids and classes per message: "ydp8a3eyahoo_quoted_3010".
_YAHOO_QUOTED = "yahoo_quoted"
_SKIP_TAGS = frozenset({"script", "style", "title", "template", "noscript", "xml"})
_VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                        "meta", "source", "track", "wbr"})
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt", "fieldset",
    "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
    "nav", "ol", "p", "pre", "section", "table", "tbody", "thead", "tfoot", "tr", "ul",
})
_SPACES = re.compile(r"\s+")
# Gmail nests two quote containers (div and blockquote) around one bottom-posted quote.
_MAX_BOTTOM_POST_CONTAINERS = 3


class _Candidate(Enum):
    """A place that starts history if the text after it confirms it."""
    QUOTE_CONTAINER = "quote-container"  # unless it holds a forwarded message
    BORDER_TOP = "border-top"            # if a From:/Sent: block follows


class _TextSink:
    """Collects visible text line by line; lines inside <blockquote> get "> " prefixes."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.parts: list[str] = []
        self.quote_depth = 0
        self.pre_depth = 0
        self.outlook_paragraph = False

    def text(self, value: str) -> None:
        if not self.pre_depth:
            self.parts.append(_SPACES.sub(" ", value))
            return
        *full_lines, rest = value.split("\n")
        for line in full_lines:
            self.parts.append(line)
            self.newline()
        self.parts.append(rest)

    def newline(self) -> None:
        line = "".join(self.parts).strip()
        self.parts = []
        prefix = ">" * self.quote_depth
        self.lines.append(f"{prefix} {line}" if prefix and line else prefix or line)

    def soft_newline(self) -> None:
        """End the current line unless it is empty."""
        if "".join(self.parts).strip():
            self.newline()
        self.parts = []

    def blank_line(self) -> None:
        self.soft_newline()
        if self.lines and self.lines[-1].strip(">"):
            self.newline()

    def open(self, tag: str, classes: set[str]) -> None:
        if tag == "br":
            self.newline()
        elif tag in _BLOCK_TAGS:
            self.soft_newline()
        if tag == "blockquote":
            self.quote_depth += 1
        elif tag == "pre":
            self.pre_depth += 1
        elif tag == "p":
            self.outlook_paragraph = "MsoNormal" in classes

    def close(self, tag: str) -> None:
        if tag in ("td", "th"):
            self.parts.append(" ")
        if tag not in _BLOCK_TAGS:
            return
        # Outlook writes one <p class=MsoNormal> per line; other mail has real paragraphs.
        if tag == "p" and not self.outlook_paragraph:
            self.blank_line()
        else:
            self.soft_newline()
        if tag == "blockquote":
            self.quote_depth = max(0, self.quote_depth - 1)
        elif tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)


class _ReplyParser(HTMLParser):
    """Streams the HTML into a _TextSink, skipping signatures and stopping at history."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sink = _TextSink()
        self.candidates: list[tuple[int, _Candidate]] = []
        self.skipping: str | None = None
        self.skip_depth = 0
        self.stopped = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.stopped:
            return
        if self.skipping:
            self.skip_depth += tag == self.skipping
            return
        ids, classes, style = _attributes(attrs)
        if tag in _SKIP_TAGS or ids & _SIGNATURE_IDS or classes & _SIGNATURE_CLASSES:
            if tag not in _VOID_TAGS:
                self.skipping, self.skip_depth = tag, 1
            return
        # Zimbra draws <hr data-marker="__DIVIDER__"> above the original.
        if ids & _HISTORY_IDS or _attribute(attrs, "data-marker") == "__DIVIDER__":
            self.stopped = True
            return
        candidate = _candidate(classes, style)
        if candidate:
            self.sink.soft_newline()
            self.candidates.append((len(self.sink.lines), candidate))
        self.sink.open(tag, classes)

    def handle_endtag(self, tag: str) -> None:
        if self.stopped:
            return
        if self.skipping:
            self.skip_depth -= tag == self.skipping
            if not self.skip_depth:
                self.skipping = None
            return
        self.sink.close(tag)

    def handle_data(self, data: str) -> None:
        if not self.stopped and not self.skipping:
            self.sink.text(data)

    def reply_lines(self, has_reply: Callable[[str], bool]) -> list[str]:
        """Lines of visible text before the first confirmed history candidate."""
        self.sink.soft_newline()
        lines = self.sink.lines
        for number, (index, candidate) in enumerate(self.candidates):
            # Nothing but an attribution above it: a bottom-posted reply, left to the plain-text rules.
            if number < _MAX_BOTTOM_POST_CONTAINERS and not has_reply("\n".join(lines[:index])):
                continue
            head = "\n".join(lines[index:index + 12]).strip()[:300]
            if candidate is _Candidate.QUOTE_CONTAINER and not qp.FORWARD_MARKER.match(head.split("\n")[0]):
                return lines[:index]
            if candidate is _Candidate.BORDER_TOP and qp.HEADER_LINE.match(head):
                return lines[:index]
        return lines


def _attributes(attrs: list[tuple[str, str | None]]) -> tuple[set[str], set[str], str]:
    values = {name: value or "" for name, value in attrs}
    ids = {values.get("id", "").removeprefix("x_")}
    classes = {c.removeprefix("x_") for c in values.get("class", "").split()}
    return ids, classes, values.get("style", "").replace(" ", "").lower()


def _attribute(attrs: list[tuple[str, str | None]], name: str) -> str:
    return next((value or "" for key, value in attrs if key == name), "")


def _candidate(classes: set[str], style: str) -> _Candidate | None:
    if classes & _HISTORY_CLASSES or any(c.endswith(_YAHOO_QUOTED) for c in classes):
        return _Candidate.QUOTE_CONTAINER
    # Outlook desktop draws a border-top rule above the From:/Sent: block of the original.
    if "border-top" in style and "solid" in style:
        return _Candidate.BORDER_TOP
    return None


def visible_text_before_history(html: str, has_reply: Callable[[str], bool]) -> str:
    """Visible text of an HTML body, stopping at the first quoted-history container.

    A container with no reply above it (`has_reply` of the text so far is false) is a
    bottom-posted quote and is kept, so that the answer below it is not lost.
    """
    parser = _ReplyParser()
    parser.feed(html)
    parser.close()
    return "\n".join(parser.reply_lines(has_reply))
