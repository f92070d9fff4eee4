"""Hypothesis strategies for hostile mail: real mails mutated, and mails built to exhaust a reader."""
from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from tests.corpus import CORPUS_DIR
from tests.test_robustness import MUTATIONS, Mutation

MAIL_DIR = Path(__file__).resolve().parent / "mail"
_CORPUS_PATTERNS = ("zammad/*.box", "sisimai/*.eml", "flufl-bounce/*.txt", "talon/*.eml")


def seed_mails() -> list[Path]:
    """The real mails hostile input starts from: the suite's own and the shared corpus's."""
    found = sorted(MAIL_DIR.glob("*.eml"))
    found += sorted(path for pattern in _CORPUS_PATTERNS for path in CORPUS_DIR.glob(pattern))
    return found


@dataclass(frozen=True)
class Case:
    """One hostile input and what it is, so that a slow or crashing case can be named."""

    name: str
    data: bytes

    def __str__(self) -> str:
        return f"{self.name} ({len(self.data):,} bytes)"


_HEAD = (b"From: Ann <ann@example.org>\nTo: support@example.test\nSubject: help\n"
         b"Message-ID: <hostile@example.org>\nDate: Tue, 1 Dec 2026 10:00:00 +0000\nMIME-Version: 1.0\n")


def _size(draw: st.DrawFn, low: int, high: int, scale: float) -> int:
    """A size from low to high (scaled down for short runs), mostly near low: hostile shapes are cheap
    to try small and costly large."""
    high = max(low, int(high * scale))
    share = draw(st.integers(0, 1000)) / 1000
    return int(low * (high / low) ** (share ** 3))


def _mail(content_type: bytes, body: bytes, extra: bytes = b"", encoding: bytes = b"") -> bytes:
    cte = b"Content-Transfer-Encoding: " + encoding + b"\n" if encoding else b""
    return _HEAD + extra + b"Content-Type: " + content_type + b"\n" + cte + b"\n" + body


# --- built hostile mails: each strategy draws a size and a shape, then builds the bytes ---------

@st.composite
def huge_headers(draw: st.DrawFn, scale: float = 1.0) -> Case:
    """Thousands of header fields, one field megabytes long, or a fold that never ends."""
    shape = draw(st.sampled_from(("many-fields", "long-field", "endless-fold", "many-addresses")))
    count = _size(draw, 1_000, 60_000, scale)
    if shape == "many-fields":
        extra = b"".join(b"Received: from relay%d.example.net by mx.example.test; Tue, 1 Dec 2026\n" % i
                         for i in range(count))
    elif shape == "long-field":
        extra = b"X-Filler: " + b"x" * (count * 40) + b"\n"
    elif shape == "endless-fold":
        extra = b"References:" + b"".join(b"\n\t<r%d@example.org>" % i for i in range(count)) + b"\n"
    else:
        extra = b"Cc: " + b", ".join(b"p%d <p%d@example.org>" % (i, i) for i in range(count)) + b"\n"
    return Case(f"huge headers: {shape} x{count}", extra + _mail(b"text/plain", b"hello\n"))


@st.composite
def many_parts(draw: st.DrawFn, scale: float = 1.0) -> Case:
    """A multipart with up to 20,000 parts, flat or in alternatives, text or files."""
    count = _size(draw, 100, 20_000, scale)
    kind = draw(st.sampled_from((b"text/plain", b"text/html", b"application/octet-stream", b"image/png")))
    subtype = draw(st.sampled_from((b"mixed", b"alternative", b"related", b"digest")))
    part = b"--b\nContent-Type: " + kind + b"\n\n<p>part</p>\n"
    return Case(f"{count} parts of {kind.decode()} in multipart/{subtype.decode()}",
                _mail(b"multipart/" + subtype + b'; boundary="b"', part * count + b"--b--\n"))


