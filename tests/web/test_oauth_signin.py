"""Sign in with Microsoft or Google from the admin page, driven through Flask's test client against the fake
identity platforms (tests/fakes/graph.py, tests/fakes/google.py) and the real Dovecot, whose oauth2 passdb asks
the introspection endpoint about each token; then the auth state and credential expiry on the page and /health."""
from __future__ import annotations

import email.policy
import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import text

from plugin.app import create_app
from plugin.domain import AuthMethod, OAuthSettings, Secret, Security
from plugin.mailboxes import open_mailbox
from plugin.mailboxes.oauth import forget_tokens
from plugin.outbound.send import deliver
from plugin.poll import poll_mailbox
from plugin.runtime import Runtime
from tests.mailboxes.test_ews import ews_link
from tests.web.test_admin import form_token, log_in

CALLBACK = "http://localhost/admin/oauth/callback"  # what url_for makes under Flask's test client
IMAP = "https://outlook.office.com/IMAP.AccessAsUser.All"
SMTP_SEND = "https://outlook.office.com/SMTP.Send"
GMAIL = "https://mail.google.com/"


@pytest.fixture
def ca_bundle(tmp_path, fake_graph, fake_google, smtp_xoauth2) -> str:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(b"".join(Path(f).read_bytes() for f in (fake_graph.cafile, fake_google.cafile,
                                                               smtp_xoauth2.cafile)))
    return str(bundle)


@pytest.fixture
def site(service, fake_graph, fake_google, smtp_xoauth2, ca_bundle):
    """The service with a Google OAuth client configured and a password link that has a Microsoft app
    registration (tenant and client id) but no OAuth sign-in yet; both platforms know the callback URL."""
    fake_graph.redirect_uris.add(CALLBACK)
    fake_google.redirect_uris.add(CALLBACK)
    service.settings = service.settings.with_(
        ca_file=ca_bundle, google_client_id=fake_google.client_id,
        google_client_secret=Secret(fake_google.client_secret), google_authorize_url=fake_google.authorize_url,
        google_token_url=fake_google.token_url)
    service.relink(oauth=OAuthSettings(tenant_id=fake_graph.tenant_id, client_id=fake_graph.client_id,
                                       authority=fake_graph.url),
                   smtp_host=smtp_xoauth2.host, smtp_port=smtp_xoauth2.port, smtp_security=Security.STARTTLS)
    return service


@pytest.fixture
def runtime(site):
    return Runtime(site.settings, store=site.store, jira=site.jira)


@pytest.fixture
def admin(runtime):
    app = create_app(runtime)
    app.config["TESTING"] = True
    client = app.test_client()
    assert log_in(client, runtime.settings).status_code == 302
    return client


@pytest.fixture
def dovecot_trusts(mail_account, fake_graph, fake_google, token_introspection):
    """Dovecot takes the unexpired access tokens either platform issued, for the test's mailbox user."""
    token_introspection.owner = lambda token: (mail_account.username if fake_graph.token_is_valid(token)
                                               or fake_google.token_is_valid(token) else None)
    return token_introspection


def start(admin, name: str, provider: str):
    return admin.post(f"/admin/oauth/{name}/start", data={"csrf_token": form_token(admin), "provider": provider})


