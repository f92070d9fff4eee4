"""Everything we ask of Jira, behind one typed interface; the only module that imports `jira`."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
import math
from typing import Any, Callable, Iterator, Protocol, Sequence, TypeVar
from urllib.parse import quote

import jira
import requests
from jira.exceptions import JIRAError

from plugin.domain import Address, Attachment, Secret
from plugin.errors import MailRejected, RejectReason, RetryLater
from plugin.outbound.model import JiraAttachment, JiraComment, OutboundRequest, UpdatedIssue

log = logging.getLogger(__name__)
T = TypeVar("T")

LEDGER_PROPERTY = "jsm-mail"  # issue entity property {"ledger": [...ledger keys...]}
JSM = "/rest/servicedeskapi"
PLATFORM = "/rest/api/2"
DEFAULT_RETRY_S = 60.0
CONFIG_RETRY_S = 300.0  # a credentials or settings problem: someone has to fix it first
PAGE_SIZE = 50
MAX_FILES_PER_UPLOAD = 60  # JSM REST docs, attachTemporaryFile: 413 above 60 files


@dataclass(frozen=True, slots=True)
class IssueRef:
    key: str
    id: str


@dataclass(frozen=True, slots=True)
class RequestTypeInfo:
    id: str
    name: str
    field_ids: frozenset[str]

    @property
    def email_suitable(self) -> bool:
        """Mail fills summary and description; a request type without both cannot take mail."""
        return {"summary", "description"} <= self.field_ids


@dataclass(frozen=True, slots=True)
class RequestInfo:
    key: str
    id: str
    project_key: str
    reporter_email: str | None
    participant_emails: frozenset[str]
    resolved_at: datetime | None  # None while the request is open


class JiraGateway(Protocol):
    """Typed calls to Jira Service Management.

    Every method raises `RetryLater` when Jira is unreachable, answers 5xx or 429 (with
    `after_s` from Retry-After), and `MailRejected(JIRA_REFUSED, ...)` when Jira refuses the
    content itself (400). POST calls are never retried by the client library.
    """

    def server_title(self) -> str: ...

    def request_types(self, service_desk_id: str) -> list[RequestTypeInfo]: ...

    def request_type(self, service_desk_id: str, request_type_id: str) -> RequestTypeInfo: ...

    def project_key(self, service_desk_id: str) -> str: ...

    def customer_account_id(self, service_desk_id: str, address: Address, *, create: bool) -> str | None:
        """The customer's accountId; creates the customer (and adds them to the desk) when `create`."""

    def create_request(self, service_desk_id: str, request_type_id: str, summary: str,
                       description: str, reporter_account_id: str, ledger_key: str) -> IssueRef:
        """Create a customer request on behalf of the reporter; tag it with the ledger key."""

    def find_by_ledger_key(self, project_key: str, ledger_key: str) -> IssueRef | None:
        """The request or comment's issue that carries this ledger key, if Jira has one."""

    def request(self, issue_key: str) -> RequestInfo | None: ...

    def add_participants(self, issue_key: str, account_ids: Sequence[str]) -> None: ...

    def attach(self, service_desk_id: str, issue_key: str, attachments: Sequence[Attachment],
               *, public: bool = True) -> None:
        """Upload with attachTemporaryFile, then attach to the request."""

    def add_comment(self, issue_key: str, body: str, *, public: bool, ledger_key: str | None = None) -> str:
        """Add a request comment; returns its id. The ledger key is remembered on the issue."""

    def link_issues(self, inward_key: str, outward_key: str, link_type: str = "Relates") -> None: ...

    # Outbound: agents' public comments mailed to customers.

    def myself_account_id(self) -> str:
        """The account jsm-mail calls Jira as; what it writes is never mailed back."""

    def updated_requests(self, project_key: str, since: datetime, limit: int) -> list[UpdatedIssue]:
        """Requests of the project updated since then, oldest update first, at most `limit`."""

    def comments_since(self, issue_key: str, since: datetime) -> list[JiraComment]:
        """The request's comments created since then, oldest first, public and internal."""

    def comment(self, issue_key: str, comment_id: str) -> JiraComment | None: ...

    def outbound_request(self, issue_key: str) -> OutboundRequest | None:
        """Summary, reporter, participants and attachments: what a mail about the request needs."""

    def attachment_content(self, attachment_id: str) -> bytes: ...


