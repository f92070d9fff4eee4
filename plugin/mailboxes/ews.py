"""Exchange mailboxes over EWS: list unread mail, fetch it without marking it read, categorise it when Jira has it.

Sign-in to a fixed EWS URL (no autodiscover): Basic or NTLM (on-premises Exchange), or an OAuth 2.0
token from plugin.mailboxes.oauth, app-only (impersonating the mailbox) or as the mailbox user.
"""
from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import requests
from exchangelib import (
    DELEGATE,
    IMPERSONATION,
    Account,
    Build,
    Configuration,
    Credentials,
    FailFast,
    OAuth2AuthorizationCodeCredentials,
    Q,
    Version,
)
from exchangelib.credentials import BaseCredentials
from exchangelib.errors import (
    ErrorItemNotFound,
    ErrorServerBusy,
    ErrorTimeoutExpired,
    EWSError,
    MalformedResponseError,
    TransportError,
    UnauthorizedError,
)
from exchangelib.folders import SHALLOW, BaseFolder, Folder, FolderCollection
from exchangelib.items import Item, Message
from exchangelib.protocol import BaseProtocol
from exchangelib.transport import BASIC, NTLM, OAUTH2
from oauthlib.oauth2 import OAuth2Token

from plugin.domain import AuthMethod, Link, MailRef, Outcome, RawMail
from plugin.errors import RetryLater
from plugin.mailboxes.network import RETRY_AFTER_CONFIG_S, RETRY_AFTER_S, withhold_password
from plugin.mailboxes.oauth import EWS_SCOPE, LinkStore, app_token, sign_in_with_token

log = logging.getLogger(__name__)

EWS_PATH = "/EWS/Exchange.asmx"
# Exchange 2016 (15.1): fixing the version spares exchangelib a probing request per connection.
EXCHANGE_VERSION = Version(build=Build(15, 1, 2507, 6))
INBOX = "inbox"
LISTED_FIELDS = ("id", "changekey", "size", "categories")
PROBE_ID = "AAMkAGpzbS1tYWlsLXByb2JlLW5vLXN1Y2gtaXRlbQ=="  # base64 of "jsm-mail-probe-no-such-item"


class CaFileAdapter(requests.adapters.HTTPAdapter):
    """Verifies TLS against a per-endpoint CA file; exchangelib's documented hook for private CAs."""

    cafiles: ClassVar[dict[str, str]] = {}  # "scheme://host:port" -> CA file

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: bool | str = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        # The link's CA file wins over requests' default bundle (REQUESTS_CA_BUNDLE included); False stays False.
        if verify is not False:
            verify = self.cafiles.get(_origin(request.url or ""), verify)
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)


BaseProtocol.HTTP_ADAPTER_CLS = CaFileAdapter


