"""A stateful Jira Cloud + JSM on pytest-httpserver that checks every call against Atlassian's OpenAPI files.

The `fake_jira` fixture serves the endpoints the product uses from an in-memory service desk.
Every request (path, method, path and query parameters, JSON body, experimental header) and
every response it gives is validated against `jira-servicedesk.json` (`/rest/servicedeskapi`)
or `jira-platform-v3.json` (`/rest/api/2|3`, `/2/` matched as `/3/`). A mismatch is recorded in
`fake_jira.violations` and fails the test at teardown; a test that provokes one on purpose
takes it with `fake_jira.take_violations()`.
"""
from __future__ import annotations

import base64
import html
import io
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from types import MappingProxyType
from typing import Any, NamedTuple

import pytest
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker
from pytest_httpserver import HTTPServer
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from werkzeug import Request, Response
from werkzeug.datastructures import MultiDict

from tests.corpus import SHARED_DIR

CONTRACTS_DIR = SHARED_DIR / "contracts"
SPEC_FILES = {"jsm": "jira-servicedesk.json", "platform": "jira-platform-v3.json"}

SERVICE_DESK_ID = "1"
PROJECT_KEY = "SD"
EMAIL_REQUEST_TYPE_ID = "10"         # fields summary + description: mail can create it
SUMMARY_ONLY_REQUEST_TYPE_ID = "11"  # no description field: not email-suitable
LINK_TYPES = {"Relates": ("relates to", "relates to"), "Duplicate": ("is duplicated by", "duplicates"),
              "Blocks": ("is blocked by", "blocks"), "Cloners": ("is cloned by", "clones")}
MAX_PROPERTY_CHARS = 32768  # Jira platform docs, "Set issue property"


# ---------------------------------------------------------------- the contract

class Violation(Exception):
    """A request or response that Atlassian's OpenAPI description does not allow."""


@dataclass(frozen=True)
class Operation:
    spec: str            # "jsm" | "platform"
    method: str
    template: str
    pointer: str         # JSON pointer of the operation object in its spec
    body: dict = field(repr=False)
    pattern: re.Pattern[str] = field(repr=False)

    @property
    def operation_id(self) -> str:
        return self.body.get("operationId", "")

    @property
    def experimental(self) -> bool:
        return bool(self.body.get("x-experimental"))


@dataclass(frozen=True)
class Tolerance:
    """One thing the `jira` client sends that the spec forbids and real Jira accepts."""

    name: str
    operation_id: str
    applies: Callable[[Any], bool]
    normalise: Callable[[dict], dict]


# Research (shared/research/jira-contract.md section 7.1, SOURCES.md notes): named one by one.
TOLERANCES = (
    # jira.JIRA.create_customer_request sends requestTypeId as a JSON number; the spec says string.
    Tolerance("numeric-requestTypeId", "createCustomerRequest",
              lambda b: isinstance(b, dict) and isinstance(b.get("requestTypeId"), int),
              lambda b: {**b, "requestTypeId": str(b["requestTypeId"])}),
    # jira.JIRA.create_issue_link always sends "comment": null; the spec's Comment is an object.
    Tolerance("null-issue-link-comment", "linkIssues",
              lambda b: isinstance(b, dict) and "comment" in b and b["comment"] is None,
              lambda b: {k: v for k, v in b.items() if k != "comment"}),
)


def _pointer(*parts: str) -> str:
    """RFC 6901 JSON pointer from raw keys."""
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _coerce(raw: list[str], schema: dict) -> Any:
    """A query or path parameter as the JSON value its schema describes."""
    kind = schema.get("type")
    if kind == "array":
        return [_coerce([value], schema.get("items", {})) for value in raw]
    value = raw[-1]
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    return value


class Contract:
    """Atlassian's OpenAPI files, indexed by method and path, with cached schema validators."""

    def __init__(self, specs: dict[str, dict]) -> None:
        self.specs = specs
        # Validate per operation, resolving $refs against the whole document: openapi-core
        # refuses jira-servicedesk.json because it repeats operationIds (SOURCES.md).
        self.registry = Registry().with_resources(
            (f"urn:{name}", Resource(doc, DRAFT4)) for name, doc in specs.items())
        self.operations = sorted(self._index(), key=lambda op: [s.startswith("{") for s in op.template.split("/")])
        self._validators: dict[tuple[str, str, str], Any] = {}

    def _index(self) -> Iterator[Operation]:
        for spec, doc in self.specs.items():
            for template, item in doc["paths"].items():
                regex = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template))
                for method, body in item.items():
                    if method in ("get", "post", "put", "delete", "patch"):
                        yield Operation(spec, method.upper(), template, _pointer("paths", template, method),
                                        body, re.compile(regex))

    def find(self, method: str, path: str) -> tuple[Operation, dict[str, str]]:
        """The operation serving this call; v2 platform paths match their v3 twins."""
        lookup = re.sub(r"^/rest/api/2/", "/rest/api/3/", path)
        matches = [(op, m) for op in self.operations if (m := op.pattern.fullmatch(lookup))]
        if not matches:
            raise Violation(f"{method} {path}: no such path in the contract")
        for op, match in matches:
            if op.method == method:
                return op, match.groupdict()
        raise Violation(f"{method} {path}: method not allowed here by the contract")

    def errors(self, spec: str, pointer: str, mode: str, instance: Any) -> list[str]:
        """Schema errors of `instance` against the schema at `pointer` (mode "write" or "read")."""
        key = (spec, pointer, mode)
        if key not in self._validators:
            cls = OAS30WriteValidator if mode == "write" else OAS30ReadValidator
            self._validators[key] = cls({"$ref": f"urn:{spec}#{pointer}"}, registry=self.registry,
                                        format_checker=oas30_format_checker)
        return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in self._validators[key].iter_errors(instance)]

    def check_parameters(self, op: Operation, path_params: dict[str, str], args: MultiDict) -> list[str]:
        """Path and query parameters: declared, present when required, of the declared type."""
        problems: list[str] = []
        declared = {(p["in"], p["name"]): i for i, p in enumerate(op.body.get("parameters", []))}
        given = {("path", k): [v] for k, v in path_params.items()}
        given |= {("query", k): args.getlist(k) for k in args}
        for (where, name), values in given.items():
            if (where, name) not in declared:
                problems.append(f"{where} parameter {name!r} is not in the contract")
                continue
            index = declared[(where, name)]
            schema = op.body["parameters"][index].get("schema", {})
            pointer = op.pointer + _pointer("parameters", str(index), "schema")
            problems += [f"{where} parameter {name}: {e}"
                         for e in self.errors(op.spec, pointer, "write", _coerce(values, schema))]
        for (where, name), index in declared.items():
            if op.body["parameters"][index].get("required") and (where, name) not in given:
                problems.append(f"required {where} parameter {name!r} is missing")
        return problems

    def check_body(self, op: Operation, body: Any) -> list[str]:
        """A JSON request body against the operation's requestBody schema."""
        content = op.body.get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            return [] if body is None else ["this operation takes no JSON body"]
        if body is None:
            return ["JSON request body is missing"] if op.body["requestBody"].get("required") else []
        pointer = op.pointer + _pointer("requestBody", "content", "application/json", "schema")
        return self.errors(op.spec, pointer, "write", body)

    def check_response(self, op: Operation, status: int, body: Any) -> list[str]:
        """A response the fake gives against the documented status codes and schemas."""
        responses = op.body.get("responses", {})
        key = str(status) if str(status) in responses else "default" if "default" in responses else None
        if key is None:
            # The REST intros document 401, 429 and 5xx for every operation.
            return [] if status in (401, 429) or status >= 500 else [f"status {status} is not documented"]
        schema = responses[key].get("content", {}).get("application/json", {}).get("schema")
        if schema is None or body is None:
            return []
        pointer = op.pointer + _pointer("responses", key, "content", "application/json", "schema")
        return self.errors(op.spec, pointer, "read", body)


