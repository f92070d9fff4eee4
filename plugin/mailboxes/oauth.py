"""OAuth 2.0 access tokens for mailboxes from Microsoft Entra ID (through msal) and Google, and how a user signs in."""
from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from oauthlib.oauth2 import OAuth2Error, WebApplicationClient

from plugin.domain import Link, MailProtocol, OAuthSettings, Secret
from plugin.errors import RetryLater
from plugin.mailboxes.network import RETRY_AFTER_CONFIG_S, RETRY_AFTER_S, TIMEOUT_S, http_session

log = logging.getLogger(__name__)

# App-only tokens ask for the resource's "/.default" scope: the application permissions an admin
# granted (learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
EWS_SCOPE = "https://outlook.office365.com/.default"
# Delegated IMAP and POP3 for Exchange Online (learn.microsoft.com/exchange/client-developer/
# legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth); msal adds
# offline_access itself, which brings the refresh token.
IMAP_SCOPES = ("https://outlook.office.com/IMAP.AccessAsUser.All",)
POP_SCOPES = ("https://outlook.office.com/POP.AccessAsUser.All",)
# Sending by SMTP AUTH XOAUTH2 from the same mailbox; the same resource, so one token serves both.
SMTP_SCOPES = ("https://outlook.office.com/SMTP.Send",)
EWS_DELEGATED_SCOPES = ("https://outlook.office365.com/EWS.AccessAsUser.All",)
# Gmail over IMAP and SMTP takes the one full-access scope (developers.google.com/gmail/imap/xoauth2-protocol).
GOOGLE_SCOPES = ("https://mail.google.com/",)
# Google's documented endpoints (developers.google.com/identity/protocols/oauth2/web-server).
GOOGLE_AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
MICROSOFT, GOOGLE = "microsoft", "google"
WARN_DAYS = 14
REFRESH_TOKEN_DAYS = 90
EXPIRY_MARGIN_S = 120  # a token this close to its end is refreshed first

_apps: dict[tuple[str, ...], msal.ClientApplication] = {}
_access_tokens: dict[str, tuple[str, float]] = {}  # fingerprint -> (delegated access token, monotonic expiry)
_replaced: set[str] = set()  # fingerprints of refresh tokens this process rotated and saved a successor of
_apps_lock = threading.Lock()
_auth_failures: dict[int, tuple[datetime, str]] = {}  # link id -> (first failure of the current run, last reason)


class LinkStore(Protocol):
    """Where a rotated refresh token is saved: the store's links."""

    def link(self, name_or_id: str | int) -> Link | None: ...

    def update_link(self, link: Link) -> None: ...


class AuthenticationFailed(RetryLater):
    """The identity platform refused the link's credential: the admin must act; no mail is touched."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, RETRY_AFTER_CONFIG_S)


def app_token(link: Link, scope: str, cafile: str | None = None) -> str:
    """An app-only access token (client credentials flow), from msal's cache while it is valid."""
    oauth = link.oauth
    if not oauth.tenant_id or not oauth.client_id:
        raise AuthenticationFailed(f"link {link.name} has no tenant id or client id for OAuth")
    if not oauth.client_secret and not oauth.certificate_path:
        raise AuthenticationFailed(f"link {link.name} has neither a client secret nor a certificate")
    with _auth_state(link), _msal_errors(link, "get an app-only token"):
        app = _confidential_app(oauth, cafile)
        result = app.acquire_token_for_client(scopes=[scope])
        return _access_token(link, result, "app-only token")


