"""JiraGateway over Jira Cloud's REST APIs (JSM's servicedeskapi and the platform API)."""
from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import jira
from jira.exceptions import JIRAError
from requests.auth import AuthBase

from plugin import faults
from plugin.domain import Address, Attachment, RequestInfo, Secret
from plugin.errors import MailRejected, RetryLater
from plugin.jira.gateway import LEDGER_PROPERTY, IssueRef, Mark, RequestTypeInfo, ServiceDeskInfo
from plugin.jira.http import CONFIG_RETRY_S, DEFAULT_RETRY_S, JiraHttp, error_for
from plugin.outbound.model import JiraAttachment, JiraComment, OutboundRequest, UpdatedIssue

log = logging.getLogger(__name__)

JSM = "/rest/servicedeskapi"
PLATFORM = "/rest/api/2"
PAGE_SIZE = 50
MAX_FILES_PER_UPLOAD = 60  # JSM REST docs, attachTemporaryFile: 413 above 60 files
RECENT_COMMENTS = 100  # a retried mail's marked comment is among the newest


class RestJira:
    """Jira Cloud with an API token: every call through one JiraHttp session."""

    def __init__(self, url: str, email: str, api_token: Secret, timeout_s: float = 30.0, *,
                 auth: AuthBase | None = None) -> None:
        self._http = JiraHttp(url, email, api_token, timeout_s, auth=auth)
        self._email, self._token, self._timeout_s = email, api_token, timeout_s
        self._auth = auth
        self._myself: str | None = None

    def __repr__(self) -> str:
        return f"RestJira(url={self._http.url!r}, email={self._email!r})"

    def server_title(self) -> str:
        """Jira's own name for the site, read by the `jira` client as a login check."""
        if self._auth is not None:  # as the Forge app: the jira client knows only basic and bearer-once auth
            info = self._http.call("GET", f"{PLATFORM}/serverInfo")
            return str(info.get("serverTitle") or self._http.url)
        try:
            client = jira.JIRA(self._http.url, basic_auth=(self._email, self._token.reveal()), max_retries=0,
                               get_server_info=False, timeout=self._timeout_s)
            info = client.server_info()
        except JIRAError as error:
            if error.response is None:
                raise RetryLater("Jira answered nothing to GET /serverInfo", DEFAULT_RETRY_S) from None
            problem = error_for(error.response, "GET /serverInfo")
            if isinstance(problem, MailRejected):  # no mail is involved: a wrong URL or a site that is not Jira
                raise RetryLater(problem.detail, CONFIG_RETRY_S) from None
            raise problem from None
        except Exception as error:  # requests and socket errors, raised through the client
            raise RetryLater(f"Jira unreachable on GET /serverInfo: {type(error).__name__}", DEFAULT_RETRY_S) from None
        return str(info.get("serverTitle") or self._http.url)

    # -- service desks and request types

    def project_key(self, service_desk_id: str) -> str:
        desk = self._http.call("GET", f"{JSM}/servicedesk/{_seg(service_desk_id)}", none_on=(404,))
        if desk is None:
            raise RetryLater(f"Jira has no service desk {service_desk_id}: check the link's settings",
                             CONFIG_RETRY_S)
        return str(desk["projectKey"])

    def service_desks(self) -> list[ServiceDeskInfo]:
        return [ServiceDeskInfo(str(desk["id"]), desk.get("projectName", ""), desk.get("projectKey", ""))
                for desk in self._paged(f"{JSM}/servicedesk")]

    def request_types(self, service_desk_id: str) -> list[RequestTypeInfo]:
        path = f"{JSM}/servicedesk/{_seg(service_desk_id)}/requesttype"
        return [RequestTypeInfo(t["id"], t["name"], self._field_ids(service_desk_id, t["id"]))
                for t in self._paged(path)]

    def request_type(self, service_desk_id: str, request_type_id: str) -> RequestTypeInfo:
        self.project_key(service_desk_id)  # a missing desk is named as such, not as a missing request type
        path = f"{JSM}/servicedesk/{_seg(service_desk_id)}/requesttype/{_seg(request_type_id)}"
        found = self._http.call("GET", path, none_on=(404,))
        if found is None:
            raise RetryLater(f"Jira has no request type {request_type_id} in service desk {service_desk_id}: "
                             "check the link's settings", CONFIG_RETRY_S)
        return RequestTypeInfo(found["id"], found["name"], self._field_ids(service_desk_id, request_type_id))

    def _field_ids(self, service_desk_id: str, request_type_id: str) -> frozenset[str]:
        path = f"{JSM}/servicedesk/{_seg(service_desk_id)}/requesttype/{_seg(request_type_id)}/field"
        meta = self._http.call("GET", path)
        return frozenset(f["fieldId"] for f in meta.get("requestTypeFields", []) if f.get("visible", True))

    # -- customers

    def find_customer(self, address: str) -> str | None:
        # JRACLOUD-70830: GET /rest/api/2/user/search?query=<email> finds users and portal-only
        # customers by email address. JSM's own customer search (GET /servicedesk/{id}/customer)
        # is experimental and sees only customers already added to that desk.
        users = self._http.call("GET", f"{PLATFORM}/user/search", params={"query": address}) or []
        exact = [u for u in users if (u.get("emailAddress") or "").lower() == address.lower()]
        if exact:
            return str(exact[0]["accountId"])
        # Account privacy can hide emailAddress; Jira still matched the whole address.
        if len(users) == 1 and not users[0].get("emailAddress"):
            return str(users[0]["accountId"])
        return None

    def create_customer(self, address: Address) -> str:
        # JSM REST docs, createCustomer: needs the Jira Administrator global permission; with
        # strictConflictStatusCode an existing email answers 409 instead of 400.
        created = self._http.call("POST", f"{JSM}/customer", none_on=(409,),
                                  params={"strictConflictStatusCode": "true"},
                                  headers={"X-ExperimentalApi": "opt-in"},
                                  json={"email": address.address, "displayName": address.name or address.address})
        if created is None:
            raise RetryLater(f"Jira has a customer {address.address} that user search does not return yet",
                             DEFAULT_RETRY_S)
        log.info("created customer account_id=%s", created["accountId"])
        return str(created["accountId"])

    # -- requests

    def create_request(self, service_desk_id: str, request_type_id: str, summary: str, description: str,
                       reporter_account_id: str, participant_account_ids: Sequence[str] = ()) -> IssueRef:
        # JSM REST docs, createCustomerRequest: ids are strings (RequestCreateDTO).
        body: dict[str, Any] = {
            "serviceDeskId": str(service_desk_id), "requestTypeId": str(request_type_id),
            "requestFieldValues": {"summary": summary, "description": description},
            "raiseOnBehalfOf": reporter_account_id,
        }
        if participant_account_ids:
            body["requestParticipants"] = list(participant_account_ids)
        created = self._http.call("POST", f"{JSM}/request", json=body)
        faults.reached("jira-created")
        ref = IssueRef(str(created["issueKey"]), str(created["issueId"]))
        log.info("created request issue=%s", ref.key)
        return ref

    def find_request(self, project_key: str, reference: str) -> IssueRef | None:
        # JQL text search: the reference is one word of letters and digits, so it is one search term.
        jql = f"project = {_jql(project_key)} AND description ~ {_jql(reference)}"
        found = next(self._search(jql, fields=("summary",)), None)
        return IssueRef(str(found["key"]), str(found["id"])) if found else None

    def request(self, key_or_id: str) -> RequestInfo | None:
        found = self._http.call("GET", f"{JSM}/request/{_seg(key_or_id)}", none_on=(404,),
                                params={"expand": "participant"})
        if found is None:
            return None
        participants = (found.get("participants") or {}).get("values", [])
        status = found.get("currentStatus") or {}
        resolved_at = _epoch(status.get("statusDate")) if status.get("statusCategory") == "DONE" else None
        return RequestInfo(
            key=str(found["issueKey"]), id=str(found["issueId"]),
            reporter_email=(found.get("reporter") or {}).get("emailAddress"),
            participant_emails=frozenset(p["emailAddress"].lower() for p in participants if p.get("emailAddress")),
            resolved_at=resolved_at,
        )

    def add_participants(self, issue_key: str, account_ids: Sequence[str]) -> None:
        if account_ids:
            self._http.call("POST", f"{JSM}/request/{_seg(issue_key)}/participant",
                            json={"accountIds": list(account_ids)})

    def link_issues(self, inward_key: str, outward_key: str, link_type: str = "Relates") -> None:
        self._http.call("POST", f"{PLATFORM}/issueLink", json={
            "type": {"name": link_type}, "inwardIssue": {"key": inward_key}, "outwardIssue": {"key": outward_key}})

    # -- comments and attachments

    def add_comment(self, issue_key: str, body: str, *, public: bool, mark: Mark | None = None) -> str:
        # Platform addComment takes entity properties with the comment, so the mark exists exactly
        # when the comment does. JSM reads `sd.public.comment` {"internal": true} as internal
        # (research: jira-contract.md section 2); without it a comment is public (jsdPublic).
        properties: list[dict[str, Any]] = []
        if mark is not None:
            properties.append({"key": LEDGER_PROPERTY, "value": {"ledger": mark.ledger_key, "part": mark.part}})
        if not public:
            properties.append({"key": "sd.public.comment", "value": {"internal": True}})
        comment = self._http.call("POST", f"{PLATFORM}/issue/{_seg(issue_key)}/comment",
                                  json={"body": body, "properties": properties} if properties else {"body": body})
        faults.reached("jira-commented")
        return str(comment["id"])

    def marked_parts(self, issue_key: str, ledger_key: str) -> frozenset[str]:
        page = self._http.call("GET", f"{PLATFORM}/issue/{_seg(issue_key)}/comment", none_on=(404,), params={
            "expand": "properties", "orderBy": "-created", "maxResults": RECENT_COMMENTS})
        parts = set()
        for comment in (page or {}).get("comments", []):
            for prop in comment.get("properties") or []:
                value = prop.get("value") or {}
                if prop.get("key") == LEDGER_PROPERTY and value.get("ledger") == ledger_key:
                    parts.add(str(value.get("part", "")))
        return frozenset(parts)

    def attachment_names(self, issue_key: str) -> frozenset[tuple[str, int]]:
        issue = self._http.call("GET", f"{PLATFORM}/issue/{_seg(issue_key)}", none_on=(404,),
                                params={"fields": "attachment"})
        files = ((issue or {}).get("fields") or {}).get("attachment") or []
        return frozenset((str(f["filename"]), int(f["size"])) for f in files)

    def attach(self, service_desk_id: str, issue_key: str, attachments: Sequence[Attachment],
               *, public: bool = True) -> None:
        """Upload with attachTemporaryFile, then attach to the request."""
        temporary_ids: list[str] = []
        for start in range(0, len(attachments), MAX_FILES_PER_UPLOAD):
            temporary_ids += self._upload(service_desk_id, attachments[start:start + MAX_FILES_PER_UPLOAD])
        if temporary_ids:
            self._http.call("POST", f"{JSM}/request/{_seg(issue_key)}/attachment",
                            json={"temporaryAttachmentIds": temporary_ids, "public": public})
            faults.reached("jira-attached")

    def _upload(self, service_desk_id: str, attachments: Sequence[Attachment]) -> list[str]:
        # JSM REST docs, attachTemporaryFile: multipart parts named "file", X-Atlassian-Token
        # against XSRF, X-ExperimentalApi as in the documented curl.
        uploaded = self._http.call(
            "POST", f"{JSM}/servicedesk/{_seg(service_desk_id)}/attachTemporaryFile",
            headers={"X-ExperimentalApi": "opt-in"},
            files=[("file", (a.filename, a.data, a.content_type)) for a in attachments])
        return [t["temporaryAttachmentId"] for t in uploaded["temporaryAttachments"]]

    # -- outbound

    def myself_account_id(self) -> str:
        """The account jsm-mail calls Jira as (GET /myself), asked once."""
        if self._myself is None:
            self._myself = str(self._http.call("GET", f"{PLATFORM}/myself")["accountId"])
        return self._myself

    def updated_requests(self, project_key: str, since: datetime, limit: int) -> list[UpdatedIssue]:
        """Requests of the project updated since then, oldest update first, at most `limit`.

        A relative date (`-90m`) keeps JQL out of the API user's time zone (JQL reference,
        "updated"); Jira's offset-stamped `updated` then filters to the second.
        """
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        minutes = max(1, math.ceil((datetime.now(UTC) - since).total_seconds() / 60) + 1)
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
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        found: list[JiraComment] = []
        start = 0
        while True:
            page = self._http.call("GET", f"{PLATFORM}/issue/{_seg(issue_key)}/comment", params={
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
        raw = self._http.call("GET", f"{PLATFORM}/issue/{_seg(issue_key)}/comment/{_seg(comment_id)}",
                              none_on=(404,), params={"expand": "renderedBody,properties"})
        return None if raw is None else _comment(issue_key, raw)

    def outbound_request(self, issue_key: str) -> OutboundRequest | None:
        """Summary, reporter, participants and attachments: what a mail about the request needs."""
        issue = self._http.call("GET", f"{PLATFORM}/issue/{_seg(issue_key)}", none_on=(404,), params={
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
        return self._http.content(f"{PLATFORM}/attachment/content/{_seg(attachment_id)}")

    # -- paging

    def _paged(self, path: str) -> Iterator[dict[str, Any]]:
        """Every value of a JSM paged list (start/limit/isLastPage)."""
        start = 0
        while True:
            page = self._http.call("GET", path, params={"start": start, "limit": PAGE_SIZE})
            yield from page.get("values", [])
            if page.get("isLastPage", True) or not page.get("values"):
                return
            start += len(page["values"])

    def _search(self, jql: str, fields: Sequence[str]) -> Iterator[dict[str, Any]]:
        """Issues matching JQL via POST /rest/api/3/search/jql (Cloud; the old /search is deprecated).

        Jira platform docs: without `fields` this search returns issue ids only, no keys.
        """
        query: dict[str, Any] = {"jql": jql, "maxResults": PAGE_SIZE, "fields": list(fields)}
        while True:
            page = self._http.call("POST", "/rest/api/3/search/jql", json=query)
            yield from page.get("issues", [])
            if page.get("isLast", True) or not page.get("nextPageToken"):
                return
            query["nextPageToken"] = page["nextPageToken"]


def _seg(value: str) -> str:
    """One URL path segment."""
    return quote(str(value), safe="")


def _jql(value: str) -> str:
    """A JQL string literal (JQL reference: quote values, escape quote and backslash)."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _epoch(date: dict[str, Any] | None) -> datetime | None:
    """A JSM DateDTO as an aware datetime."""
    if not date or date.get("epochMillis") is None:
        return None
    return datetime.fromtimestamp(int(date["epochMillis"]) / 1000, tz=UTC)


def _parse_time(value: str) -> datetime:
    """Jira's `2024-01-05T10:00:00.000+0000`."""
    return datetime.fromisoformat(value)


def _person(user: dict[str, Any] | None) -> Address | None:
    """A user with an e-mail address (account privacy can hide it: then nobody to mail)."""
    if not user or not user.get("emailAddress"):
        return None
    return Address(user.get("displayName") or "", user["emailAddress"])


def _attachment(raw: dict[str, Any]) -> JiraAttachment:
    return JiraAttachment(id=str(raw["id"]), filename=raw.get("filename") or f"attachment-{raw['id']}",
                          size=int(raw.get("size") or 0), mime_type=raw.get("mimeType") or "application/octet-stream",
                          created=_parse_time(raw["created"]) if raw.get("created") else None,
                          author_account_id=(raw.get("author") or {}).get("accountId"),
                          url=raw.get("content") or "")


def _comment(issue_key: str, raw: dict[str, Any]) -> JiraComment:
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
        return str(node.get("text", ""))
    if node.get("type") == "hardBreak":
        return "\n"
    inner = "".join(_adf_text(child) for child in node.get("content") or ())
    block = node.get("type") in ("paragraph", "heading", "listItem", "codeBlock", "blockquote", "rule")
    return inner + "\n" if block else inner