class RestJira:
    """JiraGateway over Jira Cloud's REST APIs, through the pycontribs `jira` client."""

    def __init__(self, url: str, email: str, api_token: Secret, timeout_s: float = 30.0) -> None:
        self._url = url.rstrip("/")
        self._email = email
        self._token = api_token
        self._timeout_s = timeout_s
        self._jira: jira.JIRA | None = None

    def __repr__(self) -> str:
        return f"RestJira(url={self._url!r}, email={self._email!r})"

    # -- the Protocol

    def server_title(self) -> str:
        info = self._call("GET", f"{PLATFORM}/serverInfo")
        return info.get("serverTitle") or self._url

    def project_key(self, service_desk_id: str) -> str:
        desk = self._call("GET", f"{JSM}/servicedesk/{_seg(service_desk_id)}", none_on=(404,))
        if desk is None:
            raise RetryLater(f"Jira has no service desk {service_desk_id}: check the link's settings",
                             CONFIG_RETRY_S)
        return desk["projectKey"]

    def request_types(self, service_desk_id: str) -> list[RequestTypeInfo]:
        path = f"{JSM}/servicedesk/{_seg(service_desk_id)}/requesttype"
        return [RequestTypeInfo(t["id"], t["name"], self._field_ids(service_desk_id, t["id"]))
                for t in self._paged(path)]

    def request_type(self, service_desk_id: str, request_type_id: str) -> RequestTypeInfo:
        path = f"{JSM}/servicedesk/{_seg(service_desk_id)}/requesttype/{_seg(request_type_id)}"
        found = self._call("GET", path, none_on=(404,))
        if found is None:
            raise RetryLater(f"Jira has no request type {request_type_id} in service desk {service_desk_id}: "
                             "check the link's settings", CONFIG_RETRY_S)
        return RequestTypeInfo(found["id"], found["name"], self._field_ids(service_desk_id, request_type_id))

    def customer_account_id(self, service_desk_id: str, address: Address, *, create: bool) -> str | None:
        """The customer's accountId; creates the customer (and adds them to the desk) when `create`."""
        account_id = self._find_account(address.address)
        if not create:
            return account_id
        account_id = account_id or self._create_customer(address)
        self._add_to_desk(service_desk_id, account_id)
        return account_id

    def create_request(self, service_desk_id: str, request_type_id: str, summary: str,
                       description: str, reporter_account_id: str, ledger_key: str) -> IssueRef:
        """Create a customer request on behalf of the reporter; tag it with the ledger key."""
        # JSM REST docs, createCustomerRequest: ids are strings (RequestCreateDTO). The jira
        # client's create_customer_request would send a number, or look a str up as a name.
        created = self._call("POST", f"{JSM}/request", json={
            "serviceDeskId": str(service_desk_id), "requestTypeId": str(request_type_id),
            "requestFieldValues": {"summary": summary, "description": description},
            "raiseOnBehalfOf": reporter_account_id,
        })
        ref = IssueRef(created["issueKey"], created["issueId"])
        log.info("created request issue=%s ledger_key=%s", ref.key, ledger_key)
        try:
            self._remember(ref.key, ledger_key)
        except RetryLater as later:
            # The request exists untagged: the retry finds it with requests_by_reporter_since.
            raise RetryLater(f"{ref.key} created but not yet tagged: {later.detail}", later.after_s) from None
        return ref

    def find_by_ledger_key(self, project_key: str, ledger_key: str) -> IssueRef | None:
        """The request or comment's issue that carries this ledger key, if Jira has one.

        JQL on `issue.property[...]` needs the property indexed by the app's
        `jira:entityProperty` module (Jira entity properties docs); search is eventually consistent.
        """
        jql = f"project = {_jql(project_key)} AND issue.property[{LEDGER_PROPERTY}].ledger = {_jql(ledger_key)}"
        found = next(self._search(jql, fields=("summary",)), None)
        return IssueRef(found["key"], found["id"]) if found else None

    def request(self, issue_key: str) -> RequestInfo | None:
        issue = self._call("GET", f"{PLATFORM}/issue/{_seg(issue_key)}", none_on=(404,), params={
            "fields": "project,reporter,resolutiondate,status,statuscategorychangedate"})
        if issue is None:
            return None
        fields = issue["fields"]
        participants = self._paged(f"{JSM}/request/{_seg(issue['key'])}/participant")
        return RequestInfo(
            key=issue["key"], id=issue["id"], project_key=fields["project"]["key"],
            reporter_email=(fields.get("reporter") or {}).get("emailAddress"),
            participant_emails=frozenset(p["emailAddress"] for p in participants if p.get("emailAddress")),
            resolved_at=_resolved_at(fields),
        )

    def add_participants(self, issue_key: str, account_ids: Sequence[str]) -> None:
        if account_ids:
            self._call("POST", f"{JSM}/request/{_seg(issue_key)}/participant",
                       json={"accountIds": list(account_ids)})

    def attach(self, service_desk_id: str, issue_key: str, attachments: Sequence[Attachment],
               *, public: bool = True) -> None:
        """Upload with attachTemporaryFile, then attach to the request."""
        temporary_ids: list[str] = []
        for start in range(0, len(attachments), MAX_FILES_PER_UPLOAD):
            temporary_ids += self._upload(service_desk_id, attachments[start:start + MAX_FILES_PER_UPLOAD])
        if temporary_ids:
            self._call("POST", f"{JSM}/request/{_seg(issue_key)}/attachment",
                       json={"temporaryAttachmentIds": temporary_ids, "public": public})

    def add_comment(self, issue_key: str, body: str, *, public: bool, ledger_key: str | None = None) -> str:
        """Add a request comment; returns its id. The ledger key is remembered on the issue."""
        comment = self._call("POST", f"{JSM}/request/{_seg(issue_key)}/comment",
                             json={"body": body, "public": public})
        if ledger_key:
            self._remember(issue_key, ledger_key)
        return str(comment["id"])

    def link_issues(self, inward_key: str, outward_key: str, link_type: str = "Relates") -> None:
        self._call("POST", f"{PLATFORM}/issueLink", json={
            "type": {"name": link_type}, "inwardIssue": {"key": inward_key}, "outwardIssue": {"key": outward_key}})

    # -- beyond the Protocol: crash recovery

    def ledger_keys(self, issue_key: str) -> frozenset[str]:
        """The ledger keys this issue carries in its `jsm-mail` entity property."""
        return frozenset(self._ledger(issue_key))

    def requests_by_reporter_since(self, project_key: str, account_id: str,
                                   since: datetime) -> list[tuple[IssueRef, str]]:
        """Requests (and summaries) this customer reported since then, oldest first."""
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        # JQL reads dates in the API user's time zone (JQL reference, "created"): ask from the
        # day before, then keep only what Jira's own offset-stamped `created` puts after `since`.
        day = (since - timedelta(days=1)).strftime("%Y-%m-%d")
        jql = (f"project = {_jql(project_key)} AND reporter = {_jql(account_id)} "
               f'AND created >= "{day}" ORDER BY created ASC')
        return [(IssueRef(i["key"], i["id"]), i["fields"]["summary"])
                for i in self._search(jql, fields=("summary", "created"))
                if _parse_time(i["fields"]["created"]) >= since]

    # -- helpers

    def _client(self) -> jira.JIRA:
        """The jira client, built on first use so that an unreachable Jira is a RetryLater."""
        if self._jira is None:
            # max_retries=0: ResilientSession would retry POSTs on 429/503 and create duplicates.
            # get_server_info: the client tells Cloud from DC only by serverInfo.deploymentType.
            try:
                self._jira = _translated(lambda: jira.JIRA(
                    self._url, basic_auth=(self._email, self._token.reveal()), max_retries=0,
                    get_server_info=True, timeout=self._timeout_s), "GET /serverInfo")
            except _Answered as answered:
                raise answered.error from None
        return self._jira

    def _call(self, method: str, path: str, *, none_on: tuple[int, ...] = (), **kwargs: Any) -> Any:
        """One HTTP call, errors translated: the JSON body ({} when empty), or None on a `none_on` status."""
        session = self._client()._session
        try:
            response = _translated(lambda: session.request(method, self._url + path, **kwargs), f"{method} {path}")
        except _Answered as answered:
            if answered.status in none_on:
                return None
            raise answered.error from None
        log.debug("jira %s %s -> %s", method, path, response.status_code)
        return response.json() if response.content else {}

    def _paged(self, path: str) -> Iterator[dict]:
        """Every value of a JSM paged list (start/limit/isLastPage)."""
        start = 0
        while True:
            page = self._call("GET", path, params={"start": start, "limit": PAGE_SIZE})
            yield from page.get("values", [])
            if page.get("isLastPage", True) or not page.get("values"):
                return
            start += len(page["values"])

    def _search(self, jql: str, fields: Sequence[str]) -> Iterator[dict]:
        """Issues matching JQL via GET /rest/api/2/search/jql (Cloud; the old /search is deprecated).

        Jira platform docs: without `fields` this search returns issue ids only, no keys.
        """
        params: dict[str, Any] = {"jql": jql, "maxResults": PAGE_SIZE, "fields": ",".join(fields)}
        while True:
            page = self._call("GET", f"{PLATFORM}/search/jql", params=params)
            yield from page.get("issues", [])
            if page.get("isLast", True) or not page.get("nextPageToken"):
                return
            params["nextPageToken"] = page["nextPageToken"]

    def _field_ids(self, service_desk_id: str, request_type_id: str) -> frozenset[str]:
        path = f"{JSM}/servicedesk/{_seg(service_desk_id)}/requesttype/{_seg(request_type_id)}/field"
        meta = self._call("GET", path)
        return frozenset(f["fieldId"] for f in meta.get("requestTypeFields", []) if f.get("visible", True))

    def _find_account(self, email: str) -> str | None:
        # JRACLOUD-70830: GET /rest/api/2/user/search?query=<email> finds users and portal-only
        # customers by email address. JSM's own customer search (GET /servicedesk/{id}/customer)
        # is experimental and sees only customers already added to that desk.
        users = self._call("GET", f"{PLATFORM}/user/search", params={"query": email}) or []
        exact = [u for u in users if (u.get("emailAddress") or "").lower() == email.lower()]
        if exact:
            return exact[0]["accountId"]
        # Account privacy can hide emailAddress; Jira still matched the whole address.
        if len(users) == 1 and not users[0].get("emailAddress"):
            return users[0]["accountId"]
        return None

    def _create_customer(self, address: Address) -> str:
        # JSM REST docs, createCustomer: needs the Jira Administrator global permission; with
        # strictConflictStatusCode an existing email answers 409 instead of 400.
        created = self._call("POST", f"{JSM}/customer", none_on=(409,), params={"strictConflictStatusCode": "true"},
                             json={"email": address.address, "displayName": address.name or address.address})
        if created is None:
            raise RetryLater(f"Jira has a customer {address.address} that user search does not return yet",
                             DEFAULT_RETRY_S)
        log.info("created customer account_id=%s", created["accountId"])
        return created["accountId"]

    def _add_to_desk(self, service_desk_id: str, account_id: str) -> None:
        # JSM REST docs, addCustomers: needs service desk admin and answers 204 when already added.
        # An open desk takes requests from any account, so a least-privilege API user's 403 is no stop.
        added = self._call("POST", f"{JSM}/servicedesk/{_seg(service_desk_id)}/customer", none_on=(403,),
                           json={"accountIds": [account_id]})
        if added is None:
            log.info("may not add account_id=%s to service desk %s; relying on open access",
                     account_id, service_desk_id)

    def _upload(self, service_desk_id: str, attachments: Sequence[Attachment]) -> list[str]:
        # JSM REST docs, attachTemporaryFile: multipart parts named "file", X-Atlassian-Token
        # against XSRF, X-ExperimentalApi as in the documented curl. Content-Type None lets
        # requests write the multipart boundary instead of the session's application/json.
        uploaded = self._call(
            "POST", f"{JSM}/servicedesk/{_seg(service_desk_id)}/attachTemporaryFile",
            headers={"X-Atlassian-Token": "no-check", "X-ExperimentalApi": "opt-in", "Content-Type": None},
            files=[("file", (a.filename, a.data, a.content_type)) for a in attachments])
        return [t["temporaryAttachmentId"] for t in uploaded["temporaryAttachments"]]

    def _ledger(self, issue_key: str) -> list[str]:
        path = f"{PLATFORM}/issue/{_seg(issue_key)}/properties/{LEDGER_PROPERTY}"
        found = self._call("GET", path, none_on=(404,))
        return list(((found or {}).get("value") or {}).get("ledger", []))

    def _remember(self, issue_key: str, ledger_key: str) -> None:
        """Append the ledger key to the issue's `jsm-mail` property (read, then write: PUT replaces)."""
        keys = self._ledger(issue_key)
        if ledger_key not in keys:
            self._call("PUT", f"{PLATFORM}/issue/{_seg(issue_key)}/properties/{LEDGER_PROPERTY}",
                       json={"ledger": [*keys, ledger_key]})

    # -- outbound

    def myself_account_id(self) -> str:
        """The account jsm-mail calls Jira as (GET /myself), asked once."""
        known = getattr(self, "_myself", None)
        if known is None:
            known = self._myself = str(self._call("GET", f"{PLATFORM}/myself")["accountId"])
        return known

    def updated_requests(self, project_key: str, since: datetime, limit: int) -> list[UpdatedIssue]:
        """Requests of the project updated since then, oldest update first, at most `limit`.

        A relative date (`-90m`) keeps JQL out of the API user's time zone (JQL reference,
        "updated"); Jira's offset-stamped `updated` then filters to the second.
        """
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        minutes = max(1, math.ceil((datetime.now(timezone.utc) - since).total_seconds() / 60) + 1)
        jql = f"project = {_jql(project_key)} AND updated >= -{minutes}m ORDER BY updated ASC"
        found: list[UpdatedIssue] = []
        for issue in self._search(jql, fields=("updated",)):
            updated = _parse_time(issue["fields"]["updated"])
            if updated >= since:
                found.append(UpdatedIssue(issue["key"], updated))
            if len(found) >= limit:
                break
        return found

    def comments_since(self, issue_key: str, since: datetime) -> list[JiraComment]:
        """The request's comments created since then, oldest first (newest pages read first, then stop)."""
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        found: list[JiraComment] = []
        start = 0
        while True:
            page = self._call("GET", f"{PLATFORM}/issue/{_seg(issue_key)}/comment", params={
                "orderBy": "-created", "expand": "renderedBody,properties", "startAt": start,
                "maxResults": PAGE_SIZE})
            comments = page.get("comments", [])
            for raw in comments:
                comment = _comment(issue_key, raw)
                if comment.created < since:
                    return found[::-1]
                found.append(comment)
            start += len(comments)
            if not comments or start >= page.get("total", start):
                return found[::-1]

    def comment(self, issue_key: str, comment_id: str) -> JiraComment | None:
        raw = self._call("GET", f"{PLATFORM}/issue/{_seg(issue_key)}/comment/{_seg(comment_id)}",
                         none_on=(404,), params={"expand": "renderedBody,properties"})
        return None if raw is None else _comment(issue_key, raw)

    def outbound_request(self, issue_key: str) -> OutboundRequest | None:
        """Summary, reporter, participants and attachments: what a mail about the request needs."""
        issue = self._call("GET", f"{PLATFORM}/issue/{_seg(issue_key)}", none_on=(404,), params={
            "fields": "summary,reporter,project,attachment"})
        if issue is None:
            return None
        fields = issue["fields"]
        participants = self._paged(f"{JSM}/request/{_seg(issue['key'])}/participant")
        return OutboundRequest(
            key=issue["key"], summary=fields.get("summary") or "", project_key=fields["project"]["key"],
            reporter=_person(fields.get("reporter")),
            participants=tuple(p for p in map(_person, participants) if p is not None),
            attachments=tuple(_attachment(a) for a in fields.get("attachment") or ()))

    def attachment_content(self, attachment_id: str) -> bytes:
        session = self._client()._session
        path = f"{PLATFORM}/attachment/content/{_seg(attachment_id)}"
        try:
            response = _translated(lambda: session.get(self._url + path), f"GET {path}")
        except _Answered as answered:
            raise answered.error from None
        return response.content