def delegated_token(link: Link, scopes: tuple[str, ...], cafile: str | None = None,
                    links: LinkStore | None = None, *, fresh: bool = False) -> str:
    """A user's access token from the stored refresh token, kept in memory until shortly before it expires.

    `fresh` skips the kept token: the mail server refused it (expired or revoked early). A refresh
    token the identity platform rotated is saved on the link through `links`.
    """
    with _apps_lock:
        replaced = _fingerprint(link.oauth.refresh_token.reveal()) in _replaced
    if replaced and links is not None:
        # This link was read before its refresh token was rotated (by the inbound half of the same
        # round): the stored one is the newest.
        link = links.link(link.id) or link
    oauth = link.oauth
    if not oauth.refresh_token:
        failure = AuthenticationFailed(f"link {link.name} has no refresh token: sign in on the admin page or "
                                       f"run `jsm-mail links auth {link.name}`")
        note_auth(link, failure.detail)
        raise failure
    key = _fingerprint(f"{link.id}:{oauth.client_id}:{' '.join(scopes)}:{oauth.refresh_token.reveal()}")
    with _apps_lock:
        kept = _access_tokens.get(key)
    if kept and not fresh and kept[1] > time.monotonic() + EXPIRY_MARGIN_S:
        return kept[0]
    with _auth_state(link):
        if oauth.provider == GOOGLE:
            result = _google_refresh(link, cafile)
        else:
            with _msal_errors(link, "refresh the access token"):
                app = _public_app(oauth, cafile)
                result = app.acquire_token_by_refresh_token(oauth.refresh_token.reveal(), scopes=list(scopes))
        token = _access_token(link, result, "access token refresh")
    expires = time.monotonic() + float(result.get("expires_in") or 0)
    rotated = result.get("refresh_token")
    with _apps_lock:
        _access_tokens[key] = (token, expires)
    if rotated and rotated != oauth.refresh_token.reveal() and links is not None:
        # Entra ID may hand out a new refresh token with each refresh; the newest lives longest.
        # Read the link again so settings an admin changed during this poll are not written back.
        current = links.link(link.id) or link
        links.update_link(replace(current, oauth=replace(current.oauth, refresh_token=Secret(rotated),
                                                         refresh_token_expires=_refresh_token_expiry())))
        with _apps_lock:
            _replaced.add(_fingerprint(oauth.refresh_token.reveal()))
            _access_tokens.pop(key, None)  # the old refresh token is not used again
            _access_tokens[_fingerprint(f"{link.id}:{oauth.client_id}:{' '.join(scopes)}:{rotated}")] = (token, expires)
        log.info("refresh token renewed link=%s", link.name)
    return token


def sign_in_with_token(link: Link, login: Callable[[str], None], refused: type[Exception], cafile: str | None,
                       links: LinkStore | None) -> None:
    """Log in with a delegated token (SASL XOAUTH2); a kept token the server refuses is refreshed once."""
    scopes = scopes_for(link)
    try:
        login(delegated_token(link, scopes, cafile, links))
    except refused:
        # The server may know better than our clock: the token expired or was revoked early.
        log.info("token refused, refreshing once link=%s", link.name)
        try:
            login(delegated_token(link, scopes, cafile, links, fresh=True))
        except refused:
            note_auth(link, f"the mail server refused the login of {link.username} with a fresh access token: "
                            "the account may lack IMAP/POP/SMTP access or the app its permission")
            raise
    note_auth(link, None)