class HideAuthorization(logging.Filter):
    """exchangelib logs each request's headers at DEBUG; the Authorization header holds the password or token."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        headers = args.get("request_headers") if isinstance(args, Mapping) else None
        if isinstance(args, Mapping) and isinstance(headers, Mapping):
            shown = {k: "(withheld)" if str(k).lower() == "authorization" else v for k, v in headers.items()}
            record.args = {**args, "request_headers": shown}
        return True


logging.getLogger("exchangelib.util").addFilter(HideAuthorization())
# requests-oauthlib logs the whole access token at DEBUG ("Adding token ... to request").
logging.getLogger("requests_oauthlib").setLevel(logging.INFO)


class EwsMailbox:
    """One Exchange account over EWS with the link's folder resolved."""

    def __init__(self, link: Link, account: Account, folder: BaseFolder) -> None:
        self.link = link
        self._account = account
        self._folder = folder

    @classmethod
    def connect(cls, link: Link, cafile: str | None = None, store: LinkStore | None = None) -> EwsMailbox:
        """Open the account and resolve its folder; creating the Account sends nothing, so this is the login."""
        endpoint = service_endpoint(link.host)
        if cafile:
            CaFileAdapter.cafiles[_origin(endpoint)] = cafile
        else:
            CaFileAdapter.cafiles.pop(_origin(endpoint), None)
        opened: list[tuple[Account, BaseFolder | None]] = []

        def open_account(token: str | None) -> None:
            credentials, auth_type, access = _sign_in(link, token)
            # FailFast: exchangelib would otherwise sleep through outages; the next poll is our retry.
            config = Configuration(service_endpoint=endpoint, credentials=credentials, auth_type=auth_type,
                                   version=EXCHANGE_VERSION, retry_policy=FailFast())
            account = Account(link.address or link.username, config=config, autodiscover=False, access_type=access)
            opened.append((account, _find_folder(account, link.folder)))

        with _retry_later_on_failure(link, "connect"):
            if link.auth is AuthMethod.OAUTH2_DELEGATED:
                sign_in_with_token(link, open_account, UnauthorizedError, cafile, store)
            elif link.auth is AuthMethod.OAUTH2_APP:
                open_account(app_token(link, EWS_SCOPE, cafile))
            else:
                open_account(None)
        account, folder = opened[-1]
        if folder is None:
            detail = (f"could not connect: the mailbox of {account.primary_smtp_address} has no folder named "
                      f"{link.folder!r} under the inbox or the top of the mailbox")
            raise RetryLater(detail, RETRY_AFTER_CONFIG_S)
        return cls(link, account, folder)

    def send(self, mime: bytes) -> None:
        """Send a whole MIME mail from this mailbox, a copy kept in Sent Items (EWS CreateItem, SendAndSaveCopy)."""
        with _retry_later_on_failure(self.link, "send"):
            Message(account=self._account, folder=self._account.sent, mime_content=mime).send_and_save()

    def unhandled(self) -> list[MailRef]:
        """Unread items without our categories, oldest received first, with the size Exchange reports."""
        ours = {self.link.processed_label.casefold(), self.link.rejected_label.casefold()}
        since = self.link.import_since
        with _retry_later_on_failure(self.link, "list unread mail"):
            items = list(self._folder.filter(is_read=False).only(*LISTED_FIELDS, "datetime_received")
                         .order_by("datetime_received"))
        # Category names compare case-insensitively, as in Outlook; checked here so FindItem needs only IsRead.
        # Mail received before the link's first-import time is left alone.
        return [
            MailRef(self.link.id, item.id, item.size)
            for item in items
            if isinstance(item, Item) and not ours & {c.casefold() for c in item.categories or ()}
            and (since is None or item.datetime_received is None or item.datetime_received >= since)
        ]

    def fetch(self, ref: MailRef) -> RawMail:
        """The item's MIME content; GetItem never changes IsRead."""
        with _retry_later_on_failure(self.link, f"fetch mail {_short(ref.uid)}"):
            item = self._get(ref, "mime_content")
        if item is None:
            detail = f"mail {_short(ref.uid)} is no longer in {self.link.folder}: another client moved or deleted it"
            raise RetryLater(detail, RETRY_AFTER_S)
        return RawMail(ref, item.mime_content)

    def headers(self, ref: MailRef) -> bytes | None:
        """Not read over EWS yet: a mail too large to download is logged without its sender."""
        return None

    def label(self, ref: MailRef, outcome: Outcome) -> None:
        """Mark a finally handled item read and add the processed or rejected category; leave the rest."""
        if not outcome.state.is_final:
            return
        category = self.link.rejected_label if outcome.state.labels_as_rejected else self.link.processed_label
        with _retry_later_on_failure(self.link, f"label mail {_short(ref.uid)}"):
            item = self._get(ref, "categories")
            if item is None:
                log.info("label skipped mailbox=%s item=%s: no longer in %s", self.link.id, _short(ref.uid),
                         self.link.folder)
                return
            categories = item.categories or []
            item.is_read = True
            if category.casefold() not in {c.casefold() for c in categories}:
                item.categories = [*categories, category]
            try:
                item.save(update_fields=["is_read", "categories"])
            except ErrorItemNotFound:
                log.info("label skipped mailbox=%s item=%s: deleted meanwhile", self.link.id, _short(ref.uid))

    def probe(self) -> None:
        """List the folder and UpdateItem the categories of an item id that cannot exist: ErrorItemNotFound
        means the sign-in may write, ErrorAccessDenied that it may not."""
        self.unhandled()
        item = Message(account=self._account, folder=self._folder, id=PROBE_ID, changekey=PROBE_ID)
        item.categories = [self.link.processed_label]
        with _retry_later_on_failure(self.link, "write a label"):
            try:
                item.save(update_fields=["categories"])
            except ErrorItemNotFound:
                return

    def close(self) -> None:
        """Close the HTTP sessions; EWS has no logout."""
        self._account.protocol.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, ref: MailRef, field: str) -> Item | None:
        """One item with one field by GetItem, or None when it was deleted meanwhile."""
        # exchangelib drops an id answered with ErrorItemNotFound from the results (it assumes a deletion).
        found = [item for item in self._account.fetch(ids=[(ref.uid, None)], folder=self._folder,
                                                      only_fields=[field])
                 if isinstance(item, Item)]
        return found[0] if found else None


class GivenToken(OAuth2AuthorizationCodeCredentials):
    """An access token from plugin.mailboxes.oauth; exchangelib uses it as it is and never fetches its own."""

    def refresh(self, session: Any) -> None:
        raise UnauthorizedError("the access token was refused")


def _sign_in(link: Link, token: str | None) -> tuple[BaseCredentials, str, str]:
    """exchangelib credentials, auth type and access type for the link's sign-in."""
    if token is None:
        auth_type = NTLM if link.auth is AuthMethod.NTLM else BASIC
        return Credentials(link.username, link.password.reveal()), auth_type, DELEGATE
    credentials = GivenToken(client_id=link.oauth.client_id, tenant_id=link.oauth.tenant_id,
                             access_token=OAuth2Token({"access_token": token, "token_type": "Bearer"}))
    # App-only tokens act for no user: EWS needs ExchangeImpersonation of the mailbox
    # (learn.microsoft.com/exchange/client-developer/exchange-web-services/
    # how-to-authenticate-an-ews-application-by-using-oauth).
    return credentials, OAUTH2, IMPERSONATION if link.auth is AuthMethod.OAUTH2_APP else DELEGATE


