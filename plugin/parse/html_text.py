"""HTML -> readable plain text, the one HTML reader of body text, reply text and bounce notices."""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from lxml import etree

from plugin.parse import budget

_HIDDEN = frozenset(("script", "style", "head", "title", "template", "xml", "svg", "noscript"))
_PARAGRAPH = frozenset(("p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre",
                        "dl", "hr", "address", "figure", "center"))
_LINE = frozenset(("div", "tr", "dt", "dd", "section", "article", "header", "footer", "main",
                   "nav", "aside", "form", "fieldset", "caption", "details", "summary", "tbody",
                   "thead", "tfoot", "figcaption", "li"))
_VOID = frozenset(("br", "hr", "img", "meta", "link", "input", "area", "base", "col", "wbr", "embed",
                   "source", "track"))
_SPACE = re.compile(r"[ \t\r\n\f]+")
_INVISIBLE = str.maketrans({"\u00a0": " ", "\u200b": None, "\u200c": None, "\u200d": None,
                            "\ufeff": None, "\u00ad": None})
_BLANK_RUNS = re.compile(r"\n{3,}")
# Pasted pictures arrive as data: URIs (RFC 2397) megabytes long; they carry no text.
_DATA_URI = re.compile(r"""(["'])\s*data:[^"']*\1""", re.IGNORECASE)
# Jira keeps 32,767 characters of a description; a longer HTML body is a newsletter archive or
# an attack. libxml2 reads tag soup in linear time, nested elements to any depth (huge_tree).
_MAX_HTML_CHARS = 1_000_000
# Quote marks written for nested <blockquote>; deeper levels read as this deep (no mail nests more,
# and a prefix as long as the depth would make the text grow with the square of the input).
_MAX_QUOTE_MARKS = 10
# Characters that libxml2 refuses in text (XML 1.0 section 2.2); mail has them as junk.
_NOT_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# The markup goes to libxml2 in pieces of this many characters, with the time budget checked between.
_CHUNK_CHARS = 65_536


class Element(Enum):
    """What a caller's rule makes of an element when the reader meets its start tag."""

    SKIP = "skip"  # leave the element and everything in it out (a signature block)
    STOP = "stop"  # the text ends here (the client's quoted-history container)


# A rule sees each visible element's tag and attributes; any other value it returns is a mark
# that the reader records with the number of lines read so far.
ElementRule = Callable[[str, Mapping[str, str]], object]


@dataclass(frozen=True, slots=True)
class HtmlText:
    """Lines of text read from HTML, and where the rule's marks fell (line index, mark)."""

    lines: tuple[str, ...]
    marks: tuple[tuple[int, object], ...] = ()

    @property
    def text(self) -> str:
        """The lines with at most one blank line between paragraphs."""
        return _BLANK_RUNS.sub("\n\n", "\n".join(self.lines)).strip("\n")


