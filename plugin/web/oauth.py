"""Sign in with Microsoft or Google from the admin page: the authorization-code flow for a link's mailbox user."""
from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from plugin.domain import AuthMethod, Link, MailProtocol
from plugin.errors import RetryLater
from plugin.link_form import awaiting_sign_in
from plugin.mailboxes import open_mailbox
from plugin.mailboxes.oauth import (
    GOOGLE,
    MICROSOFT,
    AuthState,
    Expiry,
    GoogleClient,
    PendingSignIn,
    auth_state,
    credential_dates,
    credential_expiries,
    finish_code_sign_in,
    restore_auth,
    start_code_sign_in,
)
from plugin.settings import Settings
from plugin.web import current_runtime
from plugin.web.auth import require_admin

log = logging.getLogger(__name__)
bp = Blueprint("oauth", __name__, url_prefix="/admin/oauth")
PENDING_S = 10 * 60  # a sign-in not finished within this is forgotten
SESSION_KEY = "oauth_sign_in"  # the state of the admin's own sign-in in progress
PROVIDERS = {MICROSOFT: "Microsoft", GOOGLE: "Google"}


@dataclass
class PendingSignIns:
    """Sign-ins waiting for their callback, kept in the process: the PKCE verifier never reaches the browser."""

    by_state: dict[str, PendingSignIn] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, pending: PendingSignIn) -> None:
        with self.lock:
            self._forget_old()
            self.by_state[pending.state] = pending

    def take(self, state: str) -> PendingSignIn | None:
        with self.lock:
            self._forget_old()
            return self.by_state.pop(state, None)

    def _forget_old(self) -> None:
        for state in [s for s, p in self.by_state.items() if time.monotonic() - p.started > PENDING_S]:
            del self.by_state[state]


@dataclass(frozen=True)
class OAuthStatus:
    """What oauth_signin.html shows of a link: its sign-in state, what runs out soon, which sign-ins it offers."""

    signs_in: bool  # the link signs in by OAuth, so its state is worth showing
    provider: str
    state: AuthState
    dates: list[tuple[str, date]]  # when the client secret and refresh token run out
    expiries: list[Expiry]  # those within 14 days, or past
    buttons: list[tuple[str, str]]  # (provider, its name)


def oauth_status(link: Link) -> OAuthStatus:
    settings = current_runtime().settings
    buttons = []
    if link.protocol in (MailProtocol.IMAP, MailProtocol.POP3, MailProtocol.EWS) and \
            link.oauth.tenant_id and link.oauth.client_id:
        buttons.append((MICROSOFT, PROVIDERS[MICROSOFT]))
    if link.protocol in (MailProtocol.IMAP, MailProtocol.POP3) and google_client(settings):
        buttons.append((GOOGLE, PROVIDERS[GOOGLE]))
    oauth = link.auth in (AuthMethod.OAUTH2_APP, AuthMethod.OAUTH2_DELEGATED)
    provider = PROVIDERS.get(link.oauth.provider, "") if link.auth is AuthMethod.OAUTH2_DELEGATED else ""
    return OAuthStatus(oauth, provider, auth_state(link), credential_dates(link.oauth),
                       credential_expiries(link.oauth, datetime.now(UTC).date()), buttons)


def credential_health(links: list[Link], now: datetime | None = None) -> tuple[list[str], list[str]]:
    """For /health: the problems (a credential expired, sign-in failing) and the warnings (one expires soon)."""
    today = (now or datetime.now(UTC)).date()
    problems: list[str] = []
    warnings: list[str] = []
    for link in links:
        if link.auth not in (AuthMethod.OAUTH2_APP, AuthMethod.OAUTH2_DELEGATED):
            continue
        state = auth_state(link)
        if state.since is not None:
            problems.append(f"link {link.name} cannot sign in since {state.since:%Y-%m-%d %H:%M} UTC: {state.reason}")
        for expiry in credential_expiries(link.oauth, today):
            (problems if expiry.expired else warnings).append(f"link {link.name}: {expiry}")
    return problems, warnings


@bp.app_context_processor
def status_helper() -> dict[str, Any]:
    """oauth_signin.html asks each link's status itself, so any page that lists links can include it."""
    return {"oauth_status": oauth_status}


def _pending() -> PendingSignIns:
    pending: PendingSignIns = current_app.extensions.setdefault("jsm_mail_oauth", PendingSignIns())
    return pending


def google_client(settings: Settings) -> GoogleClient | None:
    """The Google OAuth client from JSM_MAIL_GOOGLE_CLIENT_ID and _SECRET, or None when not configured."""
    if not settings.google_client_id or not settings.google_client_secret:
        return None
    return GoogleClient(settings.google_client_id, settings.google_client_secret, settings.google_authorize_url,
                        settings.google_token_url)