def service_endpoint(host: str) -> str:
    """The EWS URL: the link's host as given when it is a URL, else Exchange's standard path on HTTPS."""
    return host if urlsplit(host).scheme in ("http", "https") else f"https://{host}{EWS_PATH}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"


def _short(item_id: str) -> str:
    """EWS item ids are ~150 characters of base64; the tail tells them apart in logs."""
    return item_id if len(item_id) <= 16 else f"...{item_id[-12:]}"


def _find_folder(account: Account, name: str) -> BaseFolder | None:
    """The distinguished inbox for "INBOX", else a folder of that name under the inbox or the top of the mailbox."""
    if name.casefold() == INBOX:
        return account.inbox
    # msgfolderroot is "Top of Information Store", the parent of the folders users see (EWS DistinguishedFolderId).
    for parent in (account.inbox, account.msg_folder_root):
        for folder in FolderCollection(account=account, folders=[parent]).find_folders(q=Q(name=name), depth=SHALLOW):
            if isinstance(folder, Folder):
                return folder
    return None


@contextmanager
def _retry_later_on_failure(link: Link, action: str) -> Iterator[None]:
    """Turn exchangelib and requests errors into RetryLater with a plain-language detail."""
    endpoint = service_endpoint(link.host)
    where = urlsplit(endpoint).netloc
    failed = f"could not {action}:"
    try:
        yield
    except UnauthorizedError as exc:
        raise RetryLater(f"{failed} {where} refused the login of {link.username}", RETRY_AFTER_CONFIG_S) from exc
    except ErrorServerBusy as exc:
        # exchangelib re-raises HTTP 503, timeouts and overload errors as ErrorServerBusy with its own delay.
        if isinstance(exc.__context__, EWSError):
            detail = f"{failed} {where} is temporarily unavailable ({_words(exc.__context__)})"
            raise RetryLater(detail, RETRY_AFTER_S) from exc
        # EWS throttling: Exchange says how long to back off (BackOffMilliseconds in the fault's MessageXml).
        after_s = exc.back_off or RETRY_AFTER_S
        raise RetryLater(f"{failed} {where} is busy; retrying in {after_s:.0f} s", after_s) from exc
    except (ErrorTimeoutExpired, TransportError, requests.RequestException, OSError) as exc:
        cause = _network_cause(exc)
        if cause is None and isinstance(exc, MalformedResponseError):
            detail = f"{failed} {endpoint} did not answer like an EWS server; check the URL"
            raise RetryLater(detail, RETRY_AFTER_CONFIG_S) from exc
        if cause is None:
            detail = f"{failed} {where} answered with an error ({withhold_password(_words(exc), link)})"
            raise RetryLater(detail, RETRY_AFTER_S) from exc
        raise _network_retry(cause, failed, where) from exc
    except EWSError as exc:
        detail = f"{failed} {where} answered with an error ({withhold_password(_words(exc), link)})"
        raise RetryLater(detail, RETRY_AFTER_S) from exc


def _network_cause(exc: BaseException) -> OSError | None:
    """The socket or TLS error under exchangelib's, requests' and urllib3's wrappers, if there is one."""
    pending, seen = [exc], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        # requests' exceptions are OSErrors too; the one we want is the socket's or ssl's own.
        if isinstance(current, OSError) and not isinstance(current, requests.RequestException):
            return current
        # exchangelib re-raises without "from", requests passes urllib3's error as an argument,
        # urllib3's MaxRetryError keeps the real error in .reason.
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        pending += [e for e in linked if isinstance(e, BaseException)]
    return None


def _network_retry(cause: OSError, failed: str, where: str) -> RetryLater:
    """A socket or TLS error in plain words."""
    if isinstance(cause, ssl.SSLCertVerificationError):
        return RetryLater(f"{failed} the certificate of {where} is not trusted ({cause.verify_message})",
                          RETRY_AFTER_CONFIG_S)
    if isinstance(cause, ssl.SSLError):
        detail = f"{failed} TLS with {where} failed ({cause.reason or cause}); check the URL's scheme and port"
        return RetryLater(detail, RETRY_AFTER_CONFIG_S)
    if isinstance(cause, socket.gaierror):
        return RetryLater(f"{failed} the host name in {where} was not found", RETRY_AFTER_S)
    if isinstance(cause, ConnectionRefusedError):
        return RetryLater(f"{failed} {where} refused the connection; is the URL right?", RETRY_AFTER_S)
    if isinstance(cause, TimeoutError):
        return RetryLater(f"{failed} {where} did not answer in time", RETRY_AFTER_S)
    return RetryLater(f"{failed} network error with {where} ({cause.strerror or cause})", RETRY_AFTER_S)


def _words(exc: BaseException) -> str:
    """An exception's message with its class name, for the admin."""
    return f"{type(exc).__name__}: {exc}"