def consent(authorize_url: str, cafile: str) -> str:
    """The browser at the identity platform: the user signs in and consents; the redirect back to us."""
    answer = requests.get(authorize_url, verify=cafile, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def call_back(admin, location: str):
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == CALLBACK
    return admin.get(f"{parts.path}?{parts.query}")


def sign_in(admin, site, provider: str):
    started = start(admin, site.link.name, provider)
    assert started.status_code == 302
    return call_back(admin, consent(started.headers["Location"], site.settings.ca_file))


def sealed_options(site) -> str:
    with site.store.engine.connect() as connection:
        return json.dumps(connection.execute(text("SELECT options FROM links WHERE id = :id"),
                                             {"id": site.link.id}).scalar_one())


def test_sign_in_with_microsoft_stores_the_refresh_token_sealed_and_dovecot_takes_its_tokens(
        admin, site, fake_graph, mail_account, dovecot_trusts):
    mail_account.append(b"From: ann@example.org\r\nTo: support@example.test\r\nSubject: hi\r\n\r\nHello\r\n")
    started = start(admin, site.link.name, "microsoft")

    query = parse_qs(urlsplit(started.headers["Location"]).query)
    assert started.headers["Location"].startswith(f"{fake_graph.url}/{fake_graph.tenant_id}/oauth2/v2.0/authorize?")
    assert query["redirect_uri"] == [CALLBACK] and query["code_challenge_method"] == ["S256"]
    assert {IMAP, SMTP_SEND, "offline_access"} <= set(query["scope"][0].split())
    assert not {"https://outlook.office.com/POP.AccessAsUser.All", GMAIL} & set(query["scope"][0].split())

    done = call_back(admin, consent(started.headers["Location"], site.settings.ca_file))

    assert done.status_code == 302
    page = admin.get("/admin/").get_data(as_text=True)
    assert f"{site.link.name} signed in with Microsoft as {mail_account.username}" in page
    link = site.store.link(site.link.id)
    assert link.auth is AuthMethod.OAUTH2_DELEGATED and link.oauth.provider == "microsoft"
    assert link.oauth.refresh_token.reveal() in fake_graph.refresh_tokens
    assert link.oauth.refresh_token_expires == datetime.now(UTC).date() + timedelta(days=90)
    assert link.oauth.refresh_token.reveal() not in sealed_options(site)  # encrypted at rest
    assert [r["grant_type"] for r in fake_graph.token_requests][:1] == ["authorization_code"]
    assert len(dovecot_trusts.asked) >= 1  # the probe logged in before the credential was stored
    # The stored sign-in works after a restart: a refresh, then a real XOAUTH2 login to Dovecot.
    forget_tokens()
    with open_mailbox(link, cafile=site.settings.ca_file) as mailbox:
        assert len(mailbox.unhandled()) == 1
    assert fake_graph.token_requests[-1]["grant_type"] == "refresh_token"
    assert "Sign-in oauth2-delegated (Microsoft):" in page and "auth-ok" in page


def test_sign_in_with_google_then_imap_and_smtp_xoauth2_refresh_against_google(
        admin, site, fake_google, mail_account, dovecot_trusts, smtp_xoauth2):
    smtp_xoauth2.bearer = lambda user, token: user == mail_account.username and fake_google.token_is_valid(token)
    mail_account.append(b"From: ann@example.org\r\nTo: support@example.test\r\nSubject: hi\r\n\r\nHello\r\n")

    done = sign_in(admin, site, "google")

    assert done.status_code == 302
    [asked] = fake_google.authorizations
    assert asked["scope"] == GMAIL and asked["access_type"] == "offline" and asked["prompt"] == "consent"
    link = site.store.link(site.link.id)
    assert link.auth is AuthMethod.OAUTH2_DELEGATED and link.oauth.provider == "google"
    assert link.oauth.refresh_token.reveal() in fake_google.refresh_tokens
    sealed = sealed_options(site)
    assert link.oauth.refresh_token.reveal() not in sealed and fake_google.client_secret not in sealed

    forget_tokens()  # as after a restart: the access token comes from the stored refresh token
    with open_mailbox(link, cafile=site.settings.ca_file) as mailbox:
        assert len(mailbox.unhandled()) == 1
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"], msg["To"], msg["Subject"] = "support@example.test", "ann@example.org", "[SD-1] Re: hi"
    msg.set_content("Restart the VPN client.")
    delivery = deliver(link, msg, "support@example.test", ("ann@example.org",), smtp_password=None,
                       cafile=site.settings.ca_file)
    assert delivery.accepted == ("ann@example.org",)
    assert smtp_xoauth2.logins == [mail_account.username]
    grants = [r["grant_type"] for r in fake_google.token_requests]
    assert grants == ["authorization_code", "refresh_token", "refresh_token"]  # probe, IMAP, then SMTP kept it


@pytest.mark.parametrize("answer", ["wrong state", "no state", "another session"])
def test_a_wrong_or_missing_state_is_400_and_nothing_is_stored(admin, site, runtime, fake_graph, dovecot_trusts,
                                                               answer):
    before = site.store.link(site.link.id)
    location = consent(start(admin, site.link.name, "microsoft").headers["Location"], site.settings.ca_file)
    parts = urlsplit(location)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    client = admin
    if answer == "wrong state":
        query["state"] = query["state"][:-2] + "xx"
    elif answer == "no state":
        del query["state"]
    else:  # the answer planted in another admin session's browser, of the same service
        client = admin.application.test_client()
        log_in(client, runtime.settings)

    response = client.get(parts.path, query_string=query)

    assert response.status_code == 400
    assert site.store.link(site.link.id) == before
    assert "authorization_code" not in [r["grant_type"] for r in fake_graph.token_requests]


def test_a_sign_in_the_mailbox_refuses_keeps_the_old_credential_and_its_state(admin, site, fake_graph,
                                                                             token_introspection):
    token_introspection.owner = lambda token: None  # the account has IMAP switched off for this app
    # The link signs in with a Microsoft refresh token now, and it works as far as this process knows.
    site.relink(auth=AuthMethod.OAUTH2_DELEGATED, oauth=OAuthSettings(
        tenant_id=fake_graph.tenant_id, client_id=fake_graph.client_id, authority=fake_graph.url,
        refresh_token=Secret(fake_graph.issue_refresh_token())))
    before = site.store.link(site.link.id)

    sign_in(admin, site, "microsoft")

    assert site.store.link(site.link.id) == before
    page = admin.get("/admin/").get_data(as_text=True)
    assert f"Sign-in of {site.link.name} with Microsoft failed, the link keeps its old sign-in" in page
    assert "refused the login" in page
    assert "auth-ok" in page and admin.get("/health").status_code == 200  # the attempt is not the link's state


def test_a_refused_consent_keeps_the_old_credential(admin, site, fake_google, dovecot_trusts):
    fake_google.deny = True
    before = site.store.link(site.link.id)

    sign_in(admin, site, "google")

    assert site.store.link(site.link.id) == before
    assert "the sign-in was not completed: access_denied" in admin.get("/admin/").get_data(as_text=True)
    assert fake_google.token_requests == []


def test_the_redirect_url_follows_jsm_mail_public_url(site, fake_google):
    public = "https://jsm-mail.example.com/base"
    settings = site.settings.with_(public_url=public)
    app = create_app(Runtime(settings, store=site.store, jira=site.jira))
    app.config["TESTING"] = True
    client = app.test_client()
    log_in(client, settings)
    started = client.post(f"/admin/oauth/{site.link.name}/start",
                          data={"csrf_token": form_token(client), "provider": "google"})
    assert parse_qs(urlsplit(started.headers["Location"]).query)["redirect_uri"] == [
        f"{public}/admin/oauth/callback"]


def test_the_buttons_show_per_link_and_sign_in_needs_an_admin(admin, site, runtime):
    page = admin.get("/admin/").get_data(as_text=True)
    assert "Sign in with Microsoft" in page and "Sign in with Google" in page
    anonymous = create_app(runtime).test_client()
    assert anonymous.get("/admin/oauth/callback?state=x&code=y").status_code == 302  # to the login page
    site.relink(oauth=OAuthSettings())  # no app registration: no Microsoft button
    page = admin.get("/admin/").get_data(as_text=True)
    assert "Sign in with Microsoft" not in page and "Sign in with Google" in page


# Auth state and credential expiry ------------------------------------------------------------------

def test_a_credential_expiring_within_14_days_is_a_warning_on_the_page_and_degraded_health(admin, site):
    soon = datetime.now(UTC).date() + timedelta(days=10)
    site.relink(auth=AuthMethod.OAUTH2_DELEGATED,
                oauth=OAuthSettings(client_id="c", refresh_token=Secret("rt"), refresh_token_expires=soon))

    health = admin.get("/health")

    warning = f"link {site.link.name}: refresh token expires on {soon.isoformat()}, in 10 days"
    assert health.status_code == 200
    assert health.json["status"] == "degraded" and health.json["warnings"] == [warning]
    assert f"refresh token expires on {soon.isoformat()}, in 10 days" in admin.get("/admin/").get_data(as_text=True)


def test_a_credential_far_from_expiry_shows_its_date_and_health_stays_ok(admin, site):
    later = datetime.now(UTC).date() + timedelta(days=15)
    site.relink(auth=AuthMethod.OAUTH2_APP,
                oauth=OAuthSettings(tenant_id="t", client_id="c", client_secret=Secret("s"),
                                    client_secret_expires=later))

    health = admin.get("/health")

    assert health.status_code == 200 and health.json["status"] == "ok" and health.json["warnings"] == []
    page = admin.get("/admin/").get_data(as_text=True)
    assert f"client secret expires {later.isoformat()}" in page and "in 15 days" not in page


def test_an_expired_client_secret_makes_health_fail_with_the_reason(admin, site):
    gone = datetime.now(UTC).date() - timedelta(days=1)
    site.relink(auth=AuthMethod.OAUTH2_APP,
                oauth=OAuthSettings(tenant_id="t", client_id="c", client_secret=Secret("s"),
                                    client_secret_expires=gone))

    health = admin.get("/health")

    assert health.status_code == 503
    assert health.json["problems"] == [f"link {site.link.name}: client secret expired on {gone.isoformat()}"]
    assert f"client secret expired on {gone.isoformat()}" in admin.get("/admin/").get_data(as_text=True)


def test_a_revoked_google_sign_in_shows_as_failing_with_googles_reason_until_signed_in_again(
        admin, site, fake_google, mail_account, dovecot_trusts):
    sign_in(admin, site, "google")
    link = site.store.link(site.link.id)
    fake_google.revoke(link.oauth.refresh_token.reveal())
    forget_tokens()

    report = poll_mailbox(link, site.settings, site.store, site.jira)

    assert report.error
    health = admin.get("/health")
    assert health.status_code == 503
    [problem] = health.json["problems"]
    assert problem.startswith(f"link {site.link.name} cannot sign in since ")
    assert "Google refused it: invalid_grant: Token has been expired or revoked." in problem
    page = admin.get("/admin/").get_data(as_text=True)
    assert "failing since" in page and "Token has been expired or revoked." in page

    sign_in(admin, site, "google")  # the admin signs in again: the probe works and clears the state

    assert admin.get("/health").status_code == 200
    assert "auth-ok" in admin.get("/admin/").get_data(as_text=True)


def test_an_ews_link_signs_in_with_microsoft_for_ews_access_as_user(site, fake_graph, fake_ews_tls, tmp_path):
    fake_ews_tls.bearer = lambda token: fake_graph.token_is_valid(token, "user")
    bundle = tmp_path / "ews-ca.pem"
    bundle.write_bytes(Path(site.settings.ca_file).read_bytes() + Path(fake_ews_tls.cafile).read_bytes())
    settings = site.settings.with_(ca_file=str(bundle))
    link = site.store.add_link(ews_link(fake_ews_tls, id=0, name="exchange", oauth=OAuthSettings(
        tenant_id=fake_graph.tenant_id, client_id=fake_graph.client_id, authority=fake_graph.url)))
    app = create_app(Runtime(settings, store=site.store, jira=site.jira))
    app.config["TESTING"] = True
    client = app.test_client()
    log_in(client, settings)
    page = client.get("/admin/").get_data(as_text=True)
    assert page.count("Sign in with Google") == 1  # the IMAP link only: Google has no EWS

    started = client.post(f"/admin/oauth/{link.name}/start", data={"csrf_token": form_token(client),
                                                                  "provider": "microsoft"})
    call_back(client, consent(started.headers["Location"], str(bundle)))

    scopes = set(fake_graph.authorizations[-1]["scope"].split())
    assert {"https://outlook.office365.com/EWS.AccessAsUser.All", "offline_access"} <= scopes
    stored = site.store.link(link.id)
    assert stored.auth is AuthMethod.OAUTH2_DELEGATED
    assert stored.oauth.refresh_token.reveal() in fake_graph.refresh_tokens
    assert fake_ews_tls.operations.count("UpdateItem") == 1  # the probe's label write, on no mail
