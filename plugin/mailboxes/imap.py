"""IMAP mailboxes: list unread mail, fetch it without marking it read, label it when Jira has it."""
from __future__ import annotations

import imaplib
import logging
import re
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from threading import Event
from typing import Any, Self

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from plugin.domain import AuthMethod, Link, MailRef, Outcome, RawMail, Security, check_label
from plugin.errors import MailGone, RetryLater
from plugin.mailboxes.network import (
    RETRY_AFTER_CONFIG_S,
    RETRY_AFTER_S,
    TIMEOUT_S,
    network_errors_as_retry,
    withhold_password,
)
from plugin.mailboxes.oauth import LinkStore, sign_in_with_token

log = logging.getLogger(__name__)

SEEN = "\\Seen"
MAX_UID = 4294967295  # the largest UID (RFC 3501 2.3.1.1), never given to a mail here
BYTES_REPR = re.compile(r"b(['\"])(.*)\1", re.DOTALL)
# "* OK [CAPABILITY ...] Dovecot ready." -> "Dovecot ready."
GREETING_PREFIX = re.compile(rb"^\* OK (\[[^\]]*\] )?")


class ImapMailbox:
    """One logged-in IMAP session with the link's folder selected read-write."""

    def __init__(self, link: Link, client: IMAPClient) -> None:
        self.link = link
        self._client = client

    @classmethod
    def connect(cls, link: Link, cafile: str | None = None, store: LinkStore | None = None) -> ImapMailbox:
        """Connect with the link's security, log in (password or XOAUTH2) and select its folder."""
        for keyword in (link.processed_label, link.rejected_label):
            check_label(keyword)
        with _retry_later_on_failure(link, "connect"):
            client = _open(link, cafile)
            try:
                if link.auth is AuthMethod.OAUTH2_DELEGATED:
                    sign_in_with_token(link, lambda token: client.oauth2_login(link.username, token), LoginError,
                                       cafile, store)
                else:
                    client.login(link.username, link.password.reveal())
                client.select_folder(link.folder)
            except BaseException:
                _discard(client)
                raise
        return cls(link, client)

    def unhandled(self) -> list[MailRef]:
        """Unread, undeleted mail without our labels, oldest UID first, with RFC822.SIZE; mail received
        before the link's first-import time is left alone."""
        since = self.link.import_since
        criteria: list[object] = ["UNSEEN", "UNDELETED", "UNKEYWORD", self.link.processed_label,
                                  "UNKEYWORD", self.link.rejected_label]
        if since:
            # RFC 3501 6.4.4: SINCE compares the internal date's day only, in the server's zone; a day's margin,
            # then the exact INTERNALDATE below.
            criteria += ["SINCE", (since - timedelta(days=1)).date()]
        with _retry_later_on_failure(self.link, "list unread mail"):
            uids = self._client.search(criteria)
            if not uids:
                return []
            sizes = self._client.fetch(uids, ["RFC822.SIZE", "INTERNALDATE"] if since else ["RFC822.SIZE"])
        # A UID missing from the FETCH answer was expunged by another client in between.
        return [MailRef(self.link.id, str(uid), sizes[uid][b"RFC822.SIZE"]) for uid in sorted(sizes)
                if since is None or _received(sizes[uid]) >= since]

    def fetch(self, ref: MailRef) -> RawMail:
        """The raw mail, read with BODY.PEEK[] so it stays unread (RFC 3501 6.4.5)."""
        with _retry_later_on_failure(self.link, f"fetch mail {ref.uid}"):
            fetched = self._client.fetch([int(ref.uid)], ["BODY.PEEK[]"])
        # Dovecot answers a UID expunged by another session with BODY[] NIL, others leave the UID out.
        data = fetched.get(int(ref.uid), {}).get(b"BODY[]")
        if data is None:
            detail = f"mail {ref.uid} is no longer in {self.link.folder}: another client moved or deleted it"
            raise MailGone(detail, RETRY_AFTER_S)
        return RawMail(ref, data)

    def headers(self, ref: MailRef) -> bytes | None:
        """The header section by BODY.PEEK[HEADER]: who sent a mail too large to download, unread."""
        with _retry_later_on_failure(self.link, f"fetch the headers of mail {ref.uid}"):
            fetched = self._client.fetch([int(ref.uid)], ["BODY.PEEK[HEADER]"])
        header: bytes | None = fetched.get(int(ref.uid), {}).get(b"BODY[HEADER]")
        return header

    def label(self, ref: MailRef, outcome: Outcome) -> None:
        """Mark a finally handled mail read with the processed or rejected keyword; leave the rest."""
        if not outcome.state.is_final:
            return
        keyword = self.link.rejected_label if outcome.state.labels_as_rejected else self.link.processed_label
        with _retry_later_on_failure(self.link, f"label mail {ref.uid}"):
            stored = self._client.add_flags([int(ref.uid)], [SEEN, keyword])
        # The untagged FETCH after STORE shows what the server kept (RFC 3501 6.4.6); none means expunged.
        if int(ref.uid) not in stored:
            log.info("label skipped mailbox=%s uid=%s: mail no longer in %s", self.link.id, ref.uid, self.link.folder)
            return
        kept = {flag.decode("ascii", "replace").casefold() for flag in stored[int(ref.uid)]}
        if not {SEEN.casefold(), keyword.casefold()} <= kept:
            raise RetryLater(
                f"the server did not keep the label {keyword} on mail {ref.uid}; "
                "it may not allow custom keywords in this folder",
                RETRY_AFTER_CONFIG_S,
            )

    def unlabel(self, ref: MailRef, keyword: str) -> None:
        """Take one of our keywords off a mail: a rejected mail an admin's retry turned into Jira content."""
        with _retry_later_on_failure(self.link, f"unlabel mail {ref.uid}"):
            self._client.remove_flags([int(ref.uid)], [keyword])

    def probe(self) -> None:
        """List the folder and STORE our labels on a UID that cannot exist, which RFC 3501 6.4.8 ignores;
        PERMANENTFLAGS (RFC 3501 7.1) must allow our keywords or new ones (\\*)."""
        with _retry_later_on_failure(self.link, "probe the folder"):
            permanent = self._client.select_folder(self.link.folder).get(b"PERMANENTFLAGS", ())
            self.unhandled()
            self._client.add_flags([MAX_UID], [self.link.processed_label, self.link.rejected_label], silent=True)
        kept = {flag.decode("ascii", "replace").casefold() for flag in permanent}
        missing = [label for label in (self.link.processed_label, self.link.rejected_label)
                   if label.casefold() not in kept]
        if "\\*" not in kept and missing:
            raise RetryLater(f"{self.link.folder} does not keep the labels {', '.join(missing)} "
                             "(no \\* in PERMANENTFLAGS)", RETRY_AFTER_CONFIG_S)

    def close(self) -> None:
        """Log out; never CLOSE or EXPUNGE, which would remove mail others marked \\Deleted (RFC 3501 6.4.2)."""
        try:
            self._client.logout()
        except (imaplib.IMAP4.error, OSError) as exc:
            log.debug("logout failed mailbox=%s: %s", self.link.id, exc)
            _discard(self._client)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _summary(self) -> str:
        """One paragraph for the admin: greeting, capabilities, folder size, unhandled count."""
        greeting = GREETING_PREFIX.sub(b"", self._client.welcome or b"").decode("ascii", "replace").strip()
        capabilities = " ".join(cap.decode("ascii", "replace") for cap in self._client.capabilities())
        # RFC 3501 6.3.10: STATUS should not be asked of the selected folder; SELECT again tells EXISTS.
        total = self._client.select_folder(self.link.folder)[b"EXISTS"]
        return (
            f"Connected to {self.link.host}:{self.link.port} ({self.link.security}); "
            f"greeting: {greeting}; capabilities: {capabilities}; "
            f"folder {self.link.folder}: {total} mails, {len(self.unhandled())} unhandled."
        )


