"""Google's OAuth 2.0 authorization and token endpoints on pytest-httpserver (HTTPS), strict about what they are sent.

The authorize endpoint stands for the user's consent: it checks the request as
developers.google.com/identity/protocols/oauth2/web-server describes it (response_type=code, a
registered redirect_uri, the scope, state, an S256 code_challenge, access_type=offline,
prompt=consent) and redirects back with a code and the state. The token endpoint redeems the code
once, for the same redirect_uri and the verifier of the challenge (RFC 7636 section 4.6), and
refreshes access tokens; Google keeps the refresh token, so a refresh answers none. Anything else is
a recorded violation that fails the test at teardown.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from plugin.mailboxes.oauth import forget_tokens
from tests.fakes.dovecot import make_certificate, openssl_path

MAIL_SCOPE = "https://mail.google.com/"
CODE_GRANT, REFRESH_GRANT = "authorization_code", "refresh_token"


@dataclass
class Code:
    redirect_uri: str
    challenge: str
    scope: str


@dataclass
class FakeGoogle:
    """One Google Cloud project with one OAuth client ("Web application") and its registered redirect URLs."""

    server: HTTPServer
    cafile: str
    client_id: str = "123456789-fake.apps.googleusercontent.com"
    client_secret: str = field(default_factory=lambda: "GOCSPX-" + secrets.token_urlsafe(12))
    redirect_uris: set[str] = field(default_factory=set)
    authorizations: list[dict[str, str]] = field(default_factory=list)  # the query of each authorize request
    token_requests: list[dict[str, str]] = field(default_factory=list)  # grant_type of each token request
    refresh_tokens: set[str] = field(default_factory=set)
    access_tokens: dict[str, float] = field(default_factory=dict)  # token -> expires at
    violations: list[str] = field(default_factory=list)
    deny: bool = False  # the user clicks "Cancel" on the consent screen
    _codes: dict[str, Code] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.url = self.server.url_for("").rstrip("/")
        self.server.expect_request(re.compile(r"^/.*")).respond_with_handler(self._dispatch)

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/o/oauth2/v2/auth"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def token_is_valid(self, token: str) -> bool:
        return self.access_tokens.get(token, 0.0) > time.time()

    def revoke(self, refresh_token: str) -> None:
        """The user removed the app's access (myaccount.google.com/permissions)."""
        self.refresh_tokens.discard(refresh_token)
        self.access_tokens.clear()

    def _dispatch(self, request: Request) -> Response:
        with self._lock:
            if request.method == "GET" and request.path == "/o/oauth2/v2/auth":
                return self._authorize(request)
            if request.method == "POST" and request.path == "/token":
                return self._token(request)
            return self._violation(f"{request.method} {request.path}: not a Google OAuth endpoint")

    def _violation(self, problem: str) -> Response:
        self.violations.append(problem)
        return _error(400, "invalid_request", problem)

    def _authorize(self, request: Request) -> Response:
        query = dict(request.args.items())
        self.authorizations.append(query)
        if query.get("client_id") != self.client_id:
            return self._violation(f"authorize with client_id {query.get('client_id')!r}")
        if query.get("redirect_uri") not in self.redirect_uris:
            # Google shows "Error 400: redirect_uri_mismatch" instead of redirecting.
            return self._violation(f"redirect_uri {query.get('redirect_uri')!r} is not registered")
        problems = [name for name, wanted in (("response_type", "code"), ("scope", MAIL_SCOPE),
                                              ("code_challenge_method", "S256"), ("access_type", "offline"),
                                              ("prompt", "consent")) if query.get(name) != wanted]
        if problems or not query.get("state") or len(query.get("code_challenge", "")) != 43:
            return self._violation(f"authorize request wrong in {problems or ['state or code_challenge']}: {query}")
        back: dict[str, str] = {"state": query["state"]}
        if self.deny:
            back["error"] = "access_denied"
        else:
            code = "4/0A" + secrets.token_urlsafe(24)
            self._codes[code] = Code(query["redirect_uri"], query["code_challenge"], query["scope"])
            back |= {"code": code, "scope": query["scope"]}
        return Response(status=302, headers={"Location": f"{query['redirect_uri']}?{urlencode(back)}"})

    def _token(self, request: Request) -> Response:
        if request.mimetype != "application/x-www-form-urlencoded":
            return self._violation(f"token request with Content-Type {request.mimetype!r}")
        form = {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
        self.token_requests.append({"grant_type": form.get("grant_type", "")})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return _error(401, "invalid_client", "Unauthorized")
        if form.get("grant_type") == CODE_GRANT:
            return self._redeem(form)
        if form.get("grant_type") == REFRESH_GRANT:
            if form.get("refresh_token") not in self.refresh_tokens:
                return _error(400, "invalid_grant", "Token has been expired or revoked.")
            return _json(self._access_token({"scope": MAIL_SCOPE}))
        return self._violation(f"token request with grant_type {form.get('grant_type')!r}")

    def _redeem(self, form: dict[str, str]) -> Response:
        code = self._codes.pop(form.get("code", ""), None)  # a code is good for one exchange
        if code is None:
            return _error(400, "invalid_grant", "Malformed auth code.")
        if form.get("redirect_uri") != code.redirect_uri:
            return _error(400, "redirect_uri_mismatch", "Bad Request")
        verifier = form.get("code_verifier", "")
        # RFC 7636 section 4.6: BASE64URL(SHA256(verifier)) without padding must equal the challenge.
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
        if challenge != code.challenge:
            return _error(400, "invalid_grant", "Invalid code verifier.")
        refresh = "1//0g" + secrets.token_urlsafe(24)
        self.refresh_tokens.add(refresh)
        return _json(self._access_token({"scope": code.scope, "refresh_token": refresh}))

    def _access_token(self, body: dict[str, str]) -> dict[str, object]:
        token = "ya29." + secrets.token_urlsafe(24)
        self.access_tokens[token] = time.time() + 3599
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer", **body}


def _json(body: dict[str, object], status: int = 200) -> Response:
    return Response(json.dumps(body), status, content_type="application/json")


def _error(status: int, error: str, description: str) -> Response:
    return _json({"error": error, "error_description": description}, status)


@pytest.fixture(scope="session")
def google_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HTTPServer, str]]:
    """One HTTPS server (oauthlib refuses plain http) with a self-signed certificate for 127.0.0.1."""
    directory = tmp_path_factory.mktemp("google-tls")
    cafile = make_certificate(openssl_path(), directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cafile, directory / "key.pem")
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    yield server, str(cafile)
    server.stop()


@pytest.fixture
def fake_google(google_server: tuple[HTTPServer, str]) -> Iterator[FakeGoogle]:
    server, cafile = google_server
    server.clear()
    forget_tokens()
    fake = FakeGoogle(server, cafile)
    yield fake
    forget_tokens()
    server.check_handler_errors()
    assert not fake.violations, "fake_google saw requests Google does not take:\n" + "\n".join(fake.violations)