def xoauth2_string(user: str, token: str) -> str:
    """The XOAUTH2 initial client response before base64 (developers.google.com/gmail/imap/xoauth2-protocol)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def xoauth2_response(user: str, token: str) -> str:
    """The XOAUTH2 initial client response, base64."""
    return base64.b64encode(xoauth2_string(user, token).encode()).decode("ascii")


def device_code_sign_in(link: Link, scopes: tuple[str, ...], show: Callable[[str], None],
                        cafile: str | None = None) -> OAuthSettings:
    """The device-code flow: `show` gets Microsoft's instructions (code and URL); returns the settings
    with the new refresh token (learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code)."""
    with _msal_errors(link, "start the device-code sign-in"):
        app = _public_app(link.oauth, cafile, shared=False)
        flow = app.initiate_device_flow(scopes=list(scopes))
    if "user_code" not in flow:
        raise AuthenticationFailed(f"device-code sign-in refused: {_words(flow)}")
    show(flow["message"])
    with _msal_errors(link, "wait for the device-code sign-in"):
        result = app.acquire_token_by_device_flow(flow)
    _access_token(link, result, "device-code sign-in")
    refresh = result.get("refresh_token")
    if not refresh:
        raise AuthenticationFailed("the sign-in gave no refresh token; the app registration must allow offline_access")
    return replace(link.oauth, refresh_token=Secret(refresh), refresh_token_expires=_refresh_token_expiry())


def scopes_for(link: Link) -> tuple[str, ...]:
    """The delegated scopes the link's protocol needs, with SMTP.Send when the link sends mail by SMTP."""
    if link.oauth.provider == GOOGLE:
        if link.protocol not in (MailProtocol.IMAP, MailProtocol.POP3):
            raise AuthenticationFailed(f"{link.protocol.value} links cannot sign in with Google; use IMAP or POP3")
        return GOOGLE_SCOPES  # IMAP, POP3 and SMTP alike
    sending = SMTP_SCOPES if link.send_replies and link.smtp_host else ()
    if link.protocol is MailProtocol.IMAP:
        return IMAP_SCOPES + sending
    if link.protocol is MailProtocol.POP3:
        return POP_SCOPES + sending
    if link.protocol is MailProtocol.EWS:
        return EWS_DELEGATED_SCOPES
    raise AuthenticationFailed(f"{link.protocol.value} links do not sign in as a user; use app-only sign-in")


def forget_tokens() -> None:
    """Drop every cached msal app and token, and what is known of sign-in failures, as after a restart."""
    with _apps_lock:
        _apps.clear()
        _access_tokens.clear()
        _replaced.clear()
        _auth_failures.clear()


@dataclass(frozen=True)
class AuthState:
    """How a link's last sign-ins went: `since` is the first failure of the current run, None while all is well."""

    since: datetime | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.since is None


def note_auth(link: Link, failure: str | None) -> None:
    """Record a token request or login of the link: `failure` says why it failed, None that it worked."""
    with _apps_lock:
        if failure is None:
            _auth_failures.pop(link.id, None)
        else:
            _auth_failures[link.id] = (_auth_failures.get(link.id, (datetime.now(UTC), ""))[0], failure)


def restore_auth(link: Link, state: AuthState) -> None:
    """Put back the link's state from before a sign-in that was only tried (a probe that failed)."""
    with _apps_lock:
        if state.since is None:
            _auth_failures.pop(link.id, None)
        else:
            _auth_failures[link.id] = (state.since, state.reason)


def auth_state(link: Link) -> AuthState:
    """The link's sign-in state as this process saw it: ok, or failing since when and why."""
    with _apps_lock:
        failing = _auth_failures.get(link.id)
    return AuthState(*failing) if failing else AuthState()


@contextmanager
def _auth_state(link: Link) -> Iterator[None]:
    """Refused credentials are recorded as the link's auth state; a network failure says nothing of them."""
    try:
        yield
    except AuthenticationFailed as failure:
        note_auth(link, failure.detail)
        raise
    note_auth(link, None)


def _refresh_token_expiry() -> date:
    """Entra ID refresh tokens live 90 days unless used (learn.microsoft.com/entra/identity-platform/refresh-tokens)."""
    return datetime.now(UTC).date() + timedelta(days=REFRESH_TOKEN_DAYS)


@dataclass(frozen=True)
class Expiry:
    """A credential that runs out within WARN_DAYS, or ran out."""

    label: str  # "client secret", "refresh token"
    day: date
    days_left: int

    @property
    def expired(self) -> bool:
        return self.days_left < 0

    def __str__(self) -> str:
        if self.expired:
            return f"{self.label} expired on {self.day.isoformat()}"
        return f"{self.label} expires on {self.day.isoformat()}, in {self.days_left} days"


def credential_dates(oauth: OAuthSettings) -> list[tuple[str, date]]:
    """When the client secret and the refresh token run out, those that are known."""
    return [(label, day) for label, day in (("client secret", oauth.client_secret_expires),
                                            ("refresh token", oauth.refresh_token_expires)) if day is not None]


