"""Exchange Online mailboxes over Microsoft Graph: list unread mail, fetch its MIME, mark and categorise it
when Jira has it, and send mail from the mailbox.

Sign-in is app-only (client credentials) with the Mail.ReadWrite application permission (Mail.Send
to send); the calls are the documented v1.0 message operations (learn.microsoft.com/graph/api/resources/message).
"""
from __future__ import annotations

import base64
import email
import email.policy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from email.message import Message
from typing import Any, Self
from urllib.parse import quote, urlsplit

import requests

from plugin.domain import Link, MailRef, Outcome, RawMail
from plugin.errors import RetryLater
from plugin.mailboxes.network import RETRY_AFTER_CONFIG_S, RETRY_AFTER_S, TIMEOUT_S, http_session
from plugin.mailboxes.oauth import GRAPH_SCOPE, app_token

log = logging.getLogger(__name__)

GRAPH_URL = "https://graph.microsoft.com"
PAGE_SIZE = 50
PROBE_ID = "jsm-mail-probe-no-such-message"
# Message has no size property; PidTagMessageSize (0x0E08) is read as a single-value extended
# property (learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get).
SIZE_PROPERTY = "Integer 0x0E08"
LISTED = "$select=id,categories,receivedDateTime"
# Well-known folder names Graph accepts in place of an id (learn.microsoft.com/graph/api/resources/mailfolder).
WELL_KNOWN = {"inbox": "inbox", "archive": "archive", "junkemail": "junkemail", "junk email": "junkemail"}
# A request over 4 MB is refused with 413 (learn.microsoft.com/graph/api/user-sendmail, "Limitations");
# attachments from 3 MB go by upload session in pieces of at most 4 MB
# (learn.microsoft.com/graph/outlook-large-attachments); 3 MB pieces keep a margin.
REQUEST_LIMIT_BYTES = 4 * 1024 * 1024
UPLOAD_SESSION_BYTES = 3 * 1024 * 1024
UPLOAD_CHUNK_BYTES = 3 * 1024 * 1024