@st.composite
def deep_nesting(draw: st.DrawFn, scale: float = 1.0) -> Case:
    """Multiparts or attached mails nested thousands deep."""
    depth = _size(draw, 50, 5_000, scale)
    shape = draw(st.sampled_from(("multipart", "rfc822", "rfc822-base64")))
    if shape == "multipart":
        opening = b"".join(b'--b%d\nContent-Type: multipart/mixed; boundary="b%d"\n\n' % (i, i + 1)
                           for i in range(depth))
        closing = b"".join(b"--b%d--\n" % i for i in reversed(range(depth)))
        body = opening + b"--b%d\nContent-Type: text/plain\n\ndeep\n" % depth + closing
        return Case(f"multiparts nested {depth} deep", _mail(b'multipart/mixed; boundary="b0"', body))
    inner = b"From: x@example.org\nSubject: inner\n\ndeep\n"
    levels = depth if shape == "rfc822" else min(depth, 12)  # base64 grows by a third per level
    for _ in range(levels):
        if shape == "rfc822":
            inner = b"From: x@example.org\nContent-Type: message/rfc822\n\n" + inner
        else:
            inner = (b"From: x@example.org\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
                     + base64.encodebytes(inner))
    return Case(f"attached mails nested {levels} deep ({shape})", _HEAD + inner)


@st.composite
def endless_encoded_words(draw: st.DrawFn, scale: float = 1.0) -> Case:
    """Subjects, names and file names made of tens of thousands of RFC 2047 encoded words."""
    count = _size(draw, 1_000, 100_000, scale)
    word = draw(st.sampled_from((b"=?utf-8?B?44GC?=", b"=?iso-2022-jp?B?GyRCJDAbKEI=?=", b"=?utf-8?Q?=E3=81=82?=",
                                 b"=?x-unknown?Q?a?=", b"=?utf-8?B?####?=", b"=?", b"=?utf-8?Q?")))
    where = draw(st.sampled_from(("subject", "from", "filename")))
    words = b" ".join([word] * count)
    if where == "subject":
        return Case(f"subject of {count} encoded words {word!r}", _mail(b"text/plain", b"hi\n",
                                                                        extra=b"Subject: " + words + b"\n"))
    if where == "from":
        return Case(f"From name of {count} encoded words {word!r}",
                    b"From: " + words + b" <ann@example.org>\n" + _HEAD.split(b"\n", 1)[1]
                    + b"Content-Type: text/plain\n\nhi\n")
    body = (b'--b\nContent-Type: text/plain\n\nsee file\n--b\nContent-Type: application/pdf\n'
            b'Content-Disposition: attachment; filename="' + words + b'.pdf"\n\n%PDF\n--b--\n')
    return Case(f"file name of {count} encoded words {word!r}", _mail(b'multipart/mixed; boundary="b"', body))


