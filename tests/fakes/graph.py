"""A stateful Microsoft Graph mailbox and Entra ID token endpoint on pytest-httpserver, strict about what it is sent.

The `fake_graph` fixture serves, over HTTPS (msal accepts only https authorities), the tenant's
OpenID configuration, the v2.0 token endpoint (client credentials with a secret or a certificate
assertion, refresh token, device code) and the v1.0 message calls jsm-mail makes. It checks
method, path, query ($filter, $select, $top, $expand), headers and bodies against Microsoft's
documentation (tests/fakes/GRAPH.md), keeps read flags and categories, takes sendMail in MIME form
and keeps what it sent in Sent Items, pages with @odata.nextLink, throttles with 429 + Retry-After
on request, and answers anything it does not model with 400 and a recorded violation that fails
the test at teardown.
"""
from __future__ import annotations

import base64
import binascii
import email
import email.policy
import hashlib
import itertools
import json
import re
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from plugin.mailboxes.oauth import forget_tokens
from tests.fakes.dovecot import make_certificate, openssl_path

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
EWS_SCOPE = "https://outlook.office365.com/.default"
APP_SCOPES = {GRAPH_SCOPE: "app-graph", EWS_SCOPE: "app-ews"}  # resource -> kind of token
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SIZE_EXPAND = "singleValueExtendedProperties($filter=id eq 'Integer 0x0E08')"
LIST_SELECT = {"id", "categories", "receivedDateTime", "isRead", "subject"}
UNREAD_FILTER = "isRead eq false"
WELL_KNOWN = {"inbox", "archive", "junkemail"}
PATCHABLE = {"isRead": bool, "categories": list}
NOT_FOUND = {"code": "ErrorItemNotFound", "message": "The specified object was not found in the store."}
SENT_ITEMS = "sentitems"
# A request over about 4 MB is refused with 413 (learn.microsoft.com/graph/use-the-api); larger
# attachments need a draft and an upload session (learn.microsoft.com/graph/outlook-large-attachments).
SEND_LIMIT_BYTES = 4 * 1024 * 1024


class Violation(Exception):
    """A request Microsoft's documentation does not describe (or the fake does not model)."""


@dataclass
class FakeMessage:
    id: str
    mime: bytes
    received: datetime
    is_read: bool = False
    categories: list[str] = field(default_factory=list)
    folder: str = "inbox"
    attachments: list[FakeAttachment] = field(default_factory=list)  # added to a draft after it was made


@dataclass
class FakeAttachment:
    name: str
    content_type: str
    data: bytes
    inline: bool = False
    content_id: str = ""


@dataclass
class UploadSession:
    """createUploadSession's state: the bytes received so far, in order."""

    message_id: str
    attachment: FakeAttachment
    size: int
    authtoken: str
    received: bytearray = field(default_factory=bytearray)


@dataclass
class Page:
    """A listing snapshot that later pages are cut from, as a $skiptoken would."""

    ids: list[str]
    select: list[str]
    expand: bool
    top: int
    query: dict[str, str]  # the first request's options, which every next link repeats