def test_connection(link: Link, cafile: str | None = None) -> str:
    """Connect, log in and count unhandled mail, for the admin's "test the link" button."""
    with ImapMailbox.connect(link, cafile=cafile) as mailbox, _retry_later_on_failure(link, "read the folder status"):
        return mailbox._summary()


def _received(item: dict[bytes, Any]) -> datetime:
    """INTERNALDATE, aware; IMAPClient gives local time without a zone unless told otherwise."""
    when: datetime = item[b"INTERNALDATE"]
    return when.astimezone(UTC)


def _open(link: Link, cafile: str | None) -> IMAPClient:
    """A connected client, encrypted as the link says."""
    context = ssl.create_default_context(cafile=cafile)
    if link.security is Security.SSL:
        return IMAPClient(link.host, port=link.port, ssl=True, ssl_context=context, timeout=TIMEOUT_S)
    # IMAPClient defaults to implicit TLS; plain and STARTTLS ports must say ssl=False.
    client = IMAPClient(link.host, port=link.port, ssl=False, timeout=TIMEOUT_S)
    if link.security is Security.STARTTLS:
        try:
            client.starttls(context)
        except BaseException:
            _discard(client)
            raise
    return client


def _discard(client: IMAPClient) -> None:
    """Close the socket after a failure; it may be closed already, which must not hide that failure."""
    with suppress(OSError):
        client.shutdown()