def credential_expiries(oauth: OAuthSettings, today: date) -> list[Expiry]:
    """The client secret and refresh token when they run out within WARN_DAYS (or ran out)."""
    return [Expiry(label, day, (day - today).days) for label, day in credential_dates(oauth)
            if (day - today).days <= WARN_DAYS]


def expiry_warnings(oauth: OAuthSettings, today: date) -> list[str]:
    """What runs out within WARN_DAYS (or ran out) of the client secret and the refresh token."""
    return [str(expiry) for expiry in credential_expiries(oauth, today)]


# Sign-in in the browser: the authorization-code flow with PKCE (RFC 7636) --------------------

@dataclass(frozen=True)
class GoogleClient:
    """The Google Cloud OAuth client (a "Web application") the admin page signs in with."""

    client_id: str
    client_secret: Secret
    authorize_url: str = GOOGLE_AUTHORIZE_URL
    token_url: str = GOOGLE_TOKEN_URL


@dataclass(frozen=True)
class PendingSignIn:
    """A sign-in sent to the identity platform, waiting for its answer at the redirect URL."""

    link_id: int
    provider: str
    state: str
    redirect_uri: str
    authorize_url: str
    flow: dict[str, Any] = field(repr=False)  # msal's auth code flow, or Google's PKCE verifier
    started: float = field(default_factory=time.monotonic)


def start_code_sign_in(link: Link, provider: str, redirect_uri: str, google: GoogleClient | None,
                       cafile: str | None = None) -> PendingSignIn:
    """Where to send the admin's browser to sign in as the mailbox user, with a fresh state and PKCE verifier."""
    if provider == GOOGLE:
        if google is None or not google.client_id or not google.client_secret:
            raise AuthenticationFailed("no Google OAuth client: set JSM_MAIL_GOOGLE_CLIENT_ID and "
                                       "JSM_MAIL_GOOGLE_CLIENT_SECRET")
        scopes = scopes_for(replace(link, oauth=replace(link.oauth, provider=GOOGLE)))
        client = WebApplicationClient(google.client_id)
        verifier = client.create_code_verifier(64)
        state = secrets.token_urlsafe(32)
        # access_type=offline and prompt=consent: Google returns a refresh token, also to a user who
        # consented before (developers.google.com/identity/protocols/oauth2/web-server#offline).
        url = client.prepare_request_uri(google.authorize_url, redirect_uri=redirect_uri, scope=list(scopes),
                                         state=state, code_challenge=client.create_code_challenge(verifier, "S256"),
                                         code_challenge_method="S256", access_type="offline", prompt="consent",
                                         login_hint=link.address or link.username)
        return PendingSignIn(link.id, GOOGLE, state, redirect_uri, url, {"code_verifier": verifier})
    if not (link.oauth.tenant_id and link.oauth.client_id):
        raise AuthenticationFailed(f"link {link.name} has no tenant id and client id of a Microsoft app registration")
    microsoft = replace(link, oauth=replace(link.oauth, provider=MICROSOFT))
    with _msal_errors(link, "start the Microsoft sign-in"):
        app = _public_app(microsoft.oauth, cafile, shared=False)
        # msal makes the state and the PKCE pair (S256) and asks for offline_access itself.
        with warnings.catch_warnings():
            # msal recommends response_mode=form_post; the answer comes back as a GET instead, a top-level
            # navigation that carries the admin's SameSite=Lax session cookie, so the state can be bound to
            # the session. The code in the URL is useless without the PKCE verifier, which stays here.
            warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended")
            flow = app.initiate_auth_code_flow(list(scopes_for(microsoft)), redirect_uri=redirect_uri,
                                               login_hint=link.address or link.username)
    return PendingSignIn(link.id, MICROSOFT, flow["state"], redirect_uri, flow["auth_uri"], flow)


