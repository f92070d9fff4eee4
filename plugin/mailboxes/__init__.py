"""Mailbox access, one module per protocol: fetch unhandled mail read-only, label it at the end."""
from __future__ import annotations

from typing import Protocol, Self

from plugin.domain import Link, MailProtocol, MailRef, Outcome, RawMail
from plugin.errors import RetryLater


class MailboxStore(Protocol):
    """What a mailbox keeps in the store: POP3 the rejected mail it leaves on the server (in the mail
    ledger), OAuth links the refresh token the identity platform rotated."""

    def ledger_entry(self, link_id: int, ledger_id: str) -> object | None: ...

    def finish(self, link_id: int, ledger_id: str, outcome: Outcome) -> None: ...

    def link(self, name_or_id: str | int) -> Link | None: ...

    def update_link(self, link: Link) -> None: ...


class Mailbox(Protocol):
    """An open connection to one linked mailbox.

    `unhandled()` lists mail that still needs handling (IMAP: unread, not deleted, without our
    labels; POP3: every message still on the server) with its size as the server reports it.
    `fetch()` never changes the mail (IMAP BODY.PEEK). `label()` is the only write: mark read and
    add the processed or rejected keyword (POP3: delete, but keep rejected mail on the server), called
    only once Jira has the result.
    Connection and protocol errors surface as `RetryLater`.
    """

    def unhandled(self) -> list[MailRef]: ...

    def fetch(self, ref: MailRef) -> RawMail: ...

    def headers(self, ref: MailRef) -> bytes | None:
        """The header section alone, for mail too large to download; None where the protocol cannot."""

    def label(self, ref: MailRef, outcome: Outcome) -> None: ...

    def probe(self) -> None:
        """Prove the sign-in can list the folder and write a label, on no mail (before a credential switch)."""

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


def open_mailbox(link: Link, *, cafile: str | None = None, store: MailboxStore | None = None) -> Mailbox:
    """Connect and log in to the link's mailbox; `cafile` pins the server certificate (tests).

    With `store`, POP3 skips the rejected mail it kept in earlier sessions and a rotated refresh
    token is saved; without it (a connection test) such mail is listed again.
    """
    if link.protocol is MailProtocol.IMAP:
        from plugin.mailboxes.imap import ImapMailbox
        return ImapMailbox.connect(link, cafile=cafile, store=store)
    if link.protocol is MailProtocol.POP3:
        from plugin.mailboxes.pop3 import Pop3Mailbox
        return Pop3Mailbox.connect(link, cafile=cafile, store=store)
    if link.protocol is MailProtocol.MAILDIR:
        from plugin.mailboxes.maildir import MaildirMailbox
        return MaildirMailbox.connect(link)
    if link.protocol is MailProtocol.EWS:
        from plugin.mailboxes.ews import EwsMailbox
        return EwsMailbox.connect(link, cafile=cafile, store=store)
    if link.protocol is MailProtocol.GRAPH:
        from plugin.mailboxes.graph import GraphMailbox
        return GraphMailbox.connect(link, cafile=cafile)
    raise RetryLater(f"{link.protocol.value} mailboxes are not supported yet; relink {link.name} over IMAP or POP3",
                     after_s=3600)