class SendRefused(Exception):
    """Graph refused a mail for good (400, 413): sending it again gets the same answer."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class GraphMailbox:
    """One mailbox of an Exchange Online tenant, read with an app-only token, its folder resolved."""

    def __init__(self, link: Link, session: requests.Session, folder_id: str) -> None:
        self.link = link
        self._session = session
        self._folder_id = folder_id
        self._categories: dict[str, list[str]] = {}

    @classmethod
    def connect(cls, link: Link, cafile: str | None = None) -> GraphMailbox:
        """Get a token and resolve the folder; a refused token is an authentication error on the link."""
        session = http_session(cafile)
        token = app_token(link, GRAPH_SCOPE, cafile)
        session.headers["Authorization"] = f"Bearer {token}"
        session.headers["Accept"] = "application/json"
        mailbox = cls(link, session, "")
        try:
            mailbox._folder_id = mailbox._find_folder(link.folder)
        except BaseException:
            session.close()
            raise
        return mailbox

    def unhandled(self) -> list[MailRef]:
        """Unread messages without our categories, oldest first, with the size Exchange keeps.

        Every page is read before any mail is handled: marking mail read while paging an
        `isRead eq false` query would shift the pages and skip mail.
        """
        ours = {self.link.processed_label.casefold(), self.link.rejected_label.casefold()}
        url: str | None = (
            f"{self._user()}/mailFolders/{self._folder_id}/messages?$filter=isRead eq false&{LISTED}"
            f"&$expand=singleValueExtendedProperties($filter=id eq '{SIZE_PROPERTY}')&$top={PAGE_SIZE}")
        messages: list[dict[str, Any]] = []
        while url:
            page = self._json("GET", url, "list unread mail")
            messages += page.get("value", [])
            url = page.get("@odata.nextLink")
        refs = []
        # Mail received before the link's first-import time is left alone; ISO 8601 UTC times compare as text.
        since = self.link.import_since
        first = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if since else ""
        # ISO 8601 UTC timestamps sort as text; $orderby together with $filter is refused unless it
        # names the filtered property first, so the order is made here.
        for message in sorted(messages, key=lambda m: (m.get("receivedDateTime") or "", m["id"])):
            categories = list(message.get("categories") or [])
            # Category names compare case-insensitively, as in Outlook.
            if ours & {c.casefold() for c in categories} or (message.get("receivedDateTime") or first) < first:
                continue
            self._categories[message["id"]] = categories
            refs.append(MailRef(self.link.id, message["id"], _size(message)))
        return refs

    def fetch(self, ref: MailRef) -> RawMail:
        """The MIME content by GET .../$value (learn.microsoft.com/graph/outlook-get-mime-message); read state stays."""
        response = self._call("GET", f"{self._user()}/messages/{_segment(ref.uid)}/$value",
                              f"fetch mail {_short(ref.uid)}", missing_ok=True)
        if response is None:
            detail = f"mail {_short(ref.uid)} is no longer in {self.link.folder}: another client moved or deleted it"
            raise RetryLater(detail, RETRY_AFTER_S)
        return RawMail(ref, response.content)

    def headers(self, ref: MailRef) -> bytes | None:
        """The header section from internetMessageHeaders, for mail too large to download."""
        response = self._call("GET", f"{self._user()}/messages/{_segment(ref.uid)}?$select=internetMessageHeaders",
                              f"fetch the headers of mail {_short(ref.uid)}", missing_ok=True)
        if response is None:
            return None
        fields = response.json().get("internetMessageHeaders") or []
        return "".join(f"{f['name']}: {f['value']}\r\n" for f in fields).encode("utf-8")

    def label(self, ref: MailRef, outcome: Outcome) -> None:
        """Mark a finally handled message read and add the processed or rejected category by PATCH."""
        if not outcome.state.is_final:
            return
        category = self.link.rejected_label if outcome.state.labels_as_rejected else self.link.processed_label
        categories = self._categories.get(ref.uid)
        if categories is None:
            categories = self._current_categories(ref)
            if categories is None:
                log.info("label skipped mailbox=%s message=%s: no longer in %s", self.link.id, _short(ref.uid),
                         self.link.folder)
                return
        if category.casefold() not in {c.casefold() for c in categories}:
            categories = [*categories, category]
        # PATCH sends only the properties to change (learn.microsoft.com/graph/api/message-update).
        response = self._call("PATCH", f"{self._user()}/messages/{_segment(ref.uid)}",
                              f"label mail {_short(ref.uid)}", json={"isRead": True, "categories": categories},
                              missing_ok=True)
        if response is None:
            log.info("label skipped mailbox=%s message=%s: deleted meanwhile", self.link.id, _short(ref.uid))
            return
        self._categories[ref.uid] = categories

    def send(self, mime: bytes) -> None:
        """Send a whole MIME mail from this mailbox by sendMail, base64 in a text/plain body; Exchange keeps
        the copy in Sent Items (learn.microsoft.com/graph/api/user-sendmail, graph/outlook-send-mime-message).
        A mail too large for one request goes as a draft with its attachments uploaded one by one."""
        body = base64.b64encode(mime)
        if len(body) > REQUEST_LIMIT_BYTES:
            self._send_large(mime)
            return
        with _retry_later_on_failure(self.link, "send mail"):
            response = self._session.post(f"{self._user()}/sendMail", data=body,
                                          headers={"Content-Type": "text/plain"}, timeout=TIMEOUT_S)
        # 202 Accepted: Exchange took the mail. 400 (the MIME content refused) and 413 (too large) stay so.
        _check_sent(response, self.link, "send mail")

    def _send_large(self, mime: bytes) -> None:
        """learn.microsoft.com/graph/outlook-large-attachments: the mail without its attachments as a MIME
        draft, each attachment added (under 3 MB by POST, larger by an upload session), then the draft sent.
        A draft left by a failure is deleted, so the next attempt starts afresh."""
        text, attachments = split_attachments(mime)
        draft = base64.b64encode(text)
        if len(draft) > REQUEST_LIMIT_BYTES:
            raise SendRefused(f"Microsoft Graph refused the mail: its text alone is {len(text) // 1024} KB, over the "
                              f"{REQUEST_LIMIT_BYTES // (1024 * 1024)} MB a request may carry")
        with _retry_later_on_failure(self.link, "create the draft"):
            response = self._session.post(f"{self._user()}/messages", data=draft,
                                          headers={"Content-Type": "text/plain"}, timeout=TIMEOUT_S)
        _check_sent(response, self.link, "create the draft")
        message = f"{self._user()}/messages/{_segment(response.json()['id'])}"
        try:
            for attachment in attachments:
                self._attach(message, attachment)
            with _retry_later_on_failure(self.link, "send the draft"):
                sent = self._session.post(f"{message}/send", data=b"", timeout=TIMEOUT_S)
            _check_sent(sent, self.link, "send the draft")
        except BaseException:
            try:
                with _retry_later_on_failure(self.link, "delete the unsent draft"):
                    self._session.delete(message, timeout=TIMEOUT_S)
            except RetryLater as left:  # the draft stays in Drafts; the mail itself is sent again later
                log.warning("draft left mailbox=%s: %s", self.link.id, left.detail)
            raise

    def _attach(self, message: str, attachment: Attachment) -> None:
        item: dict[str, str | bool] = {"name": attachment.name, "contentType": attachment.content_type,
                                       "isInline": attachment.inline}
        if attachment.content_id:
            item["contentId"] = attachment.content_id
        if len(attachment.data) < UPLOAD_SESSION_BYTES:
            # learn.microsoft.com/graph/api/message-post-attachments: a fileAttachment with its bytes in base64.
            with _retry_later_on_failure(self.link, f"attach {attachment.name}"):
                response = self._session.post(f"{message}/attachments", timeout=TIMEOUT_S, json={
                    "@odata.type": "#microsoft.graph.fileAttachment", **item,
                    "contentBytes": base64.b64encode(attachment.data).decode("ascii")})
            _check_sent(response, self.link, f"attach {attachment.name}")
            return
        # learn.microsoft.com/graph/api/attachment-createuploadsession: the session's URL is pre-authenticated,
        # so the PUTs carry no Authorization header; each carries up to 4 MB of the file and its Content-Range.
        with _retry_later_on_failure(self.link, f"upload {attachment.name}"):
            response = self._session.post(f"{message}/attachments/createUploadSession", timeout=TIMEOUT_S, json={
                "AttachmentItem": {"attachmentType": "file", "size": len(attachment.data), **item}})
        _check_sent(response, self.link, f"upload {attachment.name}")
        upload_url = response.json()["uploadUrl"]
        total = len(attachment.data)
        # Without the session's bearer token, with its TLS trust; the adapter stays the session's to close.
        uploader = requests.Session()
        uploader.mount(upload_url, self._session.get_adapter(upload_url))
        for start in range(0, total, UPLOAD_CHUNK_BYTES):
            chunk = attachment.data[start:start + UPLOAD_CHUNK_BYTES]
            with _retry_later_on_failure(self.link, f"upload {attachment.name}"):
                put = uploader.put(upload_url, data=chunk, timeout=TIMEOUT_S, headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{total}"})
            _check_sent(put, self.link, f"upload {attachment.name}")

    def was_sent(self, message_id: str) -> bool:
        """Whether Sent Items holds a mail with this Message-ID (internetMessageId, as in the header)."""
        literal = f"<{message_id}>".replace("'", "''")  # OData string literals double the quote
        page = self._json("GET", f"{self._user()}/mailFolders/sentitems/messages?"
                                 f"$filter=internetMessageId eq '{literal}'&$select=id", "search Sent Items")
        return bool(page.get("value"))

    def probe(self) -> None:
        """List the folder and PATCH categories of a message id that cannot exist: 404 means the app may
        write (Mail.ReadWrite), 403 that it may only read."""
        self.unhandled()
        self._call("PATCH", f"{self._user()}/messages/{PROBE_ID}", "write a label",
                   json={"categories": [self.link.processed_label]}, missing_ok=True)

    def close(self) -> None:
        """Close the HTTP session; Graph has no logout."""
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _user(self) -> str:
        base = (self.link.host if urlsplit(self.link.host).scheme else GRAPH_URL).rstrip("/")
        return f"{base}/v1.0/users/{_segment(self.link.address or self.link.username)}"

    def _find_folder(self, name: str) -> str:
        """A well-known folder name, else a folder of that display name under the inbox or the top of the mailbox."""
        if name.casefold() in WELL_KNOWN:
            self._json("GET", f"{self._user()}/mailFolders/{WELL_KNOWN[name.casefold()]}?$select=id", "connect")
            return WELL_KNOWN[name.casefold()]
        escaped = name.replace("'", "''")  # OData string literals double the quote
        for parent in ("mailFolders/inbox/childFolders", "mailFolders"):
            page = self._json("GET", f"{self._user()}/{parent}?$filter=displayName eq '{escaped}'&$select=id",
                              "connect")
            if page.get("value"):
                return str(page["value"][0]["id"])
        raise RetryLater(f"could not connect: the mailbox of {self.link.address or self.link.username} has no "
                         f"folder named {name!r} under the inbox or the top of the mailbox", RETRY_AFTER_CONFIG_S)

    def _current_categories(self, ref: MailRef) -> list[str] | None:
        response = self._call("GET", f"{self._user()}/messages/{_segment(ref.uid)}?$select=categories",
                              f"read the categories of mail {_short(ref.uid)}", missing_ok=True)
        return None if response is None else list(response.json().get("categories") or [])

    def _json(self, method: str, url: str, action: str) -> dict[str, Any]:
        response = self._call(method, url, action)
        assert response is not None
        body = response.json()
        if not isinstance(body, dict):
            raise RetryLater(f"could not {action}: Graph answered {type(body).__name__}, not an object", RETRY_AFTER_S)
        return body

    def _call(self, method: str, url: str, action: str, *, json: Any = None,
              missing_ok: bool = False) -> requests.Response | None:
        with _retry_later_on_failure(self.link, action):
            response = self._session.request(method, url, json=json, timeout=TIMEOUT_S)
        if response.status_code == 404 and missing_ok:
            return None
        if response.ok:
            return response
        raise _refusal(response, self.link, action)


@dataclass(frozen=True)
class Attachment:
    """A file part taken out of a mail too large to send in one request."""

    name: str
    content_type: str
    data: bytes
    inline: bool
    content_id: str


def split_attachments(mime: bytes) -> tuple[bytes, list[Attachment]]:
    """The mail without its file parts, and those parts; the headers (Message-ID, In-Reply-To) stay in the text."""
    message = email.message_from_bytes(mime, policy=email.policy.default)
    taken: list[Attachment] = []

    def strip(part: Message) -> None:
        if not part.is_multipart() or part.get_content_type() == "message/rfc822":
            return
        children = part.get_payload()
        assert isinstance(children, list)
        for child in list(children):
            if not child.is_multipart() and child.get_filename():
                data = child.get_payload(decode=True)
                taken.append(Attachment(str(child.get_filename()), child.get_content_type(),
                                        data if isinstance(data, bytes) else b"",
                                        child.get_content_disposition() == "inline",
                                        str(child.get("Content-ID", "")).strip().strip("<>")))
                children.remove(child)  # the multipart's own list of parts
            else:
                strip(child)

    strip(message)
    return message.as_bytes(), taken


def _check_sent(response: requests.Response, link: Link, action: str) -> None:
    """A refusal that stays (400 the content, 413 too large) is final; others wait for a retry."""
    if response.status_code in (400, 413):
        raise SendRefused(f"Microsoft Graph refused the mail: {_error_words(response)}")
    if not response.ok:
        raise _refusal(response, link, action, permission="Mail.Send")


def _size(message: dict[str, Any]) -> int | None:
    for prop in message.get("singleValueExtendedProperties") or []:
        if str(prop.get("id", "")).casefold() == SIZE_PROPERTY.casefold():
            return int(prop["value"])
    return None


def _segment(value: str) -> str:
    """A path segment: Graph ids are base64 with "/" and "+" in them, addresses have "@"."""
    return quote(value, safe="@")


def _short(message_id: str) -> str:
    """Graph ids are ~150 characters; the tail tells them apart in logs."""
    return message_id if len(message_id) <= 16 else f"...{message_id[-12:]}"


def _error_words(response: requests.Response) -> str:
    """An error answer's status, code and message (learn.microsoft.com/graph/errors)."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    return f"{response.status_code} {error.get('code', response.reason)}: {error.get('message', '')}".strip(": ")