@cache
def load_contract() -> Contract:
    """Parse and index the spec files once per test session (they are megabytes)."""
    return Contract({name: json.loads((CONTRACTS_DIR / file).read_text(encoding="utf-8"))
                     for name, file in SPEC_FILES.items()})


# ---------------------------------------------------------------- state

@dataclass
class FakeUser:
    account_id: str
    email: str
    display_name: str
    account_type: str = "customer"   # "atlassian" for agents and the API user
    email_visible: bool = True       # Atlassian account privacy can hide emailAddress


@dataclass
class FakeRequestType:
    id: str
    name: str
    field_ids: tuple[str, ...]


@dataclass
class FakeDesk:
    id: str
    project_id: str
    project_key: str
    name: str
    request_types: dict[str, FakeRequestType]
    customers: list[FakeUser] = field(default_factory=list)


@dataclass
class FakeComment:
    id: str
    body: str
    public: bool
    author: FakeUser
    created: datetime
    properties: dict[str, Any] = field(default_factory=dict)  # comment entity properties

    @property
    def author_email(self) -> str:
        return self.author.email


@dataclass
class FakeAttachment:
    id: str
    filename: str
    data: bytes = field(repr=False)
    mime_type: str
    public: bool
    author: FakeUser | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class FakeRequest:
    key: str
    id: str
    desk: FakeDesk = field(repr=False)
    request_type_id: str
    summary: str
    description: str
    reporter: FakeUser
    created: datetime
    participants: list[FakeUser] = field(default_factory=list)
    comments: list[FakeComment] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    links: list[tuple[str, str, str]] = field(default_factory=list)  # (type, inward key, outward key)
    resolved_at: datetime | None = None

    @property
    def reporter_email(self) -> str:
        return self.reporter.email

    @property
    def participant_emails(self) -> list[str]:
        return [u.email for u in self.participants]

    @property
    def ledger(self) -> list[str]:
        return list(self.properties.get("jsm-mail", {}).get("ledger", []))

    @property
    def public_comments(self) -> list[FakeComment]:
        return [c for c in self.comments if c.public]

    @property
    def updated(self) -> datetime:
        return max([self.created, *(c.created for c in self.comments), *(a.created for a in self.attachments)])


class Call(NamedTuple):
    method: str
    path: str


@dataclass
class Fault:
    status: int
    retry_after: str | None
    remaining: int | None     # None: until the outage ends
    path: str | None          # regex the whole path must match
    method: str | None
    lost: bool = False        # Jira does the work; the answer is lost on the way back
    delay_s: float = 0.0      # the answer comes this late (a client with a shorter timeout gives up)

    def matches(self, request: Request) -> bool:
        return ((self.method is None or self.method == request.method)
                and (self.path is None or re.fullmatch(self.path, request.path) is not None))


class Reply(NamedTuple):
    status: int
    body: Any = None
    headers: Mapping[str, str] = MappingProxyType({})
    unchecked: bool = False  # an injected fault, or the answer to a call already outside the contract