@st.composite
def binary_junk(draw: st.DrawFn, scale: float = 1.0) -> Case:
    """NUL bytes and invalid UTF-8 in headers and bodies, declared as UTF-8, as nothing, or as something else."""
    size = _size(draw, 1_000, 3_000_000, scale)
    seed = draw(st.binary(min_size=1, max_size=64))
    junk = (seed * (size // len(seed) + 1))[:size]
    charset = draw(st.sampled_from((b"utf-8", b"", b"iso-2022-jp", b"shift_jis", b"utf-16", b"x-bogus")))
    where = draw(st.sampled_from(("body", "subject", "html")))
    ctype = b"text/html" if where == "html" else b"text/plain"
    if charset:
        ctype += b"; charset=" + charset
    if where == "subject":
        subject = b"Subject: " + junk.replace(b"\n", b" ") + b"\n"
        return Case(f"subject of {size} junk bytes", _mail(ctype, b"hi\n", extra=subject))
    return Case(f"{where} of {size} junk bytes as {charset.decode() or 'no charset'}", _mail(ctype, junk))


@st.composite
def base64_bombs(draw: st.DrawFn, scale: float = 1.0) -> Case:
    """Large base64 bodies: zeros, broken padding, text parts that decode to megabytes, one line of base64."""
    size = _size(draw, 65_536, 24 * 1024 * 1024, scale)
    shape = draw(st.sampled_from(("zeros-file", "text-body", "one-line", "bad-padding", "html-body")))
    raw = b"\x00" * size if shape != "html-body" else b"<div>" * (size // 5)
    encoded = base64.b64encode(raw) if shape == "one-line" else base64.encodebytes(raw)
    if shape == "bad-padding":
        encoded = encoded.replace(b"\n", b"=\n", 1000)
    ctype = (b"application/octet-stream; name=zeros.bin" if shape == "zeros-file"
             else b"text/html" if shape == "html-body" else b"text/plain; charset=utf-8")
    return Case(f"base64 {shape} of {size:,} bytes", _mail(ctype, encoded, encoding=b"base64"))


_HTML_SHAPES: dict[str, Callable[[int], bytes]] = {
    "nested divs": lambda n: b"<div>" * n + b"x" + b"</div>" * n,
    "nested blockquotes": lambda n: b"<blockquote>" * n + b"x\n" + b"</blockquote>" * n,
    "unclosed tags": lambda n: b"<b><i><u><font>" * n,
    "many links": lambda n: b'<a href="http://example.org/">link</a> ' * n,
    "nested lists": lambda n: b"<ol><li>" * n + b"x",
    "table cells": lambda n: b"<table><tr>" + b"<td>x</td>" * n + b"</tr></table>",
    "long attribute": lambda n: b'<div class="' + b"gmail_quote " * n + b'">x</div>',
    "unterminated comment": lambda n: b"<!--" + b"x" * n,
    "data uris": lambda n: b'<img src="data:image/png;base64,' + b"A" * n + b'">' + b'<img src="data:' * 1000,
    "pre with lines": lambda n: b"<pre>" + b"\n" * n + b"</pre>",
    "quote containers": lambda n: b'<div class="gmail_quote">On Mon wrote:<br>' * n,
    "border-top rules": lambda n: b'<div style="border-top:solid 1pt">From: a<br>Sent: b<br>' * n,
    "entities": lambda n: b"&amp;&#x3042;&nbsp;" * n,
}


@st.composite
def pathological_html(draw: st.DrawFn, scale: float = 1.0) -> Case:
    """HTML bodies that nest, never close, or repeat what the quote reader looks for."""
    name = draw(st.sampled_from(sorted(_HTML_SHAPES)))
    count = _size(draw, 1_000, 200_000, scale)
    alternative = draw(st.booleans())
    html = b"<html><body>" + _HTML_SHAPES[name](count)
    if alternative:
        body = (b'--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: text/html\n\n' + html + b"\n--b--\n")
        return Case(f"HTML {name} x{count} beside a text part", _mail(b'multipart/alternative; boundary="b"', body))
    return Case(f"HTML {name} x{count}", _mail(b"text/html; charset=utf-8", html))


_TEXT_SHAPES: dict[str, bytes] = {
    "quote marks": b"> > > > > > > > > > quoted\n",
    "attributions": b"On Mon, 1 Dec 2026 at 10:00 Bob <bob@example.org> wrote:\n",
    "attributions without quotes": b"On Mon, 1 Dec 2026 at 10:00 Bob <bob@example.org> wrote:\n\n\n",
    "header blocks": b"From: Bob <bob@example.org>\nSent: Monday\nTo: Ann\nSubject: x\n",
    "colons": b"a: \t : \t : \t :\n",
    "signature dashes": b"-- \n",
    "framed lines": b"---- On Mon, 1 Dec 2026 Bob wrote ----\n",
    "mobile signatures": b"Sent from my iPhone\n",
    "wrapped quotes": b"> this quoted line is long enough to look wrapped by a client and goes\non in lower case\n",
    "original message": b"-----Original Message-----\n",
    "bounce lines": b"<user@example.org>: host mx.example.org said: 550 5.1.1 user unknown\n",
    "uuencode begins": b"begin 644 file.txt\nM86)C\n",
    "flowed text": b"word \n",
}


@st.composite
def pathological_text(draw: st.DrawFn, scale: float = 1.0) -> Case:
    """Plain-text bodies that repeat what the quote, signature and bounce readers look for."""
    name = draw(st.sampled_from(sorted(_TEXT_SHAPES)))
    count = _size(draw, 1_000, 200_000, scale)
    flowed = name == "flowed text"
    ctype = b"text/plain; charset=utf-8" + (b"; format=flowed" if flowed else b"")
    return Case(f"text {name} x{count}", _mail(ctype, b"Hello, please help.\n\n" + _TEXT_SHAPES[name] * count))


@st.composite
def long_blank_lines(draw: st.DrawFn, scale: float = 1.0) -> Case:
    """Lines of megabytes of spaces and tabs, in a header, a body, or between parts."""
    size = _size(draw, 10_000, 8_000_000, scale)
    unit = draw(st.sampled_from((b" ", b"\t", b" \t", b"\t \r")))
    blanks = (unit * (size // len(unit) + 1))[:size]
    where = draw(st.sampled_from(("body", "header", "boundary", "html")))
    if where == "header":
        subject = b"Subject:" + blanks + b"x\n"
        return Case(f"header of {size} blanks {unit!r}", _mail(b"text/plain", b"hi\n", extra=subject))
    if where == "boundary":
        body = b"--b" + blanks + b"\nContent-Type: text/plain\n\nhi\n--b--" + blanks + b"\n"
        return Case(f"boundary lines with {size} blanks {unit!r}", _mail(b'multipart/mixed; boundary="b"', body))
    ctype = b"text/html" if where == "html" else b"text/plain"
    return Case(f"{where} of {size} blanks {unit!r}", _mail(ctype, b"hi" + blanks + b"x\n" + blanks))


def built_hostile(scale: float = 1.0) -> st.SearchStrategy[Case]:
    """Every shape of built hostile mail; scale shrinks the largest sizes for short runs."""
    return st.one_of(*(shape(scale=scale) for shape in (
        huge_headers, many_parts, deep_nesting, endless_encoded_words, binary_junk, base64_bombs,
        pathological_html, pathological_text, long_blank_lines)))


def _mutated(path: Path, mutations: list[Mutation]) -> Case:
    data = path.read_bytes()
    for mutate in mutations:
        data = mutate(data)
    return Case(f"{path.parent.name}/{path.name} mutated {len(mutations)}x", data)


@st.composite
def grafted(draw: st.DrawFn, seeds: list[Path], scale: float = 1.0) -> Case:
    """A real mail with a hostile mail's header or body spliced into it."""
    path = draw(st.sampled_from(seeds))
    hostile = draw(built_hostile(scale))
    data = path.read_bytes()
    cut = data.find(b"\n\n")
    cut = len(data) if cut < 0 else cut + 1
    head, _, body = hostile.data.partition(b"\n\n")
    spliced = data[:cut] + body if draw(st.booleans()) else head + b"\n" + data[:cut] + b"\n" + data[cut:]
    return Case(f"{path.parent.name}/{path.name} with {hostile.name}", spliced)


def hostile_mail(seeds: list[Path] | None = None, scale: float = 1.0) -> st.SearchStrategy[Case]:
    """Real mail mutated, built hostile mail, and the two spliced together, in equal shares."""
    seeds = seeds if seeds is not None else seed_mails()
    mutated = st.builds(_mutated, st.sampled_from(seeds), st.lists(MUTATIONS, min_size=1, max_size=3))
    return st.one_of(mutated, built_hostile(scale), grafted(seeds, scale))