def finish_code_sign_in(link: Link, pending: PendingSignIn, answer: dict[str, str], google: GoogleClient | None,
                        cafile: str | None = None) -> OAuthSettings:
    """Redeem the code the identity platform sent back; the link's sign-in settings with the new refresh token."""
    if answer.get("error"):
        raise AuthenticationFailed(f"the sign-in was not completed: {_words(answer)}")
    if pending.provider == GOOGLE:
        assert google is not None
        client = WebApplicationClient(google.client_id)
        body = client.prepare_request_body(code=answer.get("code", ""), redirect_uri=pending.redirect_uri,
                                           client_secret=google.client_secret.reveal(),
                                           code_verifier=pending.flow["code_verifier"])
        result = _google_token_call(link, client, google.token_url, body, cafile, "redeem the sign-in code")
        _access_token(link, result, "Google sign-in")
        if not result.get("refresh_token"):
            raise AuthenticationFailed("Google gave no refresh token; the sign-in must ask for offline access")
        return OAuthSettings(client_id=google.client_id, client_secret=google.client_secret,
                             authority=google.token_url, provider=GOOGLE, refresh_token=Secret(result["refresh_token"]),
                             refresh_token_expires=None)
    microsoft = replace(link.oauth, provider=MICROSOFT)
    with _msal_errors(link, "redeem the Microsoft sign-in code"):
        app = _public_app(microsoft, cafile, shared=False)
        result = app.acquire_token_by_auth_code_flow(pending.flow, answer)
    _access_token(link, result, "Microsoft sign-in")
    if not result.get("refresh_token"):
        raise AuthenticationFailed("the sign-in gave no refresh token; the app registration must allow offline_access")
    return replace(microsoft, refresh_token=Secret(result["refresh_token"]),
                   refresh_token_expires=_refresh_token_expiry())


def _google_refresh(link: Link, cafile: str | None) -> dict[str, Any]:
    """A new access token from Google's token endpoint by the refresh token (RFC 6749 section 6; Google
    keeps the refresh token, so none comes back)."""
    oauth = link.oauth
    client = WebApplicationClient(oauth.client_id)
    body = client.prepare_refresh_body(refresh_token=oauth.refresh_token.reveal(), client_id=oauth.client_id,
                                       client_secret=oauth.client_secret.reveal())
    return _google_token_call(link, client, oauth.authority, body, cafile, "refresh the access token")


def _google_token_call(link: Link, client: WebApplicationClient, url: str, body: str, cafile: str | None,
                       action: str) -> dict[str, Any]:
    failed = f"could not {action} for {link.name}:"
    session = http_session(cafile)
    try:
        response = session.post(url, data=body, timeout=TIMEOUT_S,
                                headers={"Content-Type": "application/x-www-form-urlencoded",
                                         "Accept": "application/json"})
    except requests.exceptions.SSLError as exc:
        raise RetryLater(f"{failed} the certificate of {url} is not trusted", RETRY_AFTER_CONFIG_S) from exc
    except requests.RequestException as exc:
        raise RetryLater(f"{failed} {url} is unreachable ({type(exc).__name__})", RETRY_AFTER_S) from exc
    finally:
        session.close()
    if response.status_code >= 500:
        raise RetryLater(f"{failed} Google answered {response.status_code}", RETRY_AFTER_S)
    try:
        return dict(client.parse_request_body_response(response.text))
    except OAuth2Error as refused:
        # 400 invalid_grant "Token has been expired or revoked.", 401 invalid_client (a wrong secret).
        raise AuthenticationFailed(f"{failed} Google refused it: {refused.error}: "
                                   f"{refused.description or 'no description'}") from None
    except ValueError as exc:
        raise RetryLater(f"{failed} Google's answer is not a token ({exc})", RETRY_AFTER_S) from None