class Refusal(Exception):
    """Jira says no: answered as ErrorResponse (JSM) or ErrorCollection (platform)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Incoming:
    op: Operation
    path: dict[str, str]
    args: MultiDict
    body: Any
    request: Request


# ---------------------------------------------------------------- JQL the product sends

_JQL_STRING = r'"((?:[^"\\]|\\.)*)"'
_JQL_LEDGER = re.compile(rf"project = {_JQL_STRING} AND issue\.property\[jsm-mail\]\.ledger = {_JQL_STRING}")
_JQL_TEXT = re.compile(rf"project = {_JQL_STRING} AND description ~ {_JQL_STRING}")
_JQL_UPDATED = re.compile(rf"project = {_JQL_STRING} AND updated >= -(\d+)m ORDER BY updated ASC")
_JQL_REPORTER = re.compile(rf"project = {_JQL_STRING} AND reporter = {_JQL_STRING} AND created >= "
                           rf'"(\d{{4}}-\d{{2}}-\d{{2}})" ORDER BY created ASC')


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _jql_filter(jql: str) -> Callable[[FakeRequest], bool]:
    """The two query shapes RestJira sends, parsed strictly; anything else is a 400 as in Jira."""
    if match := _JQL_LEDGER.fullmatch(jql):
        project, key = map(_unquote, match.groups())
        return lambda r: r.desk.project_key == project and key in r.ledger
    if match := _JQL_TEXT.fullmatch(jql):
        project, word = map(_unquote, match.groups())
        # Jira's text search matches whole words; punctuation (wiki markup braces) separates them.
        return lambda r: r.desk.project_key == project and word in re.findall(r"[0-9A-Za-z]+", r.description)
    if match := _JQL_UPDATED.fullmatch(jql):
        project, since = _unquote(match[1]), datetime.now(UTC) - timedelta(minutes=int(match[2]))
        return lambda r: r.desk.project_key == project and r.updated >= since
    if match := _JQL_REPORTER.fullmatch(jql):
        project, account, day = _unquote(match[1]), _unquote(match[2]), match[3]
        since = datetime.fromisoformat(day).replace(tzinfo=UTC)
        return lambda r: r.desk.project_key == project and r.reporter.account_id == account and r.created >= since
    raise Refusal(400, f"Error in the JQL Query: the fake Jira does not understand {jql!r}")


# ---------------------------------------------------------------- wire formats

def _jira_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}" + moment.strftime("%z")


def _date_dto(moment: datetime) -> dict:
    return {"epochMillis": int(moment.timestamp() * 1000), "friendly": moment.strftime("%d/%b/%y %I:%M %p"),
            "iso8601": moment.strftime("%Y-%m-%dT%H:%M:%S%z"), "jira": _jira_time(moment)}


def _adf(text: str) -> dict:
    return {"type": "doc", "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}] if text else []}


class FakeJira:
    """In-memory Jira Cloud + JSM behind an HTTP server; see the module docstring.

    Connect with `url`, `email`, `api_token`. Seed with `add_customer`, `add_agent`,
    `add_request`, `add_comment`, `resolve`, `add_service_desk`, `forbid_customer_creation`.
    Inject trouble with `fail_next`, `start_outage` / `end_outage`. Assert on `requests`,
    `request(key)`, `customers`, `desks`, `calls`, `count(method, path)`, `tolerated`.
    """

    email = "jsm-mail-bot@example.com"
    api_token = "fake-api-token-5f1c9e"
    # serve_as_forge: the site as Atlassian's gateway serves it to a Forge app, with its system token.
    forge_cloud_id: str | None = None
    forge_token: str | None = None

    def __init__(self, server: HTTPServer) -> None:
        self.url = server.url_for("/").rstrip("/")
        self.contract = load_contract()
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self.tolerated: list[str] = []
        self.faults: list[Fault] = []
        self.customer_creation_allowed = True
        self.users: list[FakeUser] = []
        self.desks: dict[str, FakeDesk] = {}
        self.issues: dict[str, FakeRequest] = {}
        self._issue_numbers: dict[str, int] = {}
        self.temporary_files: dict[str, tuple[str, str, bytes, str]] = {}
        self._lock = threading.RLock()
        self._ids = itertools.count(10001)
        self.bot = self._new_user(self.email, "JSM Mail", account_type="atlassian")
        self.add_service_desk(PROJECT_KEY, SERVICE_DESK_ID, "Support", {
            EMAIL_REQUEST_TYPE_ID: FakeRequestType(EMAIL_REQUEST_TYPE_ID, "Email request", ("summary", "description")),
            SUMMARY_ONLY_REQUEST_TYPE_ID: FakeRequestType(SUMMARY_ONLY_REQUEST_TYPE_ID, "Report an outage",
                                                          ("summary",)),
        })
        server.expect_request(re.compile(".*")).respond_with_handler(self._dispatch)

    # ------------------------------------------------------------ seeding and injection

    @property
    def requests(self) -> list[FakeRequest]:
        """Every request, in creation order."""
        return list(self.issues.values())

    @property
    def customers(self) -> dict[str, FakeUser]:
        """Known accounts by lower-cased email."""
        return {u.email.lower(): u for u in self.users}

    def request(self, key: str) -> FakeRequest:
        return self.issues[key]

    def add_service_desk(self, project_key: str, desk_id: str, name: str,
                         request_types: dict[str, FakeRequestType] | None = None) -> FakeDesk:
        desk = FakeDesk(desk_id, str(next(self._ids)), project_key, name, dict(request_types or {}))
        self.desks[desk_id] = desk
        return desk

    def add_customer(self, email: str, display_name: str | None = None, *, in_desk: bool = True,
                     email_visible: bool = True, desk_id: str = SERVICE_DESK_ID) -> FakeUser:
        """A customer account (portal-only), by default already a customer of the desk."""
        user = self.customers.get(email.lower())
        if user is None:
            user = self._new_user(email, display_name or email.split("@")[0])
            user.email_visible = email_visible
        if in_desk and user not in self.desks[desk_id].customers:
            self.desks[desk_id].customers.append(user)
        return user

    def add_agent(self, email: str, display_name: str | None = None) -> FakeUser:
        return self._new_user(email, display_name or email.split("@")[0], account_type="atlassian")

    def add_request(self, summary: str, description: str = "", reporter_email: str = "customer@example.com", *,
                    created: datetime | None = None, desk_id: str = SERVICE_DESK_ID,
                    request_type_id: str = EMAIL_REQUEST_TYPE_ID, participants: tuple[str, ...] = (),
                    ledger: tuple[str, ...] = ()) -> FakeRequest:
        """A request as if raised earlier (customers are created as needed)."""
        with self._lock:
            desk = self.desks[desk_id]
            request = self._new_request(desk, request_type_id, summary, description,
                                        self.add_customer(reporter_email, desk_id=desk_id), created)
            request.participants = [self.add_customer(e, desk_id=desk_id) for e in participants]
            if ledger:
                request.properties["jsm-mail"] = {"ledger": list(ledger)}
            return request

    def add_agent_comment(self, key: str, body: str, *, public: bool = True, author_email: str = "agent@example.com",
                          files: tuple[tuple[str, bytes, str], ...] = (),
                          properties: dict[str, Any] | None = None) -> FakeComment:
        """A comment an agent writes in Jira, with files attached as Jira does: the files on the
        issue, the comment linking them as `[^name]` (wiki markup)."""
        with self._lock:
            author = self.customers.get(author_email.lower()) or self.add_agent(author_email)
            request = self.issues[key]
            for filename, data, mime_type in files:
                request.attachments.append(FakeAttachment(str(next(self._ids)), filename, data, mime_type, public,
                                                          author))
            links = " ".join(f"[^{name}]" for name, _, _ in files)
            comment = self._new_comment(request, f"{body}\n\n{links}".strip(), public, author)
            comment.properties = dict(properties or {})
            return comment

    def add_comment(self, key: str, body: str, *, public: bool = True, author_email: str | None = None) -> FakeComment:
        """A comment by an agent (the API user unless `author_email` names someone else)."""
        author = self.bot if author_email is None else (
            self.customers.get(author_email.lower()) or self.add_agent(author_email))
        return self._new_comment(self.issues[key], body, public, author)

    def resolve(self, key: str, at: datetime | None = None) -> FakeRequest:
        """Move the request to Done with a resolution date."""
        request = self.issues[key]
        request.resolved_at = at or datetime.now(UTC)
        return request

    def forbid_customer_creation(self) -> None:
        """POST /customer answers 403, as for an API user without Jira Administrator."""
        self.customer_creation_allowed = False

    def fail_next(self, count: int = 1, *, status: int = 503, retry_after: int | str | None = None,
                  path: str | None = None, method: str | None = None, lost: bool = False) -> None:
        """The next `count` calls (matching `path` regex and `method`, if given) answer `status`;
        with `lost`, Jira has done what was asked before the error comes back (a timed-out POST)."""
        self.faults.append(Fault(status, None if retry_after is None else str(retry_after), count, path, method,
                                 lost))

    def slow_next(self, count: int, delay_s: float, *, path: str | None = None, method: str | None = None) -> None:
        """The next `count` calls (matching `path` and `method`) are done, but answered `delay_s` late."""
        self.faults.append(Fault(200, None, count, path, method, lost=True, delay_s=delay_s))

    def start_outage(self, status: int = 503) -> None:
        """Every call answers `status` until `end_outage`."""
        self.faults.append(Fault(status, None, None, None, None))

    def end_outage(self) -> None:
        self.faults = [f for f in self.faults if f.remaining is not None]

    def take_violations(self) -> list[str]:
        """The violations so far, cleared, for a test that provokes them on purpose."""
        with self._lock:
            taken, self.violations = self.violations, []
            return taken

    def count(self, method: str, path: str) -> int:
        """How many calls were `method` on exactly `path`."""
        return self.calls.count(Call(method, path))

    # ------------------------------------------------------------ the HTTP side

    def serve_as_forge(self, cloud_id: str, system_token: str) -> str:
        """Answer only under /ex/jira/{cloud_id} (api.atlassian.com's path to a site) and only to the bearer
        `system_token`, as Jira does for a Forge app's system token; returns that apiBaseUrl."""
        self.forge_cloud_id, self.forge_token = cloud_id, system_token
        return f"{self.url}/ex/jira/{cloud_id}"

    def _through_gateway(self, request: Request) -> Request | None:
        """The request as the site sees it behind the gateway prefix; None when it missed the prefix."""
        prefix = f"/ex/jira/{self.forge_cloud_id}"
        if not request.path.startswith(prefix + "/"):
            return None
        data = request.get_data()
        environ = {**request.environ, "SCRIPT_NAME": prefix, "PATH_INFO": request.path[len(prefix):],
                   "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data))}
        return Request(environ)

    def _dispatch(self, request: Request) -> Response:
        if self.forge_cloud_id is not None:
            site_request = self._through_gateway(request)
            if site_request is None:
                self.violations.append(f"{request.method} {request.path}: a Forge app's call that missed "
                                       "/ex/jira/{cloudId}")
                return Response(json.dumps({"errorMessages": ["not found"]}), 404, content_type="application/json")
            request = site_request
        delay_s = next((f.delay_s for f in self.faults if f.delay_s and f.matches(request)), 0.0)
        response = self._answer(request)
        time.sleep(delay_s)
        return response

    def _answer(self, request: Request) -> Response:
        with self._lock:
            self.calls.append(Call(request.method, request.path))
            try:
                op, path_params = self.contract.find(request.method, request.path)
            except Violation as violation:
                self.violations.append(str(violation))
                return self._respond(None, Reply(404, {"errorMessages": [str(violation)]}))
            problems, body = self._check_request(op, path_params, request)
            self.violations += [f"{request.method} {request.path}: {p}" for p in problems]
            fault = self._fault_reply(request)
            if fault is None or fault[1]:
                reply = self._reply(op, Incoming(op, path_params, request.args, body, request), problems)
                if fault is None or fault[0].status == 200:  # a slow answer: right, but late
                    return self._respond(op, reply)
            return self._respond(op, fault[0])

    def _check_request(self, op: Operation, path_params: dict[str, str], request: Request) -> tuple[list[str], Any]:
        problems = self.contract.check_parameters(op, path_params, request.args)
        if op.experimental and request.headers.get("X-ExperimentalApi") != "opt-in":
            problems.append("experimental operation called without X-ExperimentalApi: opt-in")
        if request.mimetype == "multipart/form-data":
            return problems + self._check_multipart(op, request), None
        body = None
        if request.get_data():
            if request.mimetype != "application/json":
                return [*problems, f"body sent as {request.mimetype!r}, not application/json"], None
            try:
                body = json.loads(request.get_data())
            except ValueError:
                return [*problems, "request body is not JSON"], None
        for tolerance in TOLERANCES:
            if tolerance.operation_id == op.operation_id and tolerance.applies(body):
                self.tolerated.append(tolerance.name)
                body = tolerance.normalise(body)
        return problems + self.contract.check_body(op, body), body

    @staticmethod
    def _check_multipart(op: Operation, request: Request) -> list[str]:
        if "multipart/form-data" not in op.body.get("requestBody", {}).get("content", {}):
            return ["this operation takes no multipart body"]
        # JSM docs, attachTemporaryFile: parts named "file"; XSRF check needs X-Atlassian-Token.
        problems = [f"multipart part {name!r} is not 'file'" for name in request.files if name != "file"]
        if request.headers.get("X-Atlassian-Token") != "no-check":
            problems.append("multipart upload without X-Atlassian-Token: no-check")
        return problems

    def _fault_reply(self, request: Request) -> tuple[Reply, bool] | None:
        fault = next((f for f in self.faults if f.matches(request)), None)
        if fault is None:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.faults.remove(fault)
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        body = {"errorMessages": [f"Injected by fake_jira: {fault.status}"]}
        return Reply(fault.status, body, headers, unchecked=True), fault.lost

    def _reply(self, op: Operation, incoming: Incoming, problems: list[str]) -> Reply:
        if not self._authorised(incoming.request):
            return self._error(op, Refusal(401, "Client must be authenticated to access this resource."))
        if problems:
            return self._error(op, Refusal(400, "; ".join(problems)))._replace(unchecked=True)
        handler = getattr(self, f"_op_{op.operation_id}", None)
        if handler is None:
            self.violations.append(f"{op.method} {op.template}: in the contract but not implemented by fake_jira")
            return Reply(501)
        try:
            return handler(incoming)
        except Refusal as refusal:
            return self._error(op, refusal)

    def _authorised(self, request: Request) -> bool:
        if self.forge_cloud_id is not None:
            return request.headers.get("Authorization") == f"Bearer {self.forge_token}"
        expected = base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    @staticmethod
    def _error(op: Operation, refusal: Refusal) -> Reply:
        if op.spec == "jsm":
            return Reply(refusal.status, {"errorMessage": refusal.message,
                                          "i18nErrorMessage": {"i18nKey": "fake.error", "parameters": []}})
        return Reply(refusal.status, {"errorMessages": [refusal.message], "errors": {}})

    def _respond(self, op: Operation | None, reply: Reply) -> Response:
        if op is not None and not reply.unchecked:
            problems = self.contract.check_response(op, reply.status, reply.body)
            self.violations += [f"response {reply.status} to {op.method} {op.template}: {p}" for p in problems]
        if isinstance(reply.body, bytes):
            return Response(reply.body, status=reply.status, headers=reply.headers,
                            content_type="application/octet-stream")
        payload = "" if reply.body is None else json.dumps(reply.body)
        return Response(payload, status=reply.status, headers=reply.headers,
                        content_type="application/json" if payload else None)

    # ------------------------------------------------------------ helpers for handlers

    def _new_user(self, email: str, display_name: str, *, account_type: str = "customer") -> FakeUser:
        user = FakeUser(f"qm:fake:{next(self._ids)}", email, display_name, account_type)
        self.users.append(user)
        return user

    def _new_request(self, desk: FakeDesk, request_type_id: str, summary: str, description: str,
                     reporter: FakeUser, created: datetime | None = None) -> FakeRequest:
        # Jira never reuses an issue number, not even after a delete.
        number = self._issue_numbers.get(desk.project_key, 0) + 1
        self._issue_numbers[desk.project_key] = number
        request = FakeRequest(f"{desk.project_key}-{number}", str(next(self._ids)), desk, request_type_id,
                              summary, description, reporter, created or datetime.now(UTC))
        self.issues[request.key] = request
        return request

    def _new_comment(self, request: FakeRequest, body: str, public: bool, author: FakeUser) -> FakeComment:
        comment = FakeComment(str(next(self._ids)), body, public, author, datetime.now(UTC))
        request.comments.append(comment)
        return comment

    def _issue(self, key_or_id: str) -> FakeRequest:
        for request in self.issues.values():
            if key_or_id in (request.key, request.id):
                return request
        raise Refusal(404, "Issue does not exist or you do not have permission to see it.")

    def _desk(self, desk_id: str) -> FakeDesk:
        for desk in self.desks.values():
            if desk_id in (desk.id, desk.project_key):  # JSM: serviceDeskId may be a project identifier
                return desk
        raise Refusal(404, f"Service Desk with id {desk_id} does not exist")

    def _request_type(self, desk: FakeDesk, request_type_id: str) -> FakeRequestType:
        if request_type_id not in desk.request_types:
            raise Refusal(404, f"The request type {request_type_id} does not exist in this service desk.")
        return desk.request_types[request_type_id]

    def _account(self, account_id: str) -> FakeUser:
        for user in self.users:
            if user.account_id == account_id:
                return user
        raise Refusal(400, f"The user with account ID {account_id} does not exist.")

    def _user_dto(self, user: FakeUser) -> dict:
        dto = {"accountId": user.account_id, "displayName": user.display_name, "active": True,
               "timeZone": "Etc/UTC", "_links": {"jiraRest": f"{self.url}/rest/api/2/user?accountId={user.account_id}",
                                                 "self": f"{self.url}/rest/api/2/user?accountId={user.account_id}"}}
        return dto | ({"emailAddress": user.email} if user.email_visible else {})

    def _platform_user(self, user: FakeUser) -> dict:
        dto = {"self": f"{self.url}/rest/api/2/user?accountId={user.account_id}", "accountId": user.account_id,
               "accountType": user.account_type, "displayName": user.display_name, "active": True,
               "timeZone": "Etc/UTC", "locale": "en_US"}
        return dto | ({"emailAddress": user.email} if user.email_visible else {})

    def _user_details(self, user: FakeUser) -> dict:
        dto = {"self": f"{self.url}/rest/api/2/user?accountId={user.account_id}", "accountId": user.account_id,
               "accountType": user.account_type, "displayName": user.display_name, "active": True,
               "timeZone": "Etc/UTC"}
        return dto | ({"emailAddress": user.email} if user.email_visible else {})

    def _attachment_bean(self, attachment: FakeAttachment) -> dict:
        bean = {"self": f"{self.url}/rest/api/2/attachment/{attachment.id}", "id": attachment.id,
                "filename": attachment.filename, "size": len(attachment.data), "mimeType": attachment.mime_type,
                "created": attachment.created.isoformat(timespec="milliseconds"),
                "content": f"{self.url}/rest/api/2/attachment/content/{attachment.id}"}
        return bean | ({"author": self._user_details(attachment.author)} if attachment.author else {})

    def _platform_comment(self, request: FakeRequest, comment: FakeComment, expand: list[str]) -> dict:
        """A platform Comment (REST v2: wiki markup body); renderedBody and properties only when expanded."""
        dto = {"self": f"{self.url}/rest/api/2/issue/{request.id}/comment/{comment.id}", "id": comment.id,
               "author": self._user_details(comment.author), "body": comment.body,
               "updateAuthor": self._user_details(comment.author),
               # The spec types these date-time (RFC 3339); Jira's own +0000 form fails that format check.
               "created": comment.created.isoformat(timespec="milliseconds"),
               "updated": comment.created.isoformat(timespec="milliseconds"), "jsdPublic": comment.public}
        if "renderedBody" in expand:
            dto["renderedBody"] = "<p>" + html.escape(comment.body).replace("\n", "<br/>\n") + "</p>"
        if "properties" in expand:
            properties = dict(comment.properties)
            if not comment.public:  # Jira marks internal comments so (research section 2)
                properties.setdefault("sd.public.comment", {"internal": True})
            dto["properties"] = [{"key": k, "value": v} for k, v in properties.items()]
        return dto

    def _paged(self, incoming: Incoming, values: list[dict], path: str) -> dict:
        start, limit = int(incoming.args.get("start", 0)), int(incoming.args.get("limit", 50))
        page = values[start:start + limit]
        return {"_expands": [], "size": len(page), "start": start, "limit": limit,
                "isLastPage": start + limit >= len(values), "values": page,
                "_links": {"base": f"{self.url}/rest/servicedeskapi", "context": "", "self": self.url + path}}

    def _comment_dto(self, comment: FakeComment, key: str) -> dict:
        return {"_expands": ["attachment", "renderedBody"], "id": comment.id, "body": comment.body,
                "public": comment.public, "author": self._user_dto(comment.author),
                "created": _date_dto(comment.created),
                "_links": {"self": f"{self.url}/rest/servicedeskapi/request/{key}/comment/{comment.id}"}}

    def _request_dto(self, request: FakeRequest) -> dict:
        done = request.resolved_at is not None
        status_date = request.resolved_at or request.created
        return {
            "_expands": ["participant", "status", "sla", "requestType", "serviceDesk", "attachment", "action",
                         "comment"],
            "issueId": request.id, "issueKey": request.key, "requestTypeId": request.request_type_id,
            "serviceDeskId": request.desk.id, "createdDate": _date_dto(request.created),
            "reporter": self._user_dto(request.reporter),
            "requestFieldValues": [{"fieldId": "summary", "label": "Summary", "value": request.summary},
                                   {"fieldId": "description", "label": "Description", "value": request.description}],
            "currentStatus": {"status": "Resolved" if done else "Waiting for support",
                              "statusCategory": "DONE" if done else "NEW", "statusDate": _date_dto(status_date)},
            "_links": {"jiraRest": f"{self.url}/rest/api/2/issue/{request.id}",
                       "self": f"{self.url}/rest/servicedeskapi/request/{request.id}",
                       "web": f"{self.url}/servicedesk/customer/portal/{request.desk.id}/{request.key}"},
        }

    def _issue_fields(self, request: FakeRequest, wanted: set[str], api_version: str) -> dict:
        done = request.resolved_at is not None
        category = {"id": 3, "key": "done", "colorName": "green", "name": "Done"} if done else \
            {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"}
        available = {
            "summary": request.summary,
            "description": _adf(request.description) if api_version == "3" else request.description,
            "created": _jira_time(request.created),
            "updated": _jira_time(request.updated),
            "attachment": [self._attachment_bean(a) for a in request.attachments],
            "reporter": self._platform_user(request.reporter),
            "project": {"self": f"{self.url}/rest/api/2/project/{request.desk.project_id}",
                        "id": request.desk.project_id, "key": request.desk.project_key,
                        "name": request.desk.name, "projectTypeKey": "service_desk"},
            "resolutiondate": _jira_time(request.resolved_at) if done else None,
            "statuscategorychangedate": _jira_time(request.resolved_at or request.created),
            "status": {"self": f"{self.url}/rest/api/2/status/1", "id": "1",
                       "name": "Resolved" if done else "Waiting for support", "statusCategory": category},
        }
        names = set(available) if "*all" in wanted or "*navigable" in wanted else wanted
        return {name: value for name, value in available.items() if name in names}

    def _issue_bean(self, request: FakeRequest, fields: list[str], api_version: str) -> dict:
        bean = {"id": request.id, "key": request.key,
                "self": f"{self.url}/rest/api/{api_version}/issue/{request.id}"}
        wanted = {f.strip() for value in fields for f in value.split(",") if f.strip()} - {"id", "key"}
        if wanted:
            bean["fields"] = self._issue_fields(request, wanted, api_version)
        return bean

    @staticmethod
    def _api_version(incoming: Incoming) -> str:
        return "3" if incoming.request.path.startswith("/rest/api/3/") else "2"

    # ------------------------------------------------------------ platform operations

    def _op_getServerInfo(self, incoming: Incoming) -> Reply:
        now = datetime.now(UTC)
        # The spec's example omits deploymentType; the jira client needs "Cloud" (research 3.2).
        return Reply(200, {"baseUrl": self.url, "displayUrl": self.url, "version": "1001.0.0-SNAPSHOT",
                           "versionNumbers": [1001, 0, 0], "deploymentType": "Cloud", "buildNumber": 100287,
                           "buildDate": "2025-12-01T00:00:00.000+00:00",  # format date-time: RFC 3339
                           "serverTime": now.isoformat(timespec="milliseconds"),
                           "scmInfo": "57a0ca5b4a0bb0ac5f3fee4764acb1c14e4d7e71", "serverTitle": "Fake JSM"})

    def _op_findUsers(self, incoming: Incoming) -> Reply:
        query = incoming.args.get("query", "").lower()
        if not query:
            raise Refusal(400, "The query parameter 'query' is required.")
        # Jira matches a prefix of displayName or emailAddress, hidden emails included.
        found = [u for u in self.users
                 if u.email.lower().startswith(query) or any(w.lower().startswith(query)
                                                             for w in u.display_name.split())]
        start, limit = int(incoming.args.get("startAt", 0)), int(incoming.args.get("maxResults", 50))
        return Reply(200, [self._platform_user(u) for u in found[start:start + limit]])

    def _op_getIssue(self, incoming: Incoming) -> Reply:
        request = self._issue(incoming.path["issueIdOrKey"])
        fields = incoming.args.getlist("fields") or ["*all"]
        return Reply(200, self._issue_bean(request, fields, self._api_version(incoming)))

    def _op_getIssuePropertyKeys(self, incoming: Incoming) -> Reply:
        request = self._issue(incoming.path["issueIdOrKey"])
        base = f"{self.url}/rest/api/2/issue/{request.key}/properties/"
        return Reply(200, {"keys": [{"key": k, "self": base + k} for k in request.properties]})

    def _op_getIssueProperty(self, incoming: Incoming) -> Reply:
        request, key = self._issue(incoming.path["issueIdOrKey"]), incoming.path["propertyKey"]
        if key not in request.properties:
            raise Refusal(404, f"The property with key '{key}' does not exist.")
        return Reply(200, {"key": key, "value": request.properties[key]})

    def _op_setIssueProperty(self, incoming: Incoming) -> Reply:
        request, key = self._issue(incoming.path["issueIdOrKey"]), incoming.path["propertyKey"]
        if incoming.body in (None, {}, []) or len(json.dumps(incoming.body)) > MAX_PROPERTY_CHARS:
            raise Refusal(400, "The property value must be non-empty JSON of at most 32768 characters.")
        existed = key in request.properties
        request.properties[key] = incoming.body
        return Reply(200 if existed else 201)

    def _op_searchAndReconsileIssuesUsingJql(self, incoming: Incoming) -> Reply:
        args = incoming.args
        return self._search(args.get("jql", ""), args.getlist("fields"), args.get("nextPageToken"),
                            int(args.get("maxResults", 50)), self._api_version(incoming))

    def _op_searchAndReconsileIssuesUsingJqlPost(self, incoming: Incoming) -> Reply:
        body = incoming.body or {}
        return self._search(body.get("jql", ""), body.get("fields", []), body.get("nextPageToken"),
                            int(body.get("maxResults", 50)), self._api_version(incoming))

    def _search(self, jql: str, fields: list[str], token: str | None, limit: int, api_version: str) -> Reply:
        wanted = _jql_filter(jql)
        found = [r for r in self.issues.values() if wanted(r)]
        if jql.endswith("ORDER BY updated ASC"):
            found.sort(key=lambda r: r.updated)
        start = int(token or 0)
        page = found[start:start + limit]
        # Jira platform docs, search/jql: "By default, this resource returns IDs only."
        issues = [self._issue_bean(r, fields, api_version) if fields else {"id": r.id} for r in page]
        body: dict[str, Any] = {"issues": issues, "isLast": start + limit >= len(found)}
        if not body["isLast"]:
            body["nextPageToken"] = str(start + limit)
        return Reply(200, body)

    def _op_addComment(self, incoming: Incoming) -> Reply:
        request = self._issue(incoming.path["issueIdOrKey"])
        body = incoming.body.get("body")
        if not isinstance(body, str) or not body.strip():
            raise Refusal(400, "Comment body can not be empty!")
        properties = {p["key"]: p["value"] for p in incoming.body.get("properties", [])}
        # JSM: a platform comment is public unless sd.public.comment says internal (research section 2).
        public = not (properties.get("sd.public.comment") or {}).get("internal", False)
        comment = self._new_comment(request, body, public, self.bot)
        comment.properties = properties
        return Reply(201, self._platform_comment(request, comment, []))

    def _op_linkIssues(self, incoming: Incoming) -> Reply:
        name = incoming.body["type"].get("name")
        if name not in LINK_TYPES:
            raise Refusal(404, f"No issue link type with name '{name}' found.")
        inward = self._issue(incoming.body["inwardIssue"].get("key") or incoming.body["inwardIssue"].get("id", ""))
        outward = self._issue(incoming.body["outwardIssue"].get("key") or incoming.body["outwardIssue"].get("id", ""))
        for request in (inward, outward):
            request.links.append((name, inward.key, outward.key))
        return Reply(201)

    def _op_getCurrentUser(self, incoming: Incoming) -> Reply:
        return Reply(200, self._platform_user(self.bot))

    def _op_getComments(self, incoming: Incoming) -> Reply:
        request = self._issue(incoming.path["issueIdOrKey"])
        order = incoming.args.get("orderBy", "created")
        comments = sorted(request.comments, key=lambda c: (c.created, int(c.id)), reverse=order == "-created")
        start, limit = int(incoming.args.get("startAt", 0)), int(incoming.args.get("maxResults", 100))
        expand = incoming.args.get("expand", "").split(",")
        page = [self._platform_comment(request, c, expand) for c in comments[start:start + limit]]
        return Reply(200, {"comments": page, "maxResults": limit, "startAt": start, "total": len(comments)})

    def _op_getComment(self, incoming: Incoming) -> Reply:
        request = self._issue(incoming.path["issueIdOrKey"])
        comment = next((c for c in request.comments if c.id == incoming.path["id"]), None)
        if comment is None:
            raise Refusal(404, "Can not find a comment for the id.")
        return Reply(200, self._platform_comment(request, comment, incoming.args.get("expand", "").split(",")))

    def _op_getAttachmentContent(self, incoming: Incoming) -> Reply:
        for request in self.issues.values():
            for attachment in request.attachments:
                if attachment.id == incoming.path["id"]:
                    return Reply(200, attachment.data)
        raise Refusal(404, "The attachment does not exist.")

    # ------------------------------------------------------------ JSM operations

    def _op_getServiceDeskById(self, incoming: Incoming) -> Reply:
        desk = self._desk(incoming.path["serviceDeskId"])
        return Reply(200, {"id": desk.id, "projectId": desk.project_id, "projectKey": desk.project_key,
                           "projectName": desk.name,
                           "_links": {"self": f"{self.url}/rest/servicedeskapi/servicedesk/{desk.id}"}})

    def _op_getServiceDesks(self, incoming: Incoming) -> Reply:
        values = [{"id": desk.id, "projectId": desk.project_id, "projectKey": desk.project_key,
                   "projectName": desk.name,
                   "_links": {"self": f"{self.url}/rest/servicedeskapi/servicedesk/{desk.id}"}}
                  for desk in self.desks.values()]
        return Reply(200, self._paged(incoming, values, incoming.request.path))

    def _request_type_dto(self, desk: FakeDesk, request_type: FakeRequestType) -> dict:
        return {"_expands": ["field"], "id": request_type.id, "name": request_type.name, "description": "",
                "helpText": "", "issueTypeId": "10004", "serviceDeskId": desk.id, "portalId": desk.id,
                "groupIds": ["1"], "restrictionStatus": "OPEN",
                "_links": {"self": f"{self.url}/rest/servicedeskapi/servicedesk/{desk.id}"
                                   f"/requesttype/{request_type.id}"}}

    def _op_getRequestTypes(self, incoming: Incoming) -> Reply:
        desk = self._desk(incoming.path["serviceDeskId"])
        values = [self._request_type_dto(desk, t) for t in desk.request_types.values()]
        return Reply(200, self._paged(incoming, values, incoming.request.path))

    def _op_getRequestTypeById(self, incoming: Incoming) -> Reply:
        desk = self._desk(incoming.path["serviceDeskId"])
        return Reply(200, self._request_type_dto(desk, self._request_type(desk, incoming.path["requestTypeId"])))

    def _op_getRequestTypeFields(self, incoming: Incoming) -> Reply:
        desk = self._desk(incoming.path["serviceDeskId"])
        request_type = self._request_type(desk, incoming.path["requestTypeId"])
        fields = [{"fieldId": f, "name": f.capitalize(), "required": f == "summary", "visible": True,
                   "validValues": [], "defaultValues": [], "presetValues": [],
                   "jiraSchema": {"type": "string", "system": f}} for f in request_type.field_ids]
        return Reply(200, {"canAddRequestParticipants": True, "canRaiseOnBehalfOf": True,
                           "requestTypeFields": fields})

    def _op_getCustomers(self, incoming: Incoming) -> Reply:
        desk, query = self._desk(incoming.path["serviceDeskId"]), incoming.args.get("query", "").lower()
        found = [u for u in desk.customers if query in u.email.lower() or query in u.display_name.lower()]
        return Reply(200, self._paged(incoming, [self._user_dto(u) for u in found], incoming.request.path))

    def _op_createCustomer(self, incoming: Incoming) -> Reply:
        if not self.customer_creation_allowed:
            raise Refusal(403, "You do not have permission to create customers: Jira Administrator is required.")
        email = incoming.body.get("email", "")
        if not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
            raise Refusal(400, "The email address is invalid.")
        if email.lower() in self.customers:
            strict = incoming.args.get("strictConflictStatusCode") == "true"
            raise Refusal(409 if strict else 400, "A user with that email address already exists.")
        name = incoming.body.get("displayName") or incoming.body.get("fullName") or email
        return Reply(201, self._user_dto(self._new_user(email, name)))

    def _op_addCustomers(self, incoming: Incoming) -> Reply:
        desk = self._desk(incoming.path["serviceDeskId"])
        for user in [self._account(a) for a in incoming.body.get("accountIds", [])]:
            if user not in desk.customers:
                desk.customers.append(user)
        return Reply(204)

    def _op_createCustomerRequest(self, incoming: Incoming) -> Reply:
        body = incoming.body
        desk = self.desks.get(body.get("serviceDeskId", ""))
        if desk is None:
            raise Refusal(400, f"The service desk {body.get('serviceDeskId')!r} does not exist.")
        if body.get("requestTypeId") not in desk.request_types:
            raise Refusal(400, "The request type you are trying to use does not exist.")
        request_type = desk.request_types[body["requestTypeId"]]
        values = body.get("requestFieldValues", {})
        unknown = sorted(set(values) - set(request_type.field_ids))
        if unknown:
            raise Refusal(400, f"Field {unknown[0]!r} is not valid for this request type.")
        summary = values.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            raise Refusal(400, "summary: You must specify a summary of the issue.")
        if len(summary) > 255:
            raise Refusal(400, "summary: Summary must be less than 255 characters.")
        reporter = self._account(body["raiseOnBehalfOf"]) if "raiseOnBehalfOf" in body else self.bot
        request = self._new_request(desk, request_type.id, summary, values.get("description", ""), reporter)
        request.participants = [self._account(a) for a in body.get("requestParticipants", [])]
        return Reply(201, self._request_dto(request))

    def _op_getCustomerRequestByIdOrKey(self, incoming: Incoming) -> Reply:
        request = self._issue(incoming.path["issueIdOrKey"])
        dto = self._request_dto(request)
        expand = {e for value in incoming.args.getlist("expand") for e in value.split(",")}
        if "participant" in expand:
            dto["participants"] = self._paged(incoming, [self._user_dto(u) for u in request.participants],
                                              incoming.request.path)
        return Reply(200, dto)

    def _op_getRequestParticipants(self, incoming: Incoming) -> Reply:
        request = self._issue(incoming.path["issueIdOrKey"])
        values = [self._user_dto(u) for u in request.participants]
        return Reply(200, self._paged(incoming, values, incoming.request.path))

    def _op_addRequestParticipants(self, incoming: Incoming) -> Reply:
        request = self._issue(incoming.path["issueIdOrKey"])
        for user in [self._account(a) for a in incoming.body.get("accountIds", [])]:
            if user not in request.participants and user is not request.reporter:
                request.participants.append(user)
        values = [self._user_dto(u) for u in request.participants]
        return Reply(200, self._paged(incoming, values, incoming.request.path))

    def _op_getRequestComments(self, incoming: Incoming) -> Reply:
        request = self._issue(incoming.path["issueIdOrKey"])
        public, internal = (incoming.args.get(k, "true") != "false" for k in ("public", "internal"))
        chosen = [c for c in request.comments if (public and c.public) or (internal and not c.public)]
        values = [self._comment_dto(c, request.key) for c in chosen]
        return Reply(200, self._paged(incoming, values, incoming.request.path))

    def _op_createRequestComment(self, incoming: Incoming) -> Reply:
        request = self._issue(incoming.path["issueIdOrKey"])
        if "public" not in incoming.body:
            raise Refusal(400, "The 'public' field is required.")
        if not str(incoming.body.get("body", "")).strip():
            raise Refusal(400, "Comment body cannot be empty.")
        # JSM: a comment posted through the API is authored by the API user (research section 7.3).
        comment = self._new_comment(request, incoming.body["body"], incoming.body["public"], self.bot)
        return Reply(201, self._comment_dto(comment, request.key))

    def _op_attachTemporaryFile(self, incoming: Incoming) -> Reply:
        desk = self._desk(incoming.path["serviceDeskId"])
        uploads = incoming.request.files.getlist("file")
        if not uploads:
            raise Refusal(400, "No files were attached.")
        if len(uploads) > 60:
            raise Refusal(413, "You can attach at most 60 files at once.")
        created = []
        for upload in uploads:
            temporary_id = f"temp{next(self._ids)}"
            self.temporary_files[temporary_id] = (desk.id, upload.filename or "", upload.read(),
                                                  upload.mimetype or "application/octet-stream")
            created.append({"temporaryAttachmentId": temporary_id, "fileName": upload.filename or ""})
        return Reply(201, {"temporaryAttachments": created})

    def _op_createCommentWithAttachment(self, incoming: Incoming) -> Reply:
        request = self._issue(incoming.path["issueIdOrKey"])
        if "public" not in incoming.body:
            raise Refusal(400, "The 'public' field is required.")
        ids = incoming.body.get("temporaryAttachmentIds", [])
        if not ids or any(i not in self.temporary_files for i in ids):
            raise Refusal(400, "One or more temporary attachments do not exist or have expired.")
        added = []
        for temporary_id in ids:
            _, filename, data, mime_type = self.temporary_files.pop(temporary_id)
            added.append(FakeAttachment(str(next(self._ids)), filename, data, mime_type, incoming.body["public"]))
        request.attachments += added
        # JSM records the upload as a comment listing the files (the spec's own example).
        text = incoming.body.get("additionalComment", {}).get("body", "")
        links = " ".join(f"[^{a.filename}]" for a in added)
        comment = self._new_comment(request, f"{text} {links}".strip(), incoming.body["public"], self.bot)
        values = [{"filename": a.filename, "mimeType": a.mime_type, "size": len(a.data),
                   "author": self._user_dto(self.bot), "created": _date_dto(comment.created),
                   "_links": {"content": f"{self.url}/rest/servicedeskapi/request/{request.key}/attachment/{a.id}"}}
                  for a in added]
        return Reply(201, {"attachments": self._paged(incoming, values, incoming.request.path),
                           "comment": self._comment_dto(comment, request.key)})


@pytest.fixture
def fake_jira(httpserver: HTTPServer) -> Iterator[FakeJira]:
    """A fresh fake Jira Cloud + JSM; fails the test at teardown on any contract violation."""
    fake = FakeJira(httpserver)
    yield fake
    httpserver.check_handler_errors()
    assert not fake.violations, "fake_jira saw calls or gave answers outside Atlassian's contract:\n" + \
        "\n".join(fake.violations)
