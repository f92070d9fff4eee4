"""Reply text vs quoted history and signature."""
from __future__ import annotations


def reply_text(body_text: str, body_html: str | None = None) -> str:
    """What the person wrote in this mail, without quoted history and signature."""
    return body_text.strip()