def _confidential_app(oauth: OAuthSettings, cafile: str | None) -> msal.ConfidentialClientApplication:
    credential: str | dict[str, str]
    if oauth.certificate_path:
        credential = _certificate_credential(Path(oauth.certificate_path))
    else:
        credential = oauth.client_secret.reveal()
    key = ("app", oauth.authority, oauth.tenant_id, oauth.client_id, _fingerprint(str(credential)), cafile or "")
    with _apps_lock:
        if key not in _apps:
            _apps[key] = msal.ConfidentialClientApplication(
                oauth.client_id, client_credential=credential, authority=_authority(oauth),
                http_client=http_session(cafile), instance_discovery=False, timeout=TIMEOUT_S)
        app = _apps[key]
    assert isinstance(app, msal.ConfidentialClientApplication)
    return app


def _public_app(oauth: OAuthSettings, cafile: str | None, shared: bool = True) -> msal.PublicClientApplication:
    key = ("user", oauth.authority, oauth.tenant_id, oauth.client_id, _fingerprint(oauth.refresh_token.reveal()),
           cafile or "")
    with _apps_lock:
        app = _apps.get(key) if shared else None
        if app is None:
            app = msal.PublicClientApplication(oauth.client_id, authority=_authority(oauth),
                                               http_client=http_session(cafile), instance_discovery=False,
                                               timeout=TIMEOUT_S)
            if shared:
                _apps[key] = app
    assert isinstance(app, msal.PublicClientApplication)
    return app


def _authority(oauth: OAuthSettings) -> str:
    return f"{oauth.authority.rstrip('/')}/{oauth.tenant_id or 'organizations'}"


def _fingerprint(value: str) -> str:
    """Tells credentials apart in the app cache without keeping them in a key."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _certificate_credential(path: Path) -> dict[str, str]:
    """msal's certificate credential: the private key and the SHA-1 thumbprint of the certificate in one PEM."""
    try:
        pem = path.read_text("ascii")
    except OSError as exc:
        raise AuthenticationFailed(f"cannot read the certificate {path}: {exc.strerror or exc}") from exc
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError as exc:
        raise AuthenticationFailed(f"{path} holds no PEM certificate") from exc
    if "PRIVATE KEY-----" not in pem:
        raise AuthenticationFailed(f"{path} holds no private key next to the certificate")
    return {"private_key": pem, "thumbprint": certificate.fingerprint(hashes.SHA1()).hex(),
            "public_certificate": certificate.public_bytes(Encoding.PEM).decode("ascii")}


@contextmanager
def _msal_errors(link: Link, action: str) -> Iterator[None]:
    """Network errors on the way to the identity platform as RetryLater; an unknown tenant as an auth error."""
    failed = f"could not {action} for {link.name}:"
    try:
        yield
    except requests.exceptions.SSLError as exc:
        raise RetryLater(f"{failed} the certificate of {link.oauth.authority} is not trusted",
                         RETRY_AFTER_CONFIG_S) from exc
    except requests.RequestException as exc:
        raise RetryLater(f"{failed} {link.oauth.authority} is unreachable ({type(exc).__name__})",
                         RETRY_AFTER_S) from exc
    except ValueError as exc:
        # msal raises ValueError when the tenant's OpenID configuration answers 4xx (unknown tenant),
        # and for settings it cannot use.
        text = (str(exc).splitlines() or [type(exc).__name__])[0]
        if "authority configuration" in text or "OIDC" in text:
            raise AuthenticationFailed(f"{failed} tenant {link.oauth.tenant_id!r} was not found at "
                                       f"{link.oauth.authority}") from exc
        raise AuthenticationFailed(f"{failed} {text}") from exc


def _access_token(link: Link, result: dict[str, Any] | None, what: str) -> str:
    if result and "access_token" in result:
        return str(result["access_token"])
    raise AuthenticationFailed(f"{what} for {link.name} refused: {_words(result or {})}")


def _words(result: dict[str, Any]) -> str:
    """The identity platform's error code and the first line of its description (AADSTS number included)."""
    description = str(result.get("error_description") or "").splitlines()
    return f"{result.get('error', 'no token')}: {description[0] if description else 'no description'}"