class _Answered(Exception):
    """Jira answered with an error status; `error` is what the rest of the product sees."""

    def __init__(self, status: int, error: Exception) -> None:
        super().__init__(status)
        self.status = status
        self.error = error


def _translated(call: Callable[[], T], what: str) -> T:
    """Run one client call; network trouble becomes RetryLater, an error status `_Answered`.

    Details come from Jira's parsed errorMessage, never `str(JIRAError)`: that carries headers.
    """
    try:
        return call()
    except JIRAError as error:
        raise _Answered(error.status_code or 0, _error_for(error, what)) from None
    except requests.RequestException as error:
        raise RetryLater(f"Jira unreachable on {what}: {type(error).__name__}", DEFAULT_RETRY_S) from None


def _error_for(error: JIRAError, what: str) -> Exception:
    status, message = error.status_code or 0, error.text or "no message"
    if status == 429 or status >= 500 or status == 0:
        return RetryLater(f"Jira answered {status or 'nothing'} to {what}: {message}", _retry_after_s(error))
    if status in (401, 403):
        return RetryLater(f"Jira authentication/permission problem ({status}) on {what}: {message}. "
                          "Check the API user's email, token and project permissions.", CONFIG_RETRY_S)
    return MailRejected(RejectReason.JIRA_REFUSED, f"Jira refused {what} ({status}): {message}")


