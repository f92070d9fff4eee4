"""One small HTTP layer under every Jira call: authentication, JSON, and errors in the product's terms."""
from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.auth import AuthBase

from plugin.domain import Secret
from plugin.errors import MailRejected, RejectReason, RetryLater
from plugin.metrics import count_jira_call

log = logging.getLogger(__name__)

DEFAULT_RETRY_S = 60.0
CONFIG_RETRY_S = 300.0  # a credentials or settings problem: someone has to fix it first
_HTML = re.compile(r"^\s*<(!doctype|html)", re.IGNORECASE)


class JiraAnswered(Exception):
    """Jira answered with an error status that a caller may want to handle itself."""

    def __init__(self, status: int, error: Exception) -> None:
        super().__init__(status)
        self.status = status
        self.error = error


class JiraHttp:
    """Calls Jira's REST APIs on one kept session: as the API user (email + API token, basic auth), or
    with `auth` instead (the Forge app's system token, plugin.jira.forge_auth)."""

    def __init__(self, url: str, email: str, api_token: Secret, timeout_s: float = 30.0, *,
                 auth: AuthBase | None = None) -> None:
        self.url = url.rstrip("/")
        self._timeout_s = timeout_s
        self._session = requests.Session()
        self._session.auth = auth or (email, api_token.reveal())
        self._session.headers.update({"Accept": "application/json", "X-Atlassian-Token": "no-check"})
        # Jira Cloud rate-limits per site: once it says Retry-After, every link of this site waits.
        self._quiet_until = 0.0

    def __repr__(self) -> str:
        return f"JiraHttp(url={self.url!r})"

    def call(self, method: str, path: str, *, none_on: tuple[int, ...] = (), **kwargs: Any) -> Any:
        """The JSON body ({} when empty), or None when Jira answers a status in `none_on`."""
        response = self._send(method, path, none_on=none_on, **kwargs)
        if response is None:
            return None
        try:
            return response.json() if response.content else {}
        except ValueError:
            raise RetryLater(f"Jira answered {method} {path.split('?')[0]} with something that is not JSON",
                             DEFAULT_RETRY_S) from None

    def content(self, path: str) -> bytes:
        """The bytes Jira serves at this path (an attachment's content)."""
        response = self._send("GET", path)
        assert response is not None
        return response.content

    def _send(self, method: str, path: str, *, none_on: tuple[int, ...] = (),
              **kwargs: Any) -> requests.Response | None:
        what = f"{method} {path.split('?')[0]}"
        wait_s = self._quiet_until - time.monotonic()
        if wait_s > 0:
            raise RetryLater(f"Jira asked this site to wait; {wait_s:.0f} s to go (Retry-After)", wait_s)
        try:
            response = self._session.request(method, self.url + path, timeout=self._timeout_s, **kwargs)
        except requests.RequestException as error:
            count_jira_call(method, None)
            raise RetryLater(f"Jira unreachable on {what}: {type(error).__name__}", DEFAULT_RETRY_S) from None
        count_jira_call(method, response.status_code)
        log.debug("jira %s -> %s", what, response.status_code)
        if response.status_code >= 400:
            if response.status_code in none_on:
                return None
            if response.headers.get("Retry-After") and (response.status_code == 429 or response.status_code >= 500):
                self._quiet_until = time.monotonic() + retry_after_s(response)
            raise error_for(response, what)
        return response


def error_for(response: requests.Response, what: str) -> Exception:
    """429/5xx and auth problems: retry later; other 4xx: Jira refuses this mail's content."""
    status = response.status_code
    message = _message(response)
    if status == 429 or status >= 500:
        return RetryLater(f"Jira answered {status} to {what}: {message}", retry_after_s(response))
    if status in (401, 403):
        return RetryLater(f"Jira authentication/permission problem ({status}) on {what}: {message}. "
                          "Check the API user's email, token and project permissions.", CONFIG_RETRY_S)
    return MailRejected(RejectReason.JIRA_REFUSED, f"Jira refused {what} ({status}): {message}")


def _message(response: requests.Response) -> str:
    """Jira's own error text; never the raw body of a proxy's HTML page, never request headers."""
    try:
        body = response.json()
    except ValueError:
        return "an HTML error page (not from Jira itself)" if _HTML.match(response.text or "") else "no message"
    if not isinstance(body, dict):
        return "no message"
    parts = list(body.get("errorMessages") or [])
    parts += [f"{k}: {v}" for k, v in (body.get("errors") or {}).items()]
    if body.get("errorMessage"):
        parts.append(str(body["errorMessage"]))
    return "; ".join(map(str, parts))[:500] or "no message"


def retry_after_s(response: requests.Response) -> float:
    """RFC 9110 section 10.2.3: Retry-After is delay-seconds or an HTTP-date."""
    value = response.headers.get("Retry-After")
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
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