class FakeGraph:
    """One tenant with one app registration and one mailbox at `url`."""

    def __init__(self, server: HTTPServer, cafile: str) -> None:
        self.server = server
        self.cafile = cafile
        self.url = server.url_for("").rstrip("/")
        self.tenant_id = "11111111-2222-3333-4444-555555555555"
        self.client_id = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
        self.client_secret = "s3cr3t~" + secrets.token_urlsafe(12)
        self.certificate: x509.Certificate | None = None
        self.address = "support@contoso.example"
        self.folders: dict[str, str] = {"Support": "folder-support"}  # display name -> id, under the inbox
        self.messages: dict[str, FakeMessage] = {}
        self.access_tokens: dict[str, tuple[str, float]] = {}  # token -> (kind, expires at)
        self.token_scopes: dict[str, set[str]] = {}  # delegated token -> the scopes it was issued for
        self.refresh_tokens: set[str] = set()
        self.revoked_refresh_tokens: set[str] = set()
        self.token_requests: list[dict[str, str]] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) of Graph calls
        self.violations: list[str] = []
        self.access_token_lifetime_s = 3599
        self.read_only = False  # the app was granted Mail.Read only: writes are 403 ErrorAccessDenied
        self.may_send = True  # the app holds the Mail.Send application permission
        self._throttle: list[tuple[str, int, int]] = []  # (method, status, Retry-After) for the next Graph calls
        self._pages: dict[str, Page] = {}
        self._device_codes: dict[str, str] = {}  # device code -> refresh token issued once approved
        self._device_scopes: dict[str, str] = {}  # device code -> the scopes it was asked for
        self.redirect_uris: set[str] = set()  # the app registration's redirect URIs
        self.authorizations: list[dict[str, str]] = []  # the query of each authorize request
        self.deny_consent = False  # the user cancels the sign-in
        self._auth_codes: dict[str, tuple[str, str, str]] = {}  # code -> (redirect_uri, code_challenge, scope)
        self.upload_sessions: dict[str, UploadSession] = {}
        self.uploads: list[str] = []  # the Content-Range of each PUT to an upload session
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        server.expect_request(re.compile(r"^/.*")).respond_with_handler(self._dispatch)

    # ------------------------------------------------------------ for tests
    def add(self, mime: bytes, *, is_read: bool = False, categories: tuple[str, ...] = (), folder: str = "inbox",
            received: datetime | None = None) -> str:
        """Deliver a message; returns its Graph id (base64 with "/" "+" "=", as real ids have)."""
        with self._lock:
            number = next(self._ids)
            message_id = "AAMkAD" + base64.b64encode(f"message-{number:04d}\xff\xfe".encode("latin-1")).decode()
            received = received or datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=number)
            self.messages[message_id] = FakeMessage(message_id, mime, received, is_read, list(categories), folder)
            return message_id

    def throttle(self, count: int, *, status: int = 429, retry_after: int = 7, method: str = "") -> None:
        """The next `count` Graph calls (of `method`, if given) are refused with `status` and Retry-After."""
        self._throttle += [(method, status, retry_after)] * count

    def issue_refresh_token(self) -> str:
        token = "rt-" + secrets.token_urlsafe(16)
        self.refresh_tokens.add(token)
        return token

    def revoke(self, refresh_token: str) -> None:
        """As an admin's "revoke sessions" does: the refresh token and its access tokens stop working."""
        self.refresh_tokens.discard(refresh_token)
        self.revoked_refresh_tokens.add(refresh_token)
        self.access_tokens.clear()

    @property
    def sent(self) -> list[bytes]:
        """The MIME of each mail in Sent Items, in the order sent."""
        return [m.mime for m in sorted(self.messages.values(), key=lambda m: m.received) if m.folder == SENT_ITEMS]

    def expire_access_tokens(self) -> None:
        self.access_tokens = {t: (kind, 0.0) for t, (kind, _) in self.access_tokens.items()}

    def approve_device_codes(self) -> None:
        """The user entered the code and signed in."""
        for code in self._device_codes:
            self._device_codes[code] = self.issue_refresh_token()

    # ------------------------------------------------------------ dispatch
    def _dispatch(self, request: Request) -> Response:
        with self._lock:
            try:
                if request.path.startswith(f"/{self.tenant_id}/") or "/oauth2/" in request.path \
                        or request.path.endswith("/openid-configuration"):
                    return self._identity(request)
                if request.path.startswith("/v1.0/"):
                    return self._graph(request)
                if request.path.startswith("/api/v2.0/"):
                    return self._upload(request)
                raise Violation(f"{request.method} {request.path}: not a Graph or token endpoint path")
            except Violation as problem:
                self.violations.append(str(problem))
                return _graph_error(400, "BadRequest", str(problem))

    # ------------------------------------------------------------ Microsoft identity platform
    def _identity(self, request: Request) -> Response:
        tenant, _, rest = request.path.strip("/").partition("/")
        if tenant != self.tenant_id:
            # An unknown tenant's discovery document is a 400 (AADSTS90002).
            return Response(json.dumps({"error": "invalid_tenant",
                                        "error_description": f"AADSTS90002: Tenant '{tenant}' not found."}),
                            400, content_type="application/json")
        base = f"{self.url}/{self.tenant_id}"
        if request.method == "GET" and rest == "v2.0/.well-known/openid-configuration":
            return _json({"token_endpoint": f"{base}/oauth2/v2.0/token",
                          "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                          "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                          "issuer": f"{base}/v2.0"})
        if request.method == "GET" and rest == "oauth2/v2.0/authorize":
            return self._authorize(request)
        if request.method != "POST" or request.mimetype != "application/x-www-form-urlencoded":
            raise Violation(f"{request.method} {request.path}: token endpoints take a POSTed form")
        form = {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
        if rest == "oauth2/v2.0/devicecode":
            return self._device_code(form)
        if rest != "oauth2/v2.0/token":
            raise Violation(f"POST {request.path}: no such endpoint")
        self.token_requests.append({k: v for k, v in form.items() if k in ("grant_type", "scope", "client_id")})
        if form.get("client_id") != self.client_id:
            return _token_error(400, "unauthorized_client", "AADSTS700016: Application not found in the directory.")
        grant = form.get("grant_type")
        if grant == "client_credentials":
            return self._client_credentials(form)
        if grant == "refresh_token":
            return self._refresh(form)
        if grant == DEVICE_GRANT:
            return self._device_token(form)
        if grant == "authorization_code":
            return self._redeem_code(form)
        raise Violation(f"token request with grant_type {grant!r}")

    def _authorize(self, request: Request) -> Response:
        # learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow ("Request an authorization
        # code"): client_id, response_type=code, a registered redirect_uri, scope, state; PKCE with S256.
        # The fake stands for the user's sign-in and consent and redirects back at once.
        query = dict(request.args.items())
        self.authorizations.append(query)
        if query.get("client_id") != self.client_id:
            raise Violation(f"authorize with client_id {query.get('client_id')!r}")
        if query.get("redirect_uri") not in self.redirect_uris:
            # Entra ID shows AADSTS50011 on its own page instead of redirecting.
            raise Violation(f"AADSTS50011: redirect URI {query.get('redirect_uri')!r} is not registered")
        if query.get("response_type") != "code" or not query.get("state"):
            raise Violation(f"authorize without response_type=code or state: {query}")
        if query.get("code_challenge_method") != "S256" or len(query.get("code_challenge", "")) != 43:
            raise Violation(f"authorize without an S256 code_challenge: {query}")
        self._check_delegated_scopes(query.get("scope", ""))
        back = {"state": query["state"]}
        if self.deny_consent:
            back |= {"error": "access_denied", "error_description": "AADSTS65004: User declined to consent to "
                                                                     "access the app."}
        else:
            code = "0.AX" + secrets.token_urlsafe(24)
            self._auth_codes[code] = (query["redirect_uri"], query["code_challenge"], query["scope"])
            back["code"] = code
        return Response(status=302, headers={"Location": f"{query['redirect_uri']}?{urlencode(back)}"})

    def _redeem_code(self, form: dict[str, str]) -> Response:
        # "Redeem a code for an access token": the same redirect_uri, and the code_verifier whose S256
        # hash is the challenge (RFC 7636 section 4.6); a code is good once.
        redirect_uri, challenge, scope = self._auth_codes.pop(form.get("code", ""), ("", "", ""))
        if not redirect_uri:
            return _token_error(400, "invalid_grant", "AADSTS70008: The provided authorization code or refresh "
                                                      "token has expired due to inactivity.")
        if form.get("redirect_uri") != redirect_uri:
            return _token_error(400, "invalid_grant", "AADSTS50148: The redirect_uri does not match the one in "
                                                      "the authorization request.")
        verifier = form.get("code_verifier", "")
        if base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode() != challenge:
            return _token_error(400, "invalid_grant", "AADSTS501481: The Code_Verifier does not match the "
                                                      "code_challenge supplied in the authorization request.")
        return _json(self._user_tokens({"scope": form.get("scope") or scope}))

    def _client_credentials(self, form: dict[str, str]) -> Response:
        # learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow: scope is the
        # resource's /.default; the credential is client_secret or a signed client_assertion.
        if form.get("scope") not in APP_SCOPES:
            return _token_error(400, "invalid_scope", f"AADSTS1002012: The provided value for scope "
                                                      f"{form.get('scope')} is not valid.")
        if "client_assertion" in form:
            if form.get("client_assertion_type") != JWT_BEARER or not self._assertion_valid(form["client_assertion"]):
                return _token_error(401, "invalid_client", "AADSTS700027: Client assertion failed signature "
                                                           "validation.")
        elif form.get("client_secret") != self.client_secret:
            return _token_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        lifetime_s = self.access_token_lifetime_s
        return _json(self._access_token(APP_SCOPES[form["scope"]], {"token_type": "Bearer", "expires_in": lifetime_s,
                                                                     "ext_expires_in": lifetime_s}))

    def _assertion_valid(self, assertion: str) -> bool:
        if self.certificate is None:
            return False
        try:
            key = self.certificate.public_key()
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            claims = jwt.decode(assertion, key, algorithms=["RS256", "PS256"],
                                audience=f"{self.url}/{self.tenant_id}/oauth2/v2.0/token")
        except jwt.PyJWTError:
            return False
        return claims.get("iss") == claims.get("sub") == self.client_id

    def _refresh(self, form: dict[str, str]) -> Response:
        token = form.get("refresh_token", "")
        if token in self.revoked_refresh_tokens or token not in self.refresh_tokens:
            return _token_error(400, "invalid_grant", "AADSTS50173: The provided grant has expired due to it being "
                                                      "revoked, a fresh auth token is needed.")
        return _json(self._user_tokens(form))

    def _device_code(self, form: dict[str, str]) -> Response:
        if form.get("client_id") != self.client_id:
            return _token_error(400, "unauthorized_client", "AADSTS700016: Application not found in the directory.")
        # The scopes go with the device authorization request; the token polls carry only the device code.
        self._check_delegated_scopes(form.get("scope", ""))
        code = "dc-" + secrets.token_urlsafe(8)
        self._device_codes[code] = ""
        self._device_scopes[code] = form["scope"]
        return _json({"device_code": code, "user_code": "FAKE-CODE", "verification_uri": f"{self.url}/devicelogin",
                      "expires_in": 900, "interval": 1,
                      "message": f"To sign in, use a web browser to open the page {self.url}/devicelogin and enter "
                                 "the code FAKE-CODE to authenticate."})

    def _device_token(self, form: dict[str, str]) -> Response:
        code = form.get("device_code", "")
        if code not in self._device_codes:
            return _token_error(400, "expired_token", "AADSTS70020: The provided value for the input parameter "
                                                      "'device_code' is not valid.")
        if not self._device_codes[code]:
            return _token_error(400, "authorization_pending", "AADSTS70016: OAuth 2.0 device flow error. "
                                                              "Authorization is pending.")
        scope = self._device_scopes.pop(code)
        return _json(self._user_tokens({"scope": scope}, refresh_token=self._device_codes.pop(code)))

    def _user_tokens(self, form: dict[str, str], refresh_token: str | None = None) -> dict[str, Any]:
        scopes = self._check_delegated_scopes(form.get("scope", ""))
        refresh = refresh_token or self.issue_refresh_token()
        self.refresh_tokens.add(refresh)
        return self._access_token("user", {"token_type": "Bearer", "scope": " ".join(sorted(scopes)),
                                           "expires_in": self.access_token_lifetime_s, "refresh_token": refresh})

    def _check_delegated_scopes(self, scope: str) -> set[str]:
        scopes = set(scope.split())
        if not scopes & {"https://outlook.office.com/IMAP.AccessAsUser.All",
                         "https://outlook.office.com/POP.AccessAsUser.All",
                         "https://outlook.office.com/SMTP.Send",
                         "https://outlook.office365.com/EWS.AccessAsUser.All"}:
            raise Violation(f"delegated token asked for scopes {sorted(scopes)}")
        if "offline_access" not in scopes:
            raise Violation("delegated token asked without offline_access: no refresh token would come back")
        return scopes

    def _access_token(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        token = f"at-{kind}-" + secrets.token_urlsafe(16)
        self.access_tokens[token] = (kind, time.time() + self.access_token_lifetime_s)
        self.token_scopes[token] = set(str(body.get("scope", "")).split())
        return body | {"access_token": token}

    def token_is_valid(self, token: str, kind: str = "user") -> bool:
        """For the IMAP/POP3 introspection endpoint and the fake EWS: a token of that kind that has not expired
        ("user" delegated, "app-graph" or "app-ews" app-only)."""
        token_kind, expires = self.access_tokens.get(token, ("", 0.0))
        return token_kind == kind and expires > time.time()

    def token_allows(self, token: str, scope: str) -> bool:
        """A valid delegated token issued with this scope (e.g. SMTP.Send for SMTP AUTH XOAUTH2)."""
        return self.token_is_valid(token) and scope in self.token_scopes.get(token, set())

    # ------------------------------------------------------------ Microsoft Graph v1.0
    def _graph(self, request: Request) -> Response:
        self.requests.append((request.method, request.path))
        kind, expires = self.access_tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "),
                                               ("", 0.0))
        if kind != "app-graph" or expires < time.time():
            return _graph_error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        if self._throttle and self._throttle[0][0] in ("", request.method):
            _, status, retry_after = self._throttle.pop(0)
            response = _graph_error(status, "TooManyRequests" if status == 429 else "ServiceUnavailable",
                                    "Application is over its MailboxConcurrency limit.")
            response.headers["Retry-After"] = str(retry_after)
            return response
        # The raw path: Werkzeug decodes %2F in ids to "/", which would split a path segment.
        path = request.environ.get("RAW_URI", request.path).partition("?")[0]
        _, _, users, user, rest = [*path.split("/", 4), "", "", ""][:5]
        if users != "users" or unquote(user) != self.address:
            return _graph_error(404, "ErrorInvalidUser", f"The requested user '{unquote(user)}' is invalid.")
        query = _query(request)
        if request.method == "GET" and (m := re.fullmatch(r"mailFolders/([^/]+)", rest)):
            return self._get_folder(m.group(1), query)
        if request.method == "GET" and rest in ("mailFolders", "mailFolders/inbox/childFolders"):
            return self._find_folders(rest, query)
        if request.method == "GET" and (m := re.fullmatch(r"mailFolders/([^/]+)/messages", rest)):
            return self._list(request, m.group(1), query)
        if request.method == "GET" and (m := re.fullmatch(r"messages/([^/]+)/\$value", rest)):
            return self._mime(unquote(m.group(1)), query)
        if request.method == "GET" and (m := re.fullmatch(r"messages/([^/]+)", rest)):
            return self._get_message(unquote(m.group(1)), query)
        if request.method == "PATCH" and (m := re.fullmatch(r"messages/([^/]+)", rest)):
            return self._patch(request, unquote(m.group(1)), query)
        if request.method == "POST" and rest == "sendMail":
            return self._send_mail(request, query)
        if request.method == "POST" and rest == "messages":
            return self._create_draft(request, query)
        if request.method == "POST" and (m := re.fullmatch(r"messages/([^/]+)/attachments/createUploadSession", rest)):
            return self._create_upload_session(request, unquote(m.group(1)), query)
        if request.method == "POST" and (m := re.fullmatch(r"messages/([^/]+)/attachments", rest)):
            return self._add_attachment(request, unquote(m.group(1)), query)
        if request.method == "POST" and (m := re.fullmatch(r"messages/([^/]+)/send", rest)):
            return self._send_draft(request, unquote(m.group(1)), query)
        if request.method == "DELETE" and (m := re.fullmatch(r"messages/([^/]+)", rest)):
            _only(query, set())
            return Response(b"", 204) if self.messages.pop(unquote(m.group(1)), None) else \
                _graph_error(404, **NOT_FOUND)
        raise Violation(f"{request.method} {request.path}: not a call the fake models")

    def _get_folder(self, name: str, query: dict[str, str]) -> Response:
        _only(query, {"$select"})
        if name not in WELL_KNOWN and name not in self.folders.values():
            return _graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        _select(query, {"id", "displayName"})
        return _json({"id": name})

    def _find_folders(self, parent: str, query: dict[str, str]) -> Response:
        _only(query, {"$filter", "$select"})
        _select(query, {"id", "displayName"})
        m = re.fullmatch(r"displayName eq '((?:[^']|'')*)'", query.get("$filter", ""))
        if not m:
            raise Violation(f"folder $filter {query.get('$filter')!r}")
        name = m.group(1).replace("''", "'")
        found = [{"id": fid} for display, fid in self.folders.items()
                 if display == name and parent == "mailFolders/inbox/childFolders"]
        return _json({"value": found})

    def _list(self, request: Request, folder: str, query: dict[str, str]) -> Response:
        # learn.microsoft.com/graph/api/mailfolder-list-messages: OData $filter, $select, $top, $expand;
        # later pages come from @odata.nextLink, which the client must follow as given.
        if folder == SENT_ITEMS:
            return self._sent_by_message_id(query)
        if "$skiptoken" in query:
            page = self._pages.get(query.pop("$skiptoken"))
            if page is None:
                raise Violation("unknown $skiptoken")
            if query != page.query:
                raise Violation(f"next page asked with {query}, not the link's own options {page.query}")
        else:
            _only(query, {"$filter", "$select", "$top", "$expand"})
            if query.get("$filter") != UNREAD_FILTER:
                raise Violation(f"message $filter {query.get('$filter')!r}, expected {UNREAD_FILTER!r}")
            select = _select(query, LIST_SELECT)
            top = query.get("$top", "10")
            if not top.isdigit() or not 1 <= int(top) <= 1000:
                raise Violation(f"$top {top!r} is not 1..1000")
            if query.get("$expand", SIZE_EXPAND) != SIZE_EXPAND:
                raise Violation(f"$expand {query['$expand']!r}")
            ids = [m.id for m in sorted(self.messages.values(), key=lambda m: m.id, reverse=True)
                   if m.folder == folder and not m.is_read]
            page = Page(ids, select, "$expand" in query, int(top), query)
        shown, left = page.ids[:page.top], page.ids[page.top:]
        body: dict[str, Any] = {"@odata.context": "...", "value": [
            self._message_json(self.messages[i], page.select, page.expand) for i in shown if i in self.messages]}
        if left:
            token = secrets.token_urlsafe(8)
            self._pages[token] = Page(left, page.select, page.expand, page.top, page.query)
            # learn.microsoft.com/graph/paging: the next link repeats the request's options plus $skiptoken.
            options = urlencode({**page.query, "$skiptoken": token}, quote_via=quote)
            body["@odata.nextLink"] = f"{self.url}/v1.0/users/{self.address}/mailFolders/{folder}/messages?{options}"
        return _json(body)

    def _sent_by_message_id(self, query: dict[str, str]) -> Response:
        # internetMessageId is filterable with eq (learn.microsoft.com/graph/api/resources/message);
        # the value is the Message-ID header with its angle brackets.
        _only(query, {"$filter", "$select"})
        _select(query, {"id"})
        m = re.fullmatch(r"internetMessageId eq '((?:[^']|'')*)'", query.get("$filter", ""))
        if not m:
            raise Violation(f"Sent Items $filter {query.get('$filter')!r}")
        wanted = m.group(1).replace("''", "'")
        found = [{"id": message.id} for message in self.messages.values()
                 if message.folder == SENT_ITEMS and _header(message.mime, "Message-ID") == wanted]
        return _json({"value": found})

    def _mime(self, message_id: str, query: dict[str, str]) -> Response:
        _only(query, set())
        message = self.messages.get(message_id)
        if message is None:
            return _graph_error(404, **NOT_FOUND)
        # learn.microsoft.com/graph/outlook-get-mime-message: the body is the MIME content itself.
        return Response(message.mime, 200, content_type="text/plain")

    def _get_message(self, message_id: str, query: dict[str, str]) -> Response:
        _only(query, {"$select"})
        select = _select(query, LIST_SELECT | {"internetMessageHeaders"})
        message = self.messages.get(message_id)
        if message is None:
            return _graph_error(404, **NOT_FOUND)
        return _json(self._message_json(message, select, False))

    def _patch(self, request: Request, message_id: str, query: dict[str, str]) -> Response:
        # learn.microsoft.com/graph/api/message-update: a JSON body with only the properties to change.
        _only(query, set())
        if request.mimetype != "application/json":
            raise Violation(f"PATCH with Content-Type {request.mimetype!r}")
        body = json.loads(request.get_data(as_text=True))
        if not isinstance(body, dict) or not body:
            raise Violation("PATCH body is not a non-empty object")
        for key, value in body.items():
            if key not in PATCHABLE or not isinstance(value, PATCHABLE[key]):
                raise Violation(f"PATCH of {key}={value!r}")
        if "categories" in body and not all(isinstance(c, str) for c in body["categories"]):
            raise Violation("categories must be strings")
        if self.read_only:
            return _graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        message = self.messages.get(message_id)
        if message is None:
            return _graph_error(404, **NOT_FOUND)
        message.is_read = body.get("isRead", message.is_read)
        message.categories = list(body.get("categories", message.categories))
        return _json(self._message_json(message, ["id", "isRead", "categories"], False))

    def _send_mail(self, request: Request, query: dict[str, str]) -> Response:
        # learn.microsoft.com/graph/api/user-sendmail and graph/outlook-send-mime-message: with
        # "Content-Type: text/plain" the body is the whole MIME message, base64; the mail goes to the
        # recipients in its To, Cc and Bcc, and a copy is saved in Sent Items. Answer: 202, no body.
        _only(query, set())
        if request.mimetype == "application/json":
            raise Violation("sendMail in JSON form is not modelled; the MIME form is")
        if request.mimetype != "text/plain":
            raise Violation(f"sendMail with Content-Type {request.mimetype!r}")
        body = request.get_data()
        if len(body) > SEND_LIMIT_BYTES:
            return _graph_error(413, "RequestEntityTooLarge", "The maximum request length supported is 4MB.")
        try:
            mime = base64.b64decode(body, validate=True)
        except binascii.Error:
            return _graph_error(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
        parsed = email.message_from_bytes(mime, policy=email.policy.default)
        if not any(parsed.get_all(name) for name in ("To", "Cc", "Bcc")):
            return _graph_error(400, "ErrorInvalidRecipients", "At least one recipient isn't valid.")
        if not self.may_send:
            return _graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        number = next(self._ids)
        message_id = "AAMkAD" + base64.b64encode(f"sent-{number:04d}".encode()).decode()
        self.messages[message_id] = FakeMessage(message_id, mime, datetime.now(UTC), True, [], SENT_ITEMS)
        return Response(b"", 202)

    def _mime_body(self, request: Request, query: dict[str, str], call: str) -> bytes | Response:
        """A MIME message sent base64 in a text/plain body, as sendMail and draft creation take it."""
        _only(query, set())
        if request.mimetype != "text/plain":
            raise Violation(f"{call} with Content-Type {request.mimetype!r}")
        body = request.get_data()
        if len(body) > SEND_LIMIT_BYTES:
            return _graph_error(413, "RequestEntityTooLarge", "The maximum request length supported is 4MB.")
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error:
            return _graph_error(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")

    def _create_draft(self, request: Request, query: dict[str, str]) -> Response:
        # learn.microsoft.com/graph/outlook-send-mime-message ("Create a draft message in MIME format"):
        # POST /messages, text/plain, base64 MIME; 201 Created with the message, kept in Drafts.
        mime = self._mime_body(request, query, "draft creation")
        if isinstance(mime, Response):
            return mime
        if self.read_only:
            return _graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        message_id = "AAMkAD" + base64.b64encode(f"draft-{next(self._ids):04d}".encode()).decode()
        self.messages[message_id] = FakeMessage(message_id, mime, datetime.now(UTC), True, [], "drafts")
        return _json(self._message_json(self.messages[message_id], ["id", "isRead", "subject"], False), 201)

    def _draft(self, message_id: str) -> FakeMessage:
        message = self.messages.get(message_id)
        if message is None or message.folder != "drafts":
            raise Violation(f"attachments or send on {message_id!r}, which is not a draft")
        return message

    def _add_attachment(self, request: Request, message_id: str, query: dict[str, str]) -> Response:
        # learn.microsoft.com/graph/api/message-post-attachments: a fileAttachment, contentBytes base64; for
        # files under 3 MB (larger ones need an upload session, learn.microsoft.com/graph/outlook-large-attachments).
        _only(query, set())
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("@odata.type") != "#microsoft.graph.fileAttachment":
            raise Violation(f"attachment body {str(body)[:200]}")
        unknown = set(body) - {"@odata.type", "name", "contentType", "contentBytes", "isInline", "contentId"}
        if unknown or not body.get("name") or not isinstance(body.get("contentBytes"), str):
            raise Violation(f"attachment with {sorted(body)}")
        data = base64.b64decode(body["contentBytes"], validate=True)
        if len(data) >= 3 * 1024 * 1024:
            raise Violation(f"a {len(data)}-byte attachment POSTed whole; from 3 MB an upload session is needed")
        self._draft(message_id).attachments.append(FakeAttachment(
            body["name"], body.get("contentType", "application/octet-stream"), data, bool(body.get("isInline")),
            body.get("contentId", "")))
        return _json({"@odata.type": "#microsoft.graph.fileAttachment", "id": secrets.token_urlsafe(8),
                      "name": body["name"], "size": len(data)}, 201)

    def _create_upload_session(self, request: Request, message_id: str, query: dict[str, str]) -> Response:
        # learn.microsoft.com/graph/api/attachment-createuploadsession: {"AttachmentItem": {attachmentType
        # "file", name, size (bytes), contentType, isInline, contentId}}; 201 with uploadUrl and
        # nextExpectedRanges ["0-"].
        _only(query, set())
        body = request.get_json(silent=True)
        item = body.get("AttachmentItem") if isinstance(body, dict) and set(body) == {"AttachmentItem"} else None
        if not isinstance(item, dict) or item.get("attachmentType") != "file" or not item.get("name") \
                or not isinstance(item.get("size"), int):
            raise Violation(f"createUploadSession body {body}")
        if set(item) - {"attachmentType", "name", "size", "contentType", "isInline", "contentId"}:
            raise Violation(f"AttachmentItem with {sorted(item)}")
        if not 0 < item["size"] <= 150 * 1024 * 1024:
            return _graph_error(400, "ErrorAttachmentSizeLimitExceeded", "The attachment is over 150 MB.")
        self._draft(message_id)
        token, authtoken = secrets.token_urlsafe(12), secrets.token_urlsafe(24)
        self.upload_sessions[token] = UploadSession(message_id, FakeAttachment(
            item["name"], item.get("contentType", "application/octet-stream"), b"", bool(item.get("isInline")),
            item.get("contentId", "")), item["size"], authtoken)
        upload_url = (f"{self.url}/api/v2.0/Users('{quote(self.address)}')/Messages('{quote(message_id, safe='')}')"
                      f"/AttachmentSessions('{token}')?authtoken={authtoken}")
        return _json({"@odata.context": "...", "uploadUrl": upload_url,
                      "expirationDateTime": (datetime.now(UTC) + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "nextExpectedRanges": ["0-"]}, 201)

    def _upload(self, request: Request) -> Response:
        # learn.microsoft.com/graph/outlook-large-attachments, step 2: PUT to the pre-authenticated
        # uploadUrl without an Authorization header, Content-Type application/octet-stream, Content-Length
        # and Content-Range "bytes a-b/size", up to 4 MB a time, in order; 200 with the next expected range
        # until the last piece, which answers 201 Created with the attachment in Location.
        m = re.fullmatch(r"/api/v2\.0/Users\('[^']+'\)/Messages\('[^']+'\)/AttachmentSessions\('([^']+)'\)",
                         request.path)
        token = m.group(1) if m else ""
        session = self.upload_sessions.get(token)
        if request.method != "PUT" or session is None or request.args.get("authtoken") != session.authtoken:
            raise Violation(f"{request.method} {request.path}: not a PUT to an upload session's URL")
        if "Authorization" in request.headers:
            raise Violation("PUT to an upload session with an Authorization header; the URL is pre-authenticated")
        if request.mimetype != "application/octet-stream":
            raise Violation(f"upload PUT with Content-Type {request.mimetype!r}")
        data = request.get_data()
        self.uploads.append(request.headers.get("Content-Range", ""))
        r = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", request.headers.get("Content-Range", ""))
        if not r or int(r.group(3)) != session.size or int(r.group(1)) != len(session.received) \
                or int(r.group(2)) - int(r.group(1)) + 1 != len(data) \
                or request.headers.get("Content-Length") != str(len(data)):
            raise Violation(f"Content-Range {request.headers.get('Content-Range')!r} for {len(data)} bytes, "
                            f"{len(session.received)} of {session.size} received")
        if len(data) > SEND_LIMIT_BYTES:
            raise Violation(f"a {len(data)}-byte piece; at most 4 MB a PUT")
        session.received += data
        if len(session.received) < session.size:
            return _json({"expirationDateTime": "2026-11-01T06:00:00Z",
                          "nextExpectedRanges": [f"{len(session.received)}-"]})
        del self.upload_sessions[token]
        self.messages[session.message_id].attachments.append(
            replace(session.attachment, data=bytes(session.received)))
        return Response(b"", 201, headers={"Location": f"{self.url}/api/v2.0/Users('{quote(self.address)}')"
                                                       f"/Messages('x')/Attachments('{secrets.token_urlsafe(8)}')"})

    def _send_draft(self, request: Request, message_id: str, query: dict[str, str]) -> Response:
        # learn.microsoft.com/graph/api/message-send: no request body; 202 Accepted; the mail goes to
        # its recipients and is kept in Sent Items with its attachments.
        _only(query, set())
        if request.get_data():
            raise Violation("POST .../send with a body")
        draft = self._draft(message_id)
        if any(s.message_id == message_id for s in self.upload_sessions.values()):
            raise Violation("draft sent before its upload sessions were complete")
        if not self.may_send:
            return _graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        mail = email.message_from_bytes(draft.mime, policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        for attachment in draft.attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            mail.add_attachment(attachment.data, maintype=maintype, subtype=subtype or "octet-stream",
                                filename=attachment.name, disposition="inline" if attachment.inline else "attachment",
                                cid=f"<{attachment.content_id}>" if attachment.content_id else None)
        draft.mime, draft.folder, draft.attachments = mail.as_bytes(policy=email.policy.SMTP), SENT_ITEMS, []
        draft.received = datetime.now(UTC)
        return Response(b"", 202)

    def _message_json(self, message: FakeMessage, select: list[str], expand: bool) -> dict[str, Any]:
        full: dict[str, Any] = {
            "id": message.id, "isRead": message.is_read, "categories": list(message.categories),
            "receivedDateTime": message.received.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "subject": _header(message.mime, "Subject"),
            "internetMessageHeaders": _headers(message.mime),
        }
        shown = {k: full[k] for k in (select or ["id", "isRead", "categories", "receivedDateTime", "subject"])}
        shown["id"] = message.id  # id always comes back
        if expand:
            shown["singleValueExtendedProperties"] = [{"id": "Integer 0x0e08", "value": str(len(message.mime))}]
        return shown


def _query(request: Request) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in request.args.items(multi=True):
        if key in values:
            raise Violation(f"query option {key} given twice")
        values[key] = value
    return values


def _only(query: dict[str, str], allowed: set[str]) -> None:
    unknown = set(query) - allowed
    if unknown:
        raise Violation(f"query options {sorted(unknown)} not modelled here")


def _select(query: dict[str, str], allowed: set[str]) -> list[str]:
    if "$select" not in query:
        raise Violation("no $select: the whole message would come back")
    fields = query["$select"].split(",")
    unknown = set(fields) - allowed
    if unknown:
        raise Violation(f"$select of {sorted(unknown)}")
    return fields


def _header(mime: bytes, name: str) -> str:
    for field_name, value in _header_fields(mime):
        if field_name.lower() == name.lower():
            return value
    return ""


def _headers(mime: bytes) -> list[dict[str, str]]:
    return [{"name": n, "value": v} for n, v in _header_fields(mime)]


def _header_fields(mime: bytes) -> list[tuple[str, str]]:
    head = mime.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    unfolded = re.sub(r"\r\n[ \t]+", " ", head)
    return [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in unfolded.split("\r\n")) if v]


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status, content_type="application/json")


def _graph_error(status: int, code: str, message: str) -> Response:
    """learn.microsoft.com/graph/errors: {"error": {"code", "message", "innerError"}}."""
    return _json({"error": {"code": code, "message": message,
                            "innerError": {"date": "2026-11-01T00:00:00", "request-id": "fake"}}}, status)


def _token_error(status: int, error: str, description: str) -> Response:
    code = int(description.removeprefix("AADSTS").partition(":")[0])
    return _json({"error": error, "error_description": description, "error_codes": [code]}, status)


@pytest.fixture(scope="session")
def graph_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HTTPServer, str]]:
    """One HTTPS server for the run, with a self-signed certificate for 127.0.0.1, and that certificate's file."""
    directory = tmp_path_factory.mktemp("graph-tls")
    cafile = make_certificate(openssl_path(), directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cafile, directory / "key.pem")
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    yield server, str(cafile)
    server.stop()


@pytest.fixture
def fake_graph(graph_server: tuple[HTTPServer, str]) -> Iterator[FakeGraph]:
    """A fresh tenant and mailbox; fails the test at teardown on anything it does not model."""
    server, cafile = graph_server
    server.clear()
    forget_tokens()
    fake = FakeGraph(server, cafile)
    yield fake
    forget_tokens()
    server.check_handler_errors()
    assert not fake.violations, "fake_graph saw requests it does not model:\n" + "\n".join(fake.violations)