def _refusal(response: requests.Response, link: Link, action: str, permission: str = "Mail.ReadWrite") -> RetryLater:
    """An error answer in plain words; throttling waits as long as Graph says."""
    failed = f"could not {action}:"
    words = _error_words(response)
    if response.status_code in (429, 503, 504):
        # learn.microsoft.com/graph/throttling: wait the seconds in Retry-After before the next request.
        after = response.headers.get("Retry-After", "")
        after_s = float(after) if after.isdigit() else RETRY_AFTER_S
        return RetryLater(f"{failed} Microsoft Graph is busy ({words}); retrying in {after_s:.0f} s", after_s)
    if response.status_code in (401, 403):
        return RetryLater(f"{failed} Microsoft Graph refused the app for {link.address or link.username} ({words}); "
                          f"check the {permission} application permission and admin consent", RETRY_AFTER_CONFIG_S)
    if response.status_code == 404:
        return RetryLater(f"{failed} Microsoft Graph does not know the mailbox {link.address or link.username} "
                          f"({words})", RETRY_AFTER_CONFIG_S)
    return RetryLater(f"{failed} Microsoft Graph answered {words}", RETRY_AFTER_S)


@contextmanager
def _retry_later_on_failure(link: Link, action: str) -> Iterator[None]:
    """Network and TLS errors as RetryLater with a plain-language detail."""
    where = urlsplit(link.host).netloc or urlsplit(GRAPH_URL).netloc
    failed = f"could not {action}:"
    try:
        yield
    except requests.exceptions.SSLError as exc:
        raise RetryLater(f"{failed} the certificate of {where} is not trusted", RETRY_AFTER_CONFIG_S) from exc
    except requests.Timeout as exc:
        raise RetryLater(f"{failed} {where} did not answer within {TIMEOUT_S:.0f} s", RETRY_AFTER_S) from exc
    except requests.RequestException as exc:
        raise RetryLater(f"{failed} network error with {where} ({type(exc).__name__})", RETRY_AFTER_S) from exc
