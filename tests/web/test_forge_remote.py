"""The Forge app inside Jira: installations recorded per site, the pages' links and log, Jira called as the app."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import jwt
import pytest
from sqlalchemy import text

from plugin.app import create_app
from plugin.domain import Secret
from plugin.errors import RetryLater
from plugin.runtime import Runtime
from plugin.settings import FORGE_APP_ID
from plugin.store.forge_installations import ForgeInstallations
from tests.conftest import mail_file
from tests.web.test_forge import ForgeKeys, event, serving_forge_keys

CLOUD_ID = "4b1c1f2e-0d1a-4c55-9a8e-2f6c0e9d1a77"
INSTALLATION = "ari:cloud:ecosystem::installation/8d5f651a-b2e9-4b38-aac6-30abc7f3effb"
ADMIN = {"type": "jira:adminPage"}
DESK = {"type": "jira:projectSettingsPage", "project": {"id": "10000", "key": "SD", "type": "service_desk"}}


def system_token(expires_in_s: int = 3600) -> str:
    """A system token as Forge sends it: a JWT whose exp says until when Jira accepts it."""
    return jwt.encode({"exp": int(time.time()) + expires_in_s, "sub": "app-bot"}, "not-ours-to-check" * 2,
                      algorithm="HS256")


def fit(keys, *, site_url: str | None, extension: dict | None = None, principal: str | None = "5b10ac8d82e05b",
        installation: str = INSTALLATION, api_base_url: str | None = None, cloud_id: str = CLOUD_ID) -> dict:
    """The Authorization header of a call through Forge Remote, with the claims the contract names."""
    app = {"id": FORGE_APP_ID, "installationId": installation, "appVersion": "2.1.0",
           "environment": {"type": "PRODUCTION", "id": "ari:cloud:ecosystem::environment/1"},
           "module": {"type": "core:endpoint", "key": "remote-ui"}}
    if api_base_url:
        app["apiBaseUrl"] = api_base_url
    context: dict = {"cloudId": cloud_id}
    if site_url:
        context["siteUrl"] = site_url
    if extension:
        context["extension"] = extension
    claims = {"app": app, "context": context} | ({"principal": principal} if principal else {})
    return {"Authorization": f"Bearer {keys.token(**claims)}"}


@pytest.fixture
def forge_keys() -> Iterator[ForgeKeys]:
    with serving_forge_keys() as keys:
        yield keys


def client_for(settings, store, jira=None):
    app = create_app(Runtime(settings, store=store, jira=jira))
    app.config["TESTING"] = True
    return app.test_client()


@pytest.fixture
def api_token_service(sending, forge_keys):
    """The standalone service (API token), answering Forge calls too."""
    sending.settings = dataclasses.replace(sending.settings, forge_jwks_url=forge_keys.jwks_url)
    return sending


@pytest.fixture
def handled(api_token_service, mail_account, fake_jira):
    """One mail turned into a request by the API-token service."""
    mail_account.append(mail_file("request_plain.eml"))
    api_token_service.poll()
    [request] = fake_jira.requests
    return request


def test_the_first_call_records_the_installation_for_its_site_and_later_calls_keep_it(api_token_service,
                                                                                       forge_keys, fake_jira):
    forge = client_for(api_token_service.settings, api_token_service.store, api_token_service.jira)
    installations = ForgeInstallations(api_token_service.store)

    first = forge.get("/forge/ui/site", headers=fit(forge_keys, site_url=fake_jira.url, extension=ADMIN))
    [recorded] = installations.all()
    forge.get("/forge/ui/site", headers=fit(forge_keys, site_url=fake_jira.url, extension=ADMIN))
    [again] = installations.all()
    forge.post("/forge/events/keep-token", headers=fit(forge_keys, site_url=None, installation="ari:other",
                                                       cloud_id="another-cloud", principal=None))

    assert first.status_code == 200
    assert (recorded.installation_id, recorded.cloud_id, recorded.site_url) == (INSTALLATION, CLOUD_ID, fake_jira.url)
    assert again.first_seen == recorded.first_seen and again.last_seen > recorded.last_seen
    assert [(i.installation_id, i.cloud_id) for i in installations.all()] == [
        (INSTALLATION, CLOUD_ID), ("ari:other", "another-cloud")]


def test_the_admin_page_shows_every_link_its_state_and_the_latest_mails(api_token_service, forge_keys, fake_jira,
                                                                        handled):
    runtime = Runtime(api_token_service.settings, store=api_token_service.store, jira=api_token_service.jira)
    app = create_app(runtime)
    forge = app.test_client()
    headers = fit(forge_keys, site_url=fake_jira.url, extension=ADMIN)

    healthy = forge.get("/forge/ui/site", headers=headers).json
    runtime.link_health.note(api_token_service.link.name, "IMAP login failed: AUTHENTICATIONFAILED")
    failing = forge.get("/forge/ui/site", headers=headers).json

    [link] = healthy["links"]
    assert (link["name"], link["status"], link["service_desk_id"]) == (api_token_service.link.name, "ok", "1")
    [logged] = healthy["log"]
    assert (logged["subject"], logged["issue_key"], logged["outcome"]) == ("VPN drops every hour", handled.key,
                                                                         "created")
    assert failing["links"][0]["status"] == "failing"
    assert failing["links"][0]["error"] == "IMAP login failed: AUTHENTICATIONFAILED"


@pytest.mark.parametrize(("project", "shown"), [("SD", True), ("OPS", False)])
def test_a_project_settings_page_shows_only_the_links_into_its_desk(api_token_service, forge_keys, fake_jira, handled,
                                                                    project, shown):
    forge = client_for(api_token_service.settings, api_token_service.store, api_token_service.jira)
    extension = DESK | {"project": {"id": "10000", "key": project, "type": "service_desk"}}

    answer = forge.get("/forge/ui/desk", headers=fit(forge_keys, site_url=fake_jira.url, extension=extension))

    assert answer.status_code == 200 and answer.json["project"] == project
    assert [link["name"] for link in answer.json["links"]] == ([api_token_service.link.name] if shown else [])
    assert [e["issue_key"] for e in answer.json["log"]] == ([handled.key] if shown else [])


@pytest.mark.parametrize(("how", "path", "status"), [
    ("another site", "/forge/ui/site", 403),
    ("project page asks for the site", "/forge/ui/site", 403),
    ("admin page asks for a desk", "/forge/ui/desk", 403),
    ("no user", "/forge/ui/site", 403),
    ("no installation", "/forge/ui/site", 401),
    ("no token", "/forge/ui/desk", 401),
])
def test_pages_answer_only_their_own_module_on_this_site_for_a_signed_in_user(api_token_service, forge_keys,
                                                                             fake_jira, handled, how, path, status):
    forge = client_for(api_token_service.settings, api_token_service.store, api_token_service.jira)
    headers = {
        "another site": lambda: fit(forge_keys, site_url="https://someone-else.atlassian.net", extension=ADMIN),
        "project page asks for the site": lambda: fit(forge_keys, site_url=fake_jira.url, extension=DESK),
        "admin page asks for a desk": lambda: fit(forge_keys, site_url=fake_jira.url, extension=ADMIN),
        "no user": lambda: fit(forge_keys, site_url=fake_jira.url, extension=ADMIN, principal=None),
        "no installation": lambda: {"Authorization": "Bearer " + forge_keys.token(
            app={"id": FORGE_APP_ID}, context={"siteUrl": fake_jira.url, "extension": ADMIN}, principal="x")},
        "no token": dict,
    }[how]()

    answer = forge.get(path, headers=headers)

    assert answer.status_code == status
    assert "links" not in (answer.json or {}) and "log" not in (answer.json or {})


def test_the_system_token_is_kept_encrypted(api_token_service, forge_keys, fake_jira):
    forge = client_for(api_token_service.settings, api_token_service.store, api_token_service.jira)
    token = system_token()

    forge.post("/forge/events/keep-token", headers=fit(forge_keys, site_url=fake_jira.url, principal=None)
               | {"x-forge-oauth-system": token})

    [installation] = ForgeInstallations(api_token_service.store).all()
    assert installation.system_token is not None and installation.system_token.reveal() == token
    with api_token_service.store.engine.connect() as db:
        [stored] = db.execute(text("SELECT system_token_encrypted FROM forge_installations")).scalars()
    assert token.encode() not in stored


def test_pages_wait_when_the_keys_that_sign_invocations_cannot_be_read(api_token_service, fake_jira):
    with serving_forge_keys() as keys:
        headers = fit(keys, site_url=fake_jira.url, extension=ADMIN)
        settings = dataclasses.replace(api_token_service.settings, forge_jwks_url=keys.jwks_url)
    forge = client_for(settings, api_token_service.store, api_token_service.jira)  # the JWKS server is gone

    answer = forge.get("/forge/ui/site", headers=headers)

    assert answer.status_code == 503 and "links" not in answer.json
    assert ForgeInstallations(api_token_service.store).all() == []


@pytest.fixture
def as_forge_app(api_token_service, handled, forge_keys, fake_jira):
    """The same service without an API token: installed through Forge, Jira behind api.atlassian.com's prefix."""
    settings = dataclasses.replace(api_token_service.settings, jira_api_token=Secret(""))
    token = system_token()
    api_base_url = fake_jira.serve_as_forge(CLOUD_ID, token)
    return client_for(settings, api_token_service.store), token, api_base_url


