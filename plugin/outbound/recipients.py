"""Who gets the mail of a comment: the reporter, Cc the participants, minus those we must not mail."""
from __future__ import annotations

from collections.abc import Callable

from plugin.domain import Address
from plugin.outbound.model import OutboundRequest, Recipients

AUTHOR = "wrote the comment"


def choose_recipients(request: OutboundRequest, *, own: frozenset[str], undeliverable: Callable[[str], bool],
                      auto_repliers: frozenset[str], author: str | None = None) -> Recipients:
    """To the reporter, Cc the participants; never our own addresses, bounced ones, recent auto-repliers,
    or the comment's author (a customer who commented in the portal has it already)."""
    chosen: list[Address] = []
    left_out: list[str] = []
    seen: set[str] = set()
    for person in ([request.reporter] if request.reporter else []) + list(request.participants):
        address = person.address.lower()
        if address in seen:
            continue
        seen.add(address)
        why = (AUTHOR if author and address == author.lower() else
               "our own address" if address in own else
               "marked undeliverable by a bounce" if undeliverable(address) else
               "sent us an auto-reply within the last day" if address in auto_repliers else None)
        if why:
            left_out.append(f"{person.address} ({why})")
        else:
            chosen.append(person)
    # The reporter comes first; when we may not mail them, the first participant left takes To.
    return Recipients(tuple(chosen[:1]), tuple(chosen[1:]), tuple(left_out))
