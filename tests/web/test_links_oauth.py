"""Linking an OAuth mailbox in the wizard: the app registration on the form, an app-only Graph link tested and
saved like a password link, a delegated link saved disabled and enabled by its user's sign-in; against the fake
identity platforms (tests/fakes/graph.py, tests/fakes/google.py), the real Dovecot and the fake Jira."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from plugin.app import create_app
from plugin.domain import AuthMethod, Secret
from plugin.poll import poll_mailbox
from plugin.runtime import Runtime
from tests.conftest import mail_file
from tests.web.conftest import form_token, log_in
from tests.web.test_oauth_signin import call_back, consent

GRAPH_FORM = {"preset": "microsoft365-graph", "name": "m365", "protocol": "graph", "port": "443", "security": "ssl",
              "folder": "INBOX", "auth": "oauth2-app", "oauth_provider": "microsoft", "service_desk": "1",
              "request_type": "10", "access": "open", "first_import": "all", "first_import_days": "7",
              "processed_label": "jsm-processed", "rejected_label": "jsm-rejected", "max_size_mb": "25",
              "reopen_window_days": "14", "smtp_security": "starttls", "charset": "utf-8", "action": "save"}


@pytest.fixture
def site(service, fake_graph, fake_google, tmp_path):
    """The service trusting both fake identity platforms, with the Google OAuth client configured."""
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(Path(fake_graph.cafile).read_bytes() + Path(fake_google.cafile).read_bytes())
    fake_google.redirect_uris.add("http://localhost/admin/oauth/callback")
    service.settings = service.settings.with_(
        ca_file=str(bundle), google_client_id=fake_google.client_id,
        google_client_secret=Secret(fake_google.client_secret), google_authorize_url=fake_google.authorize_url,
        google_token_url=fake_google.token_url)
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


def graph_form(admin, fake_graph, **changes: str | None) -> dict[str, str]:
    form = GRAPH_FORM | {"csrf_token": form_token(admin), "host": fake_graph.url, "username": fake_graph.address,
                         "tenant_id": fake_graph.tenant_id, "client_id": fake_graph.client_id,
                         "client_secret": fake_graph.client_secret, "authority": fake_graph.url}
    return {key: value for key, value in (form | changes).items() if value is not None}


def stored_options(runtime, name: str) -> str:
    with runtime.store.engine.connect() as connection:
        return json.dumps(connection.execute(text("SELECT options FROM links WHERE name = :name"),
                                             {"name": name}).scalar_one())


def test_the_oauth_presets_ask_for_the_app_registration_and_check_it(admin, fake_graph, runtime):
    page = admin.get("/admin/links/new/microsoft365-graph").get_data(as_text=True)
    assert 'name="tenant_id"' in page and 'name="client_id"' in page and 'name="client_secret"' in page
    google = admin.get("/admin/links/new/google").get_data(as_text=True)
    assert 'name="tenant_id"' not in google and "JSM_MAIL_GOOGLE_CLIENT_ID" in google
    assert "Save and sign in" in google and "Test the connection" not in google

    page = admin.post("/admin/links/new/microsoft365-graph", data=graph_form(
        admin, fake_graph, tenant_id="not a tenant", client_id="my-app", client_secret=None)).get_data(as_text=True)

    assert "A tenant id is a GUID or a domain such as contoso.onmicrosoft.com." in page
    assert "An application (client) id is a GUID such as" in page
    assert "Give the client secret of the app registration." in page
    assert runtime.store.link("m365") is None
    domain = admin.post("/admin/links/new/microsoft365-graph", data=graph_form(
        admin, fake_graph, tenant_id="contoso.onmicrosoft.com", action="refresh")).get_data(as_text=True)
    assert "A tenant id is" not in domain


def test_a_graph_link_is_tested_with_client_credentials_saved_and_polled(admin, fake_graph, fake_jira, runtime):
    wrong = admin.post("/admin/links/new/microsoft365-graph",
                       data=graph_form(admin, fake_graph, client_secret="not-the-secret")).get_data(as_text=True)
    assert "The mailbox refused" in wrong and runtime.store.link("m365") is None
    assert fake_graph.token_requests[-1]["grant_type"] == "client_credentials"

    # The secret typed first rides sealed to the next step and is never shown again.
    step = admin.post("/admin/links/new/microsoft365-graph",
                      data=graph_form(admin, fake_graph, action="refresh")).get_data(as_text=True)
    assert fake_graph.client_secret not in step
    assert 'name="client_secret_sealed" type="hidden" value="g' in step
    sealed = step.split('name="client_secret_sealed" type="hidden" value="')[1].split('"')[0]

    saved = admin.post("/admin/links/new/microsoft365-graph",
                       data=graph_form(admin, fake_graph, client_secret="", client_secret_sealed=sealed))

    assert saved.status_code == 302 and saved.headers["Location"].endswith("/admin/links/m365")
    link = runtime.store.link("m365")
    assert link.enabled and link.auth is AuthMethod.OAUTH2_APP
    assert (link.oauth.tenant_id, link.oauth.client_id) == (fake_graph.tenant_id, fake_graph.client_id)
    assert link.oauth.client_secret.reveal() == fake_graph.client_secret
    assert fake_graph.client_secret not in stored_options(runtime, "m365")  # encrypted at rest
    fake_graph.add(mail_file("request_plain.eml"))
    report = poll_mailbox(link, runtime.settings, runtime.store, runtime.jira)
    assert report.outcomes == {"created": 1}
    [request] = fake_jira.requests
    assert request.request_type_id == "10"


def google_form(admin, mail_account, **changes: str) -> dict[str, str]:
    return {"csrf_token": form_token(admin), "preset": "google", "name": "gmail", "protocol": "imap",
            "host": mail_account.host, "port": str(mail_account.imap_port), "security": "none", "folder": "INBOX",
            "auth": "oauth2-delegated", "oauth_provider": "google", "username": mail_account.username,
            "service_desk": "1", "request_type": "10", "access": "open", "first_import": "all",
            "first_import_days": "7", "processed_label": "jsm-processed", "rejected_label": "jsm-rejected",
            "max_size_mb": "25", "reopen_window_days": "14", "smtp_security": "starttls", "charset": "utf-8",
            "action": "signin"} | changes


def test_a_google_link_is_saved_disabled_signed_in_enabled_and_its_mail_becomes_a_request(
        admin, runtime, fake_google, fake_jira, mail_account, token_introspection):
    token_introspection.owner = lambda token: mail_account.username if fake_google.token_is_valid(token) else None
    mail_account.append(mail_file("request_plain.eml"))

    started = admin.post("/admin/links/new/google", data=google_form(admin, mail_account))

    assert started.status_code == 302 and started.headers["Location"].startswith(fake_google.authorize_url)
    waiting = runtime.store.link("gmail")
    assert not waiting.enabled and waiting.auth is AuthMethod.OAUTH2_DELEGATED
    assert waiting.oauth.provider == "google" and not waiting.oauth.refresh_token

    done = call_back(admin, consent(started.headers["Location"], runtime.settings.ca_file))

    assert done.status_code == 302 and done.headers["Location"].endswith("/admin/links/gmail")
    page = admin.get("/admin/links/gmail").get_data(as_text=True)
    assert "Link gmail enabled: the mailbox is polled from now on." in page and "(disabled)" not in page
    link = runtime.store.link("gmail")
    assert link.enabled and link.oauth.refresh_token.reveal() in fake_google.refresh_tokens
    report = poll_mailbox(link, runtime.settings, runtime.store, runtime.jira)
    assert report.outcomes == {"created": 1}
    assert [r.request_type_id for r in fake_jira.requests] == ["10"]


def test_a_failed_first_sign_in_leaves_the_link_disabled_with_the_reason_and_the_button(
        admin, runtime, fake_google, mail_account, token_introspection):
    token_introspection.owner = lambda token: None  # the mailbox refuses the token

    started = admin.post("/admin/links/new/google", data=google_form(admin, mail_account))
    call_back(admin, consent(started.headers["Location"], runtime.settings.ca_file))

    link = runtime.store.link("gmail")
    assert not link.enabled and not link.oauth.refresh_token
    page = admin.get("/admin/links/gmail").get_data(as_text=True)
    assert "Sign-in of gmail with Google failed, the link stays disabled:" in page and "refused the login" in page
    assert "This link waits for its mailbox user to sign in" in page and "Sign in with Google" in page

    token_introspection.owner = lambda token: mail_account.username if fake_google.token_is_valid(token) else None
    again = admin.post("/admin/oauth/gmail/start", data={"csrf_token": form_token(admin), "provider": "google"})
    call_back(admin, consent(again.headers["Location"], runtime.settings.ca_file))
    assert runtime.store.link("gmail").enabled


def test_a_microsoft_imap_link_keeps_its_app_registration_and_signs_in_with_it(admin, runtime, fake_graph,
                                                                              mail_account):
    form = google_form(admin, mail_account, preset="microsoft365-imap", name="m365imap", oauth_provider="microsoft",
                       tenant_id=fake_graph.tenant_id, client_id=fake_graph.client_id, authority=fake_graph.url)

    started = admin.post("/admin/links/new/microsoft365-imap", data=form)

    assert started.headers["Location"].startswith(f"{fake_graph.url}/{fake_graph.tenant_id}/oauth2/v2.0/authorize?")
    link = runtime.store.link("m365imap")
    assert not link.enabled and (link.oauth.tenant_id, link.oauth.client_id) == (fake_graph.tenant_id,
                                                                                  fake_graph.client_id)
    edit = admin.get("/admin/links/m365imap/edit").get_data(as_text=True)
    assert f'value="{fake_graph.client_id}"' in edit and "Sign in with Microsoft" in edit