def redirect_uri(settings: Settings) -> str:
    """The callback URL to register with the identity platforms: under JSM_MAIL_PUBLIC_URL, else this host."""
    if settings.public_url:
        return settings.public_url + url_for("oauth.callback")
    return url_for("oauth.callback", _external=True)


@bp.post("/<name>/start")
@require_admin
def start(name: str) -> ResponseReturnValue:
    """Send the browser to Microsoft's or Google's sign-in page, the state bound to this admin session."""
    link = current_runtime().store.link(name)
    if link is None:
        abort(404)
    return begin_sign_in(link, request.form.get("provider", ""))


def begin_sign_in(link: Link, provider: str) -> ResponseReturnValue:
    """The redirect to the provider's sign-in page for `link`; the link page's buttons and the wizard's
    "Save and sign in" both start here."""
    runtime = current_runtime()
    if provider not in PROVIDERS:
        abort(400, description=gettext("Sign in with %(providers)s.", providers=" / ".join(PROVIDERS.values())))
    try:
        pending = start_code_sign_in(link, provider, redirect_uri(runtime.settings), google_client(runtime.settings),
                                     cafile=runtime.settings.ca_file)
    except RetryLater as refused:
        abort(400, description=gettext("Cannot sign in %(link)s with %(provider)s: %(reason)s", link=link.name,
                                        provider=PROVIDERS[provider], reason=refused.detail))
    _pending().add(pending)
    session[SESSION_KEY] = pending.state
    log.info("oauth sign-in started link=%s provider=%s", link.name, provider)
    return redirect(pending.authorize_url)


@bp.get("/callback")
@require_admin
def callback() -> ResponseReturnValue:
    """The identity platform's answer: redeem the code, probe the mailbox with it, then replace the credential."""
    runtime = current_runtime()
    state = request.args.get("state", "")
    expected = session.pop(SESSION_KEY, None)
    # RFC 6749 section 10.12: the state must be the one this browser's session sent; anything else
    # may be another's code planted in this session (login CSRF).
    if not state or not expected or not secrets.compare_digest(state, expected):
        abort(400, description=gettext("This sign-in answer does not belong to a sign-in started in this session; "
                                       "start it again from the admin page."))
    pending = _pending().take(state)
    if pending is None:
        abort(400, description=gettext("This sign-in took too long or was answered already; start it again."))
    link = runtime.store.link(pending.link_id)
    if link is None:
        abort(404)
    provider = PROVIDERS[pending.provider]
    before = auth_state(link)
    # A link the wizard saved disabled until its first sign-in is enabled by a sign-in that works.
    first = awaiting_sign_in(link)
    try:
        oauth = finish_code_sign_in(link, pending, request.args.to_dict(), google_client(runtime.settings),
                                    cafile=runtime.settings.ca_file)
        candidate = replace(link, auth=AuthMethod.OAUTH2_DELEGATED, oauth=oauth)
        _probe(candidate, runtime.settings)
    except RetryLater as refused:
        restore_auth(link, before)  # the link still signs in the old way: its state is not the attempt's
        log.info("oauth sign-in failed link=%s provider=%s: %s", link.name, pending.provider, refused.detail)
        if first:
            flash(gettext("Sign-in of %(link)s with %(provider)s failed, the link stays disabled: %(reason)s",
                          link=link.name, provider=provider, reason=refused.detail))
            return redirect(url_for("links.show", name=link.name))
        flash(gettext("Sign-in of %(link)s with %(provider)s failed, the link keeps its old sign-in: %(reason)s",
                      link=link.name, provider=provider, reason=refused.detail))
        return redirect(url_for("admin.index"))
    # The link is read again so settings an admin changed meanwhile are not overwritten.
    current = runtime.store.link(link.id) or link
    runtime.store.update_link(replace(current, auth=AuthMethod.OAUTH2_DELEGATED, oauth=oauth,
                                      enabled=current.enabled or first))
    flash(gettext("%(link)s signed in with %(provider)s as %(user)s (login, folder and a label write probed).",
                  link=link.name, provider=provider, user=link.username))
    if first:
        flash(gettext("Link %(name)s enabled: the mailbox is polled from now on.", name=link.name))
    if oauth.refresh_token_expires:
        flash(gettext("The refresh token lasts until %(day)s.", day=oauth.refresh_token_expires))
    log.info("oauth sign-in stored link=%s provider=%s enabled=%s", link.name, pending.provider, first)
    return redirect(url_for("links.show", name=link.name) if first else url_for("admin.index"))


def _probe(link: Link, settings: Settings) -> None:
    """As `links switch` does: log in, list the folder and write a label on no mail with the new credential."""
    with open_mailbox(link, cafile=settings.ca_file) as mailbox:
        mailbox.probe()
