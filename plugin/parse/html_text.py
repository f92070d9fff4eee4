"""HTML mail body -> readable plain text: paragraphs, lists and links kept, scripts and styles dropped."""
from __future__ import annotations

import re
from html.parser import HTMLParser

_HIDDEN = frozenset(("script", "style", "head", "title", "template", "xml", "svg"))
_PARAGRAPH = frozenset(("p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre",
                        "dl", "hr", "address", "figure", "center"))
_LINE = frozenset(("div", "tr", "dt", "dd", "section", "article", "header", "footer", "main",
                   "nav", "aside", "form", "fieldset", "caption", "details", "summary", "tbody",
                   "thead", "tfoot", "figcaption", "li"))
_VOID = frozenset(("br", "hr", "img", "meta", "link", "input", "area", "base", "col", "wbr"))
_SPACE = re.compile(r"[ \t\r\n\f]+")
_INVISIBLE = str.maketrans({"\u00a0": " ", "\u200b": None, "\u200c": None, "\u200d": None,
                            "\ufeff": None, "\u00ad": None})
_BLANK_RUNS = re.compile(r"\n{3,}")
# Pasted pictures arrive as data: URIs (RFC 2397) megabytes long; they carry no text.
_DATA_URI = re.compile(r"""(["'])\s*data:[^"']*\1""", re.I)
# Jira keeps 32,767 characters of a description; a longer HTML body is a newsletter archive or
# an attack, and the pure-Python tokenizer needs about a second per megabyte of tag soup.
_MAX_HTML_CHARS = 1_000_000


class _TextBuilder(HTMLParser):
    """Collects text line by line while the stdlib tokenizer walks the document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line = ""
        self.prefix = ""
        self.hidden: list[str] = []
        self.pre = 0
        self.lists: list[list] = []  # [tag, next number]
        self.links: list[tuple[str, int, int]] = []  # href, line count, offset at <a>
        self.cells = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and self.hidden[-1:] == ["head"]:
            self.hidden.pop()  # an unclosed <head> ends where <body> starts
        if self.hidden or tag in _HIDDEN:
            if tag in _HIDDEN and tag not in _VOID:
                self.hidden.append(tag)
            return
        attributes = dict(attrs)
        if tag in ("ul", "ol"):
            self._break(blank=not self.lists)
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
        elif tag in _PARAGRAPH or tag in _LINE:
            self._break(blank=tag in _PARAGRAPH)
        if tag == "tr":
            self.cells = 0

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.hidden:
            if tag == self.hidden[-1]:
                self.hidden.pop()
            return
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
            self._break(blank=not self.lists)
        elif tag == "a" and self.links:
            self._end_link(*self.links.pop())
        elif tag == "pre":
            self.pre = max(self.pre - 1, 0)
            self._break(blank=True)
        elif tag in _PARAGRAPH or tag in _LINE:
            self._break(blank=tag in _PARAGRAPH)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre:
            head, *rest = data.split("\n")
            self.line += head
            for line in rest:
                self._flush(force=True)
                self.line = line
            return
        self.line += _SPACE.sub(" ", data)

    def text(self) -> str:
        """The collected text, with at most one blank line between paragraphs."""
        self._flush()
        text = "\n".join(line.translate(_INVISIBLE).rstrip() for line in self.lines)
        return _BLANK_RUNS.sub("\n\n", text).strip("\n")

    def _start_item(self) -> None:
        self._flush()
        if not self.lists:
            self.prefix = "- "
            return
        kind = self.lists[-1]
        marker = f"{kind[1]}. " if kind[0] == "ol" else "- "
        kind[1] += 1
        self.prefix = "  " * (len(self.lists) - 1) + marker

    def _end_link(self, href: str, line_count: int, offset: int) -> None:
        label = self.line[offset:].strip() if line_count == len(self.lines) else ""
        target = href.removeprefix("mailto:") if href.lower().startswith("mailto:") else href
        if not target or target.startswith("#") or target.lower().startswith("javascript:"):
            return
        # A link without visible text (an image, a tracking pixel) adds nothing readable.
        if label and label.rstrip("/") != target.rstrip("/"):
            self.line = self.line.rstrip() + f" <{target}>"

    def _break(self, blank: bool) -> None:
        self._flush()
        if blank and self.lines and self.lines[-1] != "":
            self.lines.append("")

    def _flush(self, force: bool = False) -> None:
        text = self.line if self.pre else self.line.strip()
        if text.strip():
            self.lines.append(self.prefix + (text if self.pre else _SPACE.sub(" ", text)))
        elif force:
            self.lines.append("")
        self.line = ""
        self.prefix = ""


def _int(value: str | None, default: int) -> int:
    try:
        return int(value or default)
    except ValueError:
        return default


def html_to_text(html: str) -> str:
    """Plain text of an HTML body: blank lines between paragraphs, "- "/"1. " list items,
    links as "text <url>" (the url alone when it is the text)."""
    builder = _TextBuilder()
    builder.feed(_DATA_URI.sub('""', html)[:_MAX_HTML_CHARS])
    builder.close()
    return builder.text()