def test_installed_through_forge_the_hourly_call_brings_the_token_polling_and_checks_use(
        as_forge_app, forge_keys, fake_jira, api_token_service):
    forge, token, api_base_url = as_forge_app
    runtime = Runtime(dataclasses.replace(api_token_service.settings, jira_api_token=Secret("")),
                      store=api_token_service.store)
    with pytest.raises(RetryLater, match="no Forge system token"):
        runtime.jira.server_title()

    answer = forge.post("/forge/events/keep-token", headers=fit(
        forge_keys, site_url=fake_jira.url, principal=None, api_base_url=api_base_url) | {
        "x-forge-oauth-system": f"Bearer {token}"})

    assert answer.status_code == 200 and answer.json["installation"] == INSTALLATION
    assert runtime.jira.server_title()  # GET /ex/jira/{cloudId}/rest/api/2/serverInfo with the bearer token
    assert runtime.jira.project_key("1") == "SD"


def test_installed_through_forge_jira_is_called_through_the_gateway_with_the_system_token(
        as_forge_app, forge_keys, fake_jira, handled, smtp_sink, api_token_service):
    forge, token, api_base_url = as_forge_app
    comment = fake_jira.add_agent_comment(handled.key, "Please restart the VPN client.")
    headers = fit(forge_keys, site_url=fake_jira.url, principal=None, api_base_url=api_base_url) | {
        "x-forge-oauth-system": token}
    calls_before = len(fake_jira.calls)

    answer = forge.post("/forge/events/comment-created", json=event(handled, comment), headers=headers)
    desk = forge.get("/forge/ui/desk", headers=fit(forge_keys, site_url=fake_jira.url, extension=DESK,
                                                   api_base_url=api_base_url))

    assert answer.status_code == 200 and answer.json["result"] == "queued; sent"
    [mailed] = smtp_sink.messages
    assert mailed.message["Subject"] == f"[{handled.key}] VPN drops every hour"
    assert desk.status_code == 200 and [link["name"] for link in desk.json["links"]] == [api_token_service.link.name]
    # each under /ex/jira/{cloudId} with the bearer token, or the fake records a violation
    assert len(fake_jira.calls) > calls_before


def test_installed_through_forge_an_expired_system_token_makes_jira_calls_wait(as_forge_app, forge_keys, fake_jira):
    forge, _, api_base_url = as_forge_app
    stale = system_token(expires_in_s=-60)
    calls_before = len(fake_jira.calls)

    answer = forge.get("/forge/ui/desk", headers=fit(forge_keys, site_url=fake_jira.url, extension=DESK,
                                                     api_base_url=api_base_url) | {"x-forge-oauth-system": stale})

    assert answer.status_code == 503
    assert "expired" in answer.json["error"]
    assert len(fake_jira.calls) == calls_before


def test_with_an_api_token_jira_is_called_with_it_even_when_forge_sends_a_system_token(
        api_token_service, forge_keys, fake_jira, handled):
    forge = client_for(api_token_service.settings, api_token_service.store)  # the runtime builds its own Jira
    headers = fit(forge_keys, site_url=fake_jira.url, extension=DESK) | {"x-forge-oauth-system": system_token()}
    calls_before = len(fake_jira.calls)

    answer = forge.get("/forge/ui/desk", headers=headers)

    assert answer.status_code == 200 and len(answer.json["links"]) == 1
    assert fake_jira.calls[calls_before:]  # answered by the fake, which takes only the API user's basic auth here
