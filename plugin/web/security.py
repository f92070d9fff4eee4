"""Request checks and response headers every page gets: CSRF tokens, Origin check, CSP and friends."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, abort, request
from flask_wtf.csrf import CSRFProtect

# /forge/ answers Forge Remote calls, authenticated by a bearer Forge Invocation Token, never a
# cookie, so there is no cross-site form to forge; its UI is shown inside Jira's iframe.
FORGE_PREFIX = "/forge/"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PAGE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; "
            "base-uri 'none'; object-src 'none'; frame-ancestors 'none'")
FORGE_CSP = "default-src 'none'; frame-ancestors https://*.atlassian.net https://*.jira.com"

csrf = CSRFProtect()


def init_security(app: Flask) -> None:
    # Flask-WTF's own check runs from check_request, so it can skip /forge/.
    app.config.update(WTF_CSRF_CHECK_DEFAULT=False, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      PERMANENT_SESSION_LIFETIME=8 * 3600)
    csrf.init_app(app)
    app.before_request(check_request)
    app.after_request(add_headers)


def check_request() -> None:
    if request.method not in UNSAFE_METHODS or request.path.startswith(FORGE_PREFIX):
        return
    origin = request.headers.get("Origin")
    # Fetch standard: browsers send Origin on cross-origin POSTs; "null" comes from sandboxed or privacy contexts.
    if origin is not None and (origin == "null" or urlsplit(origin).netloc != request.host):
        abort(403, description="This form was sent from another site.")
    csrf.protect()


def add_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.path.startswith(FORGE_PREFIX):
        headers.setdefault("Content-Security-Policy", FORGE_CSP)
    else:
        headers.setdefault("Content-Security-Policy", PAGE_CSP)
        headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith("/admin"):
        headers["Cache-Control"] = "no-store"
    return response
