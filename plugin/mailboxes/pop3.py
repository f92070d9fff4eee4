"""POP3 mailboxes: every message on the server is unhandled; a handled one is deleted at QUIT, a rejected one kept."""
from __future__ import annotations

import logging
import poplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from functools import partial
from typing import TYPE_CHECKING, Self

from plugin.domain import AuthMethod, Link, MailRef, Outcome, OutcomeState, RawMail, Security
from plugin.errors import MailGone, RetryLater
from plugin.mailboxes.network import (
    RETRY_AFTER_CONFIG_S,
    RETRY_AFTER_S,
    TIMEOUT_S,
    network_errors_as_retry,
    withhold_password,
)
from plugin.mailboxes.oauth import sign_in_with_token, xoauth2_response

if TYPE_CHECKING:
    from plugin.mailboxes import MailboxStore

log = logging.getLogger(__name__)

# Ledger key of a rejected mail kept on the server: UIDLs are unique within a maildrop and never
# reused (RFC 1939 7), so the UIDL alone tells the mail in later sessions.
KEPT_PREFIX = "pop3-kept:"
MAX_LINE = 2048  # poplib's own bound on a reply line


class Pop3Mailbox:
    """One logged-in POP3 session; DELE marks are committed only by close() (RFC 1939 6, UPDATE)."""

    def __init__(self, link: Link, conn: poplib.POP3, store: MailboxStore | None = None) -> None:
        self.link = link
        self._conn = conn
        self._store = store
        self._numbers: dict[str, int] | None = None
        self._deleted: set[int] = set()
        self._kept: set[str] = set()

    @classmethod
    def connect(cls, link: Link, cafile: str | None = None, store: MailboxStore | None = None) -> Pop3Mailbox:
        """Connect with the link's security and log in."""
        with _retry_later_on_failure(link, "connect"):
            conn = _open(link, cafile)
            try:
                if link.auth is AuthMethod.OAUTH2_DELEGATED:
                    sign_in_with_token(link, partial(_auth_xoauth2, conn, link.username), poplib.error_proto,
                                       cafile, store)
                else:
                    conn.user(link.username)
                    conn.pass_(link.password.reveal())
            except poplib.error_proto as exc:
                _discard(conn)
                detail = f"could not connect: {link.host}:{link.port} refused the login of {link.username}"
                raise RetryLater(f"{detail} ({_reply(exc, link)})", RETRY_AFTER_CONFIG_S) from exc
            except BaseException:
                _discard(conn)
                raise
        return cls(link, conn, store)

    def unhandled(self) -> list[MailRef]:
        """Every message on the server but the rejected ones kept, by UIDL, with its LIST size, in number order."""
        with _retry_later_on_failure(self.link, "list mail"):
            numbers = self._uid_numbers()
            _, lines, _ = self._conn.list()
        sizes = dict(_pairs(lines))
        refs = [
            MailRef(self.link.id, uid, int(sizes[number]))
            for uid, number in sorted(numbers.items(), key=lambda item: item[1])
            if number not in self._deleted and not self._is_kept(uid)
        ]
        since = self.link.import_since
        return refs if since is None else [ref for ref in refs if not self._before_link(ref, since)]

    def _before_link(self, ref: MailRef, since: datetime) -> bool:
        """Whether the mail came before the link's first-import time; such mail is kept on the server, looked at once.

        POP3 keeps no arrival time: the newest Received header says when the server took the mail
        (RFC 5321 4.4), else its Date. A mail that says neither is taken."""
        arrived = _arrival(self.headers(ref) or b"")
        if arrived is None or arrived >= since:
            return False
        self._keep(ref, Outcome(OutcomeState.IGNORED, detail="received before the link's first-import time"))
        return True

    def fetch(self, ref: MailRef) -> RawMail:
        """The whole mail by RETR; POP3 has no read state, so this changes nothing."""
        with _retry_later_on_failure(self.link, f"fetch mail {ref.uid}"):
            number = self._uid_numbers().get(ref.uid)
            if number is None:
                raise MailGone(f"mail {ref.uid} is no longer on the server: another client deleted it", RETRY_AFTER_S)
            _, lines, _ = self._conn.retr(number)
        # poplib strips the CRLFs and undoes dot-stuffing (RFC 1939 3); put the line ends back.
        return RawMail(ref, b"".join(line + b"\r\n" for line in lines))

    def headers(self, ref: MailRef) -> bytes | None:
        """The header section by TOP n 0 (RFC 1939 7), without the body."""
        with _retry_later_on_failure(self.link, f"fetch the headers of mail {ref.uid}"):
            number = self._uid_numbers().get(ref.uid)
            if number is None:
                return None
            _, lines, _ = self._conn.top(number, 0)
        return b"".join(line + b"\r\n" for line in lines)

    def label(self, ref: MailRef, outcome: Outcome) -> None:
        """Mark a finally handled mail for deletion (it goes at QUIT, never on a dropped connection);
        keep a rejected one on the server, where a person can still find it, and skip it from now on."""
        if not outcome.state.is_final:
            return
        if outcome.state.labels_as_rejected:
            self._keep(ref, outcome)
            return
        with _retry_later_on_failure(self.link, f"delete mail {ref.uid}"):
            number = self._uid_numbers().get(ref.uid)
            if number is None or number in self._deleted:
                log.info("delete skipped mailbox=%s uid=%s: already gone", self.link.id, ref.uid)
                return
            self._conn.dele(number)
        self._deleted.add(number)

    def probe(self) -> None:
        """UIDL and LIST; POP3 has no label, and its one write (DELE) comes with the login."""
        self.unhandled()

    def close(self) -> None:
        """QUIT, which commits the deletions; if it fails they stay and the mail is listed again."""
        try:
            self._conn.quit()
        except (poplib.error_proto, OSError) as exc:
            # The ledger knows these mails, so seeing them again creates nothing twice.
            log.warning("QUIT failed mailbox=%s, %d marked mails not deleted: %s",
                        self.link.id, len(self._deleted), exc)
            _discard(self._conn)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _keep(self, ref: MailRef, outcome: Outcome) -> None:
        """Remember a rejected mail by its UIDL, so it is logged once and never handled again."""
        if self._is_kept(ref.uid):
            return
        self._kept.add(ref.uid)
        if self._store is not None:
            self._store.finish(self.link.id, KEPT_PREFIX + ref.uid, outcome)
        log.info("kept on the server mailbox=%s uid=%s: %s (%s)", self.link.id, ref.uid, outcome.state.value,
                 outcome.reason or outcome.detail)

    def _is_kept(self, uid: str) -> bool:
        if uid in self._kept:
            return True
        return self._store is not None and self._store.ledger_entry(self.link.id, KEPT_PREFIX + uid) is not None

    def _uid_numbers(self) -> dict[str, int]:
        """UIDL -> message number; numbers never change within a session (RFC 1939 4), so ask once."""
        if self._numbers is None:
            _, lines, _ = self._conn.uidl()
            self._numbers = {uid: number for number, uid in _pairs(lines)}
        return self._numbers


