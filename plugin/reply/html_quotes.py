"""HTML body -> plain text up to where the client's quoted-history container starts."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum

from plugin.parse.html_text import Element, read_html
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
# Gmail nests two quote containers (div and blockquote) around one bottom-posted quote.
_MAX_BOTTOM_POST_CONTAINERS = 3


class _Candidate(Enum):
    """A place that starts history if the text after it confirms it."""
    QUOTE_CONTAINER = "quote-container"  # unless it holds a forwarded message
    BORDER_TOP = "border-top"            # if a From:/Sent: block follows


def _client_element(tag: str, values: Mapping[str, str]) -> Element | _Candidate | None:
    """What a mail client's element means for the reply: a signature, history, or maybe history."""
    if not values:
        return None
    ids = {values.get("id", "").removeprefix("x_")}
    classes = {c.removeprefix("x_") for c in values.get("class", "").split()}
    if ids & _SIGNATURE_IDS or classes & _SIGNATURE_CLASSES:
        return Element.SKIP
    # Zimbra draws <hr data-marker="__DIVIDER__"> above the original.
    if ids & _HISTORY_IDS or values.get("data-marker") == "__DIVIDER__":
        return Element.STOP
    if classes & _HISTORY_CLASSES or any(c.endswith(_YAHOO_QUOTED) for c in classes):
        return _Candidate.QUOTE_CONTAINER
    # Outlook desktop draws a border-top rule above the From:/Sent: block of the original.
    style = values.get("style", "").replace(" ", "").lower()
    if "border-top" in style and "solid" in style:
        return _Candidate.BORDER_TOP
    return None


def visible_text_before_history(html: str, has_reply: Callable[[str], bool]) -> str:
    """Visible text of an HTML body, stopping at the first quoted-history container.

    A container with no reply above it (`has_reply` of the text so far is false) is a
    bottom-posted quote and is kept, so that the answer below it is not lost.
    """
    read = read_html(html, rich=False, quote_marks=True, rule=_client_element)
    lines = list(read.lines)
    for number, (index, candidate) in enumerate(read.marks):
        # Nothing but an attribution above it: a bottom-posted reply, left to the plain-text rules.
        if number < _MAX_BOTTOM_POST_CONTAINERS and not has_reply("\n".join(lines[:index])):
            continue
        head = "\n".join(lines[index:index + 12]).strip()[:300]
        if candidate is _Candidate.QUOTE_CONTAINER and not qp.FORWARD_MARKER.match(head.split("\n")[0]):
            return "\n".join(lines[:index])
        if candidate is _Candidate.BORDER_TOP and qp.HEADER_LINE.match(head):
            return "\n".join(lines[:index])
    return "\n".join(lines)