def _retry_after_s(error: JIRAError) -> float:
    """RFC 9110 section 10.2.3: Retry-After is delay-seconds or an HTTP-date."""
    value = error.response.headers.get("Retry-After") if error.response is not None else None
    if not value:
        return DEFAULT_RETRY_S
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_S
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _seg(value: str) -> str:
    """One URL path segment."""
    return quote(str(value), safe="")


def _jql(value: str) -> str:
    """A JQL string literal (JQL reference: quote values, escape quote and backslash)."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_time(value: str) -> datetime:
    """Jira's `2024-01-05T10:00:00.000+0000`."""
    return datetime.fromisoformat(value)


def _resolved_at(fields: dict) -> datetime | None:
    if fields.get("resolutiondate"):
        return _parse_time(fields["resolutiondate"])
    category = ((fields.get("status") or {}).get("statusCategory") or {}).get("key")
    if category == "done" and fields.get("statuscategorychangedate"):
        return _parse_time(fields["statuscategorychangedate"])
    return None


def _person(user: dict | None) -> Address | None:
    """A user with an e-mail address (account privacy can hide it: then nobody to mail)."""
    if not user or not user.get("emailAddress"):
        return None
    return Address(user.get("displayName") or "", user["emailAddress"])


def _attachment(raw: dict) -> JiraAttachment:
    return JiraAttachment(id=str(raw["id"]), filename=raw.get("filename") or f"attachment-{raw['id']}",
                          size=int(raw.get("size") or 0), mime_type=raw.get("mimeType") or "application/octet-stream",
                          created=_parse_time(raw["created"]) if raw.get("created") else None,
                          author_account_id=(raw.get("author") or {}).get("accountId"),
                          url=raw.get("content") or "")


def _comment(issue_key: str, raw: dict) -> JiraComment:
    properties = {p.get("key"): p.get("value") for p in raw.get("properties") or ()}
    # Cloud says jsdPublic; Data Center marks internal comments with sd.public.comment (research 2).
    internal = bool((properties.get("sd.public.comment") or {}).get("internal"))
    body = raw.get("body")
    author = raw.get("author") or {}
    return JiraComment(
        id=str(raw["id"]), issue_key=issue_key, author_account_id=author.get("accountId"),
        author_name=author.get("displayName") or "", author_email=author.get("emailAddress"),
        created=_parse_time(raw["created"]),
        body=body if isinstance(body, str) else _adf_text(body), rendered_html=raw.get("renderedBody") or None,
        public=bool(raw.get("jsdPublic", not internal)), property_keys=frozenset(k for k in properties if k))


def _adf_text(node: Any) -> str:
    """The text of an Atlassian Document Format tree, a line per block."""
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return node.get("text", "")
    if node.get("type") == "hardBreak":
        return "\n"
    inner = "".join(_adf_text(child) for child in node.get("content") or ())
    block = node.get("type") in ("paragraph", "heading", "listItem", "codeBlock", "blockquote", "rule")
    return inner + "\n" if block else inner