@contextmanager
def _retry_later_on_failure(link: Link, action: str) -> Iterator[None]:
    """Turn socket, TLS, login and protocol errors into RetryLater with a plain-language detail."""
    where = f"{link.host}:{link.port}"
    failed = f"could not {action}:"
    with network_errors_as_retry(link, action):
        try:
            yield
        except LoginError as exc:
            detail = f"{failed} {where} refused the login of {link.username} ({_reply(exc, link)})"
            raise RetryLater(detail, RETRY_AFTER_CONFIG_S) from exc
        except imaplib.IMAP4.readonly as exc:  # a subclass of abort: the server said [READ-ONLY] (RFC 3501 7.1)
            detail = (f"{failed} folder {link.folder} on {where} is read-only for {link.username}; every mail "
                      "handled must be labelled, so none is handled until the folder is writable (check its ACL)")
            raise RetryLater(detail, RETRY_AFTER_CONFIG_S) from exc
        except imaplib.IMAP4.abort as exc:
            detail = f"{failed} the connection to {where} was lost ({_reply(exc, link)})"
            raise RetryLater(detail, RETRY_AFTER_S) from exc
        except imaplib.IMAP4.error as exc:
            raise RetryLater(f"{failed} {where} answered with an error ({_reply(exc, link)})", RETRY_AFTER_S) from exc


def _reply(exc: Exception, link: Link) -> str:
    """The server's words from an imaplib error, withheld if they would show the password."""
    text = str(exc)
    quoted = BYTES_REPR.fullmatch(text)  # imaplib passes the raw reply bytes, so str() gives "b'...'"
    text = quoted.group(2) if quoted else text
    return withhold_password(text, link)


# RFC 2177: a client should re-issue IDLE at least every 29 minutes, or the server may log it out.
IDLE_RENEW_S = 25 * 60
IDLE_TICK_S = 1.0  # how often an IDLE wait looks up from the socket to see whether it should stop
NOOP_INTERVAL_S = 5.0  # RFC 3501 6.1.2: NOOP is how a client without IDLE polls for new mail


class ImapWatch:
    """A kept session with the link's folder examined read-only, that tells when new mail arrives:
    by IDLE (RFC 2177) where the server offers it, else by NOOP every few seconds."""

    def __init__(self, mailbox: ImapMailbox) -> None:
        self.link = mailbox.link
        self._mailbox = mailbox
        self._client = mailbox._client
        self.uses_idle = bool(self._client.has_capability("IDLE"))

    @classmethod
    def connect(cls, link: Link, cafile: str | None = None, store: LinkStore | None = None) -> ImapWatch:
        mailbox = ImapMailbox.connect(link, cafile=cafile, store=store)
        try:
            with _retry_later_on_failure(link, "examine the folder"):
                # EXAMINE: the watch never changes the folder, not even \Recent (RFC 3501 6.3.2).
                mailbox._client.select_folder(link.folder, readonly=True)
                return cls(mailbox)
        except BaseException:
            mailbox.close()
            raise

    def wait_for_mail(self, seconds: float, stopping: Event) -> bool:
        """Up to `seconds`: True as soon as the server announces new mail (EXISTS or RECENT), False when
        the time is up or `stopping` is set. A lost connection raises RetryLater."""
        deadline = time.monotonic() + seconds
        with _retry_later_on_failure(self.link, "wait for new mail"):
            if not self.uses_idle:
                while not stopping.wait(min(NOOP_INTERVAL_S, max(0.0, deadline - time.monotonic()))):
                    if _announces_mail(self._client.noop()[1]):
                        return True
                    if time.monotonic() >= deadline:
                        return False
                return False
            self._client.idle()
            news = False
            while not news and not stopping.is_set() and (left := deadline - time.monotonic()) > 0:
                tick = min(IDLE_TICK_S, left)
                began = time.monotonic()
                responses = self._client.idle_check(timeout=tick)
                news = _announces_mail(responses)
                if not responses and time.monotonic() - began < tick * 0.9:
                    # The socket was readable yet held no whole line: most often the server closed it, which
                    # idle_check does not raise. Ending IDLE finds out, raising if the connection is gone.
                    break
            return _announces_mail(self._client.idle_done()[1]) or news

    def close(self) -> None:
        self._mailbox.close()


def _announces_mail(responses: list[tuple[object, ...]]) -> bool:
    """Untagged "* n EXISTS" or "* n RECENT" (RFC 3501 7.3.1, 7.3.2): mail was added to the folder."""
    return any(len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT") for response in responses)
