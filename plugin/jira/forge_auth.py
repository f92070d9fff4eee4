"""Jira calls as the Forge app: the system token of the site's latest Forge call, sent to api.atlassian.com."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
import requests
from requests.auth import AuthBase

from plugin.domain import Secret
from plugin.errors import RetryLater
from plugin.jira.http import CONFIG_RETRY_S

# Forge Remote, "Calling Atlassian app APIs from a remote": the x-forge-oauth-system token is valid
# for at least 55 minutes; its JWT exp says exactly how long.
# https://developer.atlassian.com/platform/forge/remote/calling-product-apis/
TOKEN_LIFETIME = timedelta(minutes=55)
EXPIRY_MARGIN = timedelta(minutes=1)  # a call started just before exp may reach Jira just after it


@dataclass(frozen=True, slots=True)
class SiteToken:
    """Where and how to call one Jira site as the app: app.apiBaseUrl of the FIT, and the system token."""

    api_base_url: str  # https://api.atlassian.com/ex/jira/{cloudId}
    token: Secret
    expires: datetime


def api_base_url(claimed: str | None, cloud_id: str | None) -> str | None:
    """The FIT's app.apiBaseUrl, else Jira's gateway address for the cloud id (Atlassian's OAuth 2.0 docs)."""
    if claimed:
        return claimed.rstrip("/")
    return f"https://api.atlassian.com/ex/jira/{cloud_id}" if cloud_id else None


def system_token(header: str | None, now: datetime | None = None) -> tuple[Secret, datetime] | None:
    """The x-forge-oauth-system header's token and when it expires; None without one."""
    value = (header or "").strip()
    if value.lower().startswith("bearer "):
        value = value[len("bearer "):].strip()
    if not value:
        return None
    now = now or datetime.now(UTC)
    try:  # only its expiry is read: the token is Atlassian's to check, and it came in a verified call
        exp = jwt.decode(value, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        exp = None
    expires = datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else now + TOKEN_LIFETIME
    return Secret(value), expires


class ForgeSystemAuth(AuthBase):
    """Sends each call for `site_url` to the site's api.atlassian.com address with its current system token.

    The path stays as it is: /rest/api/2/... on the site is /ex/jira/{cloudId}/rest/api/2/... on the gateway."""

    def __init__(self, site_url: str, current: Callable[[], SiteToken | None]) -> None:
        self.site_url = site_url.rstrip("/")
        self._current = current

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        found = self._current()
        if found is None:
            raise RetryLater(f"jsm-mail has no Forge system token for {self.site_url} yet: open jsm-mail's admin "
                             "page in Jira once, or wait for Forge's next call", CONFIG_RETRY_S)
        if found.expires - EXPIRY_MARGIN <= datetime.now(UTC):
            raise RetryLater(f"the Forge system token for {self.site_url} expired at {found.expires:%H:%M} UTC; "
                             "Forge's next call (at the latest its hourly check) brings a new one", CONFIG_RETRY_S)
        url = request.url or ""
        if url.startswith(self.site_url):
            request.url = found.api_base_url + url[len(self.site_url):]
        request.headers["Authorization"] = f"Bearer {found.token.reveal()}"
        return request