class _TextBuilder:
    """Collects text line by line from libxml2's parser events (lxml's target parser interface)."""

    def __init__(self, rich: bool, quote_marks: bool, rule: ElementRule | None) -> None:
        self.rich = rich  # "- "/"1. " list items and link targets, for text a person reads whole
        self.quote_marks = quote_marks  # "> " before lines inside <blockquote>
        self.rule = rule
        self.lines: list[str] = []
        self.marks: list[tuple[int, object]] = []
        self.line = ""
        self.prefix = ""
        self.hidden: list[str] = []
        self.skipping: str | None = None
        self.skip_depth = 0
        self.stopped = False
        self.pre = 0
        self.quote_depth = 0
        self.outlook_paragraph = False
        self.lists: list[list] = []  # [tag, next number]
        self.links: list[tuple[str, int, int]] = []  # href, line count, offset at <a>
        self.cells = 0

    def start(self, tag: str, attributes: Mapping[str, str]) -> None:
        budget.check()
        if self.stopped:
            return
        if self.skipping:
            self.skip_depth += tag == self.skipping
            return
        if tag == "body" and self.hidden[-1:] == ["head"]:
            self.hidden.pop()  # an unclosed <head> ends where <body> starts
        if self.hidden or tag in _HIDDEN:
            if tag in _HIDDEN and tag not in _VOID:
                self.hidden.append(tag)
            return
        if self.rule is not None and self._apply_rule(tag, attributes):
            return
        if tag in ("ul", "ol"):
            self._break(blank=not self.lists and self.rich)
            self.lists.append([tag, _int(attributes.get("start"), 1)])
        elif tag == "li":
            self._start_item()
        elif tag == "br":
            self._flush(force=True)
        elif tag in ("td", "th"):
            self.line += " " if self.cells else ""
            self.cells += 1
        elif tag == "a":
            self.links.append(((attributes.get("href") or "").strip(), len(self.lines), len(self.line)))
        elif tag == "pre":
            self._break(blank=True)
            self.pre += 1
        elif tag == "p":
            # Outlook writes one <p class=MsoNormal> per line; other mail has real paragraphs.
            self.outlook_paragraph = "MsoNormal" in (attributes.get("class") or "").split()
            self._break(blank=not self.outlook_paragraph)
        elif tag in _PARAGRAPH or tag in _LINE:
            self._break(blank=tag in _PARAGRAPH)
        if tag == "tr":
            self.cells = 0
        elif tag == "blockquote":
            self.quote_depth += 1

    def _apply_rule(self, tag: str, attributes: Mapping[str, str]) -> bool:
        """Run the caller's rule; True when the element is not to be read."""
        verdict = self.rule(tag, attributes) if self.rule is not None else None
        if verdict is Element.SKIP:
            if tag not in _VOID:
                self.skipping, self.skip_depth = tag, 1
            return True
        if verdict is Element.STOP:
            self._flush()
            self.stopped = True
            return True
        if verdict is not None:
            self._flush()
            self.marks.append((len(self.lines), verdict))
        return False

    def end(self, tag: str) -> None:
        if self.stopped or tag in _VOID:
            return
        if self.skipping:
            self.skip_depth -= tag == self.skipping
            if not self.skip_depth:
                self.skipping = None
            return
        if self.hidden:
            if tag == self.hidden[-1]:
                self.hidden.pop()
            return
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
            self._break(blank=not self.lists and self.rich)
        elif tag == "a" and self.links:
            self._end_link(*self.links.pop())
        elif tag == "pre":
            self.pre = max(self.pre - 1, 0)
            self._break(blank=True)
        elif tag in _PARAGRAPH or tag in _LINE:
            self._break(blank=tag in _PARAGRAPH and not (tag == "p" and self.outlook_paragraph))
        if tag == "blockquote":
            self.quote_depth = max(self.quote_depth - 1, 0)

    def data(self, data: str) -> None:
        if self.hidden or self.skipping or self.stopped:
            return
        if self.pre:
            head, *rest = data.split("\n")
            self.line += head
            for line in rest:
                self._flush(force=True)
                self.line = line
            return
        self.line += _SPACE.sub(" ", data)

    def close(self) -> HtmlText:
        self._flush()
        lines = tuple(line.translate(_INVISIBLE).rstrip() for line in self.lines)
        return HtmlText(lines, tuple(self.marks))

    def _start_item(self) -> None:
        self._flush()
        if not self.rich:
            return
        if not self.lists:
            self.prefix = "- "
            return
        kind = self.lists[-1]
        marker = f"{kind[1]}. " if kind[0] == "ol" else "- "
        kind[1] += 1
        self.prefix = "  " * (len(self.lists) - 1) + marker

    def _end_link(self, href: str, line_count: int, offset: int) -> None:
        if not self.rich:
            return
        label = self.line[offset:].strip() if line_count == len(self.lines) else ""
        target = href.removeprefix("mailto:") if href.lower().startswith("mailto:") else href
        if not target or target.startswith("#") or target.lower().startswith("javascript:"):
            return
        # A link without visible text (an image, a tracking pixel) adds nothing readable.
        if label and label.rstrip("/") != target.rstrip("/"):
            self.line = self.line.rstrip() + f" <{target}>"

    def _quote_prefix(self) -> str:
        return ">" * min(self.quote_depth, _MAX_QUOTE_MARKS) if self.quote_marks else ""

    def _break(self, blank: bool) -> None:
        self._flush()
        empty = self._quote_prefix()
        if blank and self.lines and self.lines[-1] != empty:
            self.lines.append(empty)

    def _flush(self, force: bool = False) -> None:
        if not self.line and not force:  # tag soup breaks lines thousands of times with nothing on them
            self.prefix = ""
            return
        text = self.line if self.pre else self.line.strip()
        quote = self._quote_prefix()
        if text.strip():
            line = self.prefix + (text if self.pre else _SPACE.sub(" ", text))
            self.lines.append(f"{quote} {line}" if quote else line)
        elif force:
            self.lines.append(quote)
        self.line = ""
        self.prefix = ""


def _int(value: str | None, default: int) -> int:
    try:
        return int(value or default)
    except ValueError:
        return default


def read_html(html: str, *, rich: bool = True, quote_marks: bool = False,
              rule: ElementRule | None = None) -> HtmlText:
    """Read an HTML document once into lines of text.

    rich keeps "- "/"1. " list items and links as "text <url>" (the url alone when it is the
    text); quote_marks puts "> " before lines inside <blockquote>; rule sees each element and
    may skip it, stop the reading there, or mark where it starts.
    """
    builder = _TextBuilder(rich, quote_marks, rule)
    markup = _NOT_XML_CHARS.sub("", _DATA_URI.sub('""', html)[:_MAX_HTML_CHARS])
    if not markup.strip():
        return builder.close()
    parser = etree.HTMLParser(target=builder, recover=True, huge_tree=True, no_network=True)
    try:
        for start in range(0, len(markup), _CHUNK_CHARS):
            budget.check()
            parser.feed(markup[start:start + _CHUNK_CHARS])
        read: HtmlText = parser.close()
    except etree.LxmlError:  # recover=True reads any tag soup; this is a last resort
        return builder.close()
    return read


def html_to_text(html: str) -> str:
    """Plain text of an HTML body: blank lines between paragraphs, list items and links kept."""
    return read_html(html).text