def _arrival(header: bytes) -> datetime | None:
    headers = BytesHeaderParser().parsebytes(header)
    stamps = [str(received).rpartition(";")[2] for received in headers.get_all("Received") or []]
    for stamp in [*stamps[:1], str(headers.get("Date") or "")]:
        try:
            when = parsedate_to_datetime(stamp.strip())
        except (TypeError, ValueError, IndexError):
            continue
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


def _auth_xoauth2(conn: poplib.POP3, username: str, token: str) -> None:
    """AUTH XOAUTH2 with the initial response (RFC 5034 4); poplib has no AUTH of its own.

    A refused token is answered with a "+ " challenge holding the error as JSON, which the client
    acknowledges with an empty line before the final -ERR.
    """
    conn.sock.sendall(f"AUTH XOAUTH2 {xoauth2_response(username, token)}\r\n".encode("ascii"))
    line = conn.file.readline(MAX_LINE).rstrip(b"\r\n")
    if line == b"+" or line.startswith(b"+ "):
        conn.sock.sendall(b"\r\n")
        line = conn.file.readline(MAX_LINE).rstrip(b"\r\n")
    if not line.startswith(b"+OK"):
        raise poplib.error_proto(line)


def _pairs(lines: list[bytes]) -> Iterator[tuple[int, str]]:
    """Message number and value of each "number value" line of a UIDL or LIST answer (RFC 1939 5, 7)."""
    for line in lines:
        number, value = line.split()[:2]
        yield int(number), value.decode("ascii")


def _open(link: Link, cafile: str | None) -> poplib.POP3:
    """A connected session, encrypted as the link says."""
    context = ssl.create_default_context(cafile=cafile)
    if link.security is Security.SSL:
        return poplib.POP3_SSL(link.host, link.port, timeout=TIMEOUT_S, context=context)
    conn = poplib.POP3(link.host, link.port, timeout=TIMEOUT_S)
    if link.security is Security.STARTTLS:
        try:
            conn.stls(context)  # RFC 2595 4
        except BaseException:
            _discard(conn)
            raise
    return conn


def _discard(conn: poplib.POP3) -> None:
    """Close the socket after a failure; it may be closed already, which must not hide that failure."""
    with suppress(OSError):
        conn.close()


@contextmanager
def _retry_later_on_failure(link: Link, action: str) -> Iterator[None]:
    """Turn socket, TLS and protocol errors into RetryLater with a plain-language detail."""
    with network_errors_as_retry(link, action):
        try:
            yield
        except poplib.error_proto as exc:
            detail = f"could not {action}: {link.host}:{link.port} answered with an error ({_reply(exc, link)})"
            raise RetryLater(detail, RETRY_AFTER_S) from exc


def _reply(exc: poplib.error_proto, link: Link) -> str:
    """The server's words from a poplib error, withheld if they would show the password."""
    reply = exc.args[0] if exc.args else b""  # poplib passes the raw reply line
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return withhold_password(text, link)
