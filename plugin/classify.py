"""Customer mail, auto-reply, bounce, feedback report or loop: a verdict with its evidence."""
from __future__ import annotations

from plugin.domain import CUSTOMER_MAIL, InboundMail, Verdict


def classify(mail: InboundMail, *, own_domains: frozenset[str] = frozenset()) -> Verdict:
    """The first detector that recognises the mail decides; otherwise it is customer mail."""
    return CUSTOMER_MAIL
