"""EwsMailbox signing in with OAuth tokens from the fake identity platform: app-only with impersonation of
the mailbox, and as the mailbox user from a refresh token."""
from __future__ import annotations

from pathlib import Path

import pytest

from plugin.domain import AuthMethod, OAuthSettings, Outcome, OutcomeState, Secret
from plugin.errors import RetryLater
from plugin.mailboxes import open_mailbox
from plugin.mailboxes.oauth import AuthenticationFailed
from tests.mailboxes.test_ews import eml, ews_link

CREATED = Outcome(OutcomeState.CREATED, issue_key="SD-1")


@pytest.fixture
def ews(fake_ews_tls):
    """The fake Exchange over HTTPS: requests-oauthlib sends a bearer token over nothing else."""
    return fake_ews_tls


@pytest.fixture
def cafile(ews, fake_graph, tmp_path) -> str:
    """One private CA bundle that trusts the Exchange server and the sign-in host."""
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(b"".join(Path(name).read_bytes() for name in (ews.cafile, fake_graph.cafile)))
    return str(bundle)


def app_link(ews, fake_graph, **oauth_changes: object):
    oauth = OAuthSettings(tenant_id=fake_graph.tenant_id, client_id=fake_graph.client_id,
                          client_secret=Secret(fake_graph.client_secret), authority=fake_graph.url)
    oauth = OAuthSettings(**{**oauth.__dict__, **oauth_changes})
    return ews_link(ews, username=ews.address, password=Secret(""), auth=AuthMethod.OAUTH2_APP, oauth=oauth)


def user_link(ews, fake_graph, refresh_token: str):
    oauth = OAuthSettings(tenant_id=fake_graph.tenant_id, client_id=fake_graph.client_id, authority=fake_graph.url,
                          refresh_token=Secret(refresh_token))
    return ews_link(ews, username=ews.address, password=Secret(""), auth=AuthMethod.OAUTH2_DELEGATED,
                    oauth=oauth)


def test_app_only_token_impersonates_the_mailbox_lists_and_labels(ews, fake_graph, cafile):
    ews.bearer = lambda token: fake_graph.token_is_valid(token, "app-ews")
    item_id = ews.deliver(eml("one"))

    with open_mailbox(app_link(ews, fake_graph), cafile=cafile) as mailbox:
        [ref] = mailbox.unhandled()
        assert mailbox.fetch(ref).data == eml("one")
        mailbox.label(ref, CREATED)

    assert ews.message(item_id).categories == ["jsm-processed"]
    assert fake_graph.token_requests == [{"grant_type": "client_credentials", "client_id": fake_graph.client_id,
                                          "scope": "https://outlook.office365.com/.default"}]


def test_no_token_or_secret_reaches_the_log_even_at_debug(ews, fake_graph, cafile, caplog):
    fake_ews_tokens = []
    ews.bearer = lambda token: fake_ews_tokens.append(token) or fake_graph.token_is_valid(token, "app-ews")
    ews.deliver(eml("one"))

    with caplog.at_level("DEBUG"), open_mailbox(app_link(ews, fake_graph), cafile=cafile) as mailbox:
        mailbox.label(mailbox.unhandled()[0], CREATED)

    assert fake_ews_tokens and "'Authorization': '(withheld)'" in caplog.text  # exchangelib logged the headers
    for secret in {*fake_ews_tokens, fake_graph.client_secret}:
        assert secret not in caplog.text


def test_a_basic_password_does_not_reach_the_log_even_at_debug(fake_ews, caplog):
    import base64
    fake_ews.deliver(eml("one"))
    with caplog.at_level("DEBUG"), open_mailbox(ews_link(fake_ews)) as mailbox:
        mailbox.unhandled()

    basic = base64.b64encode(f"{fake_ews.username}:{fake_ews.password}".encode()).decode()
    assert "'Authorization': '(withheld)'" in caplog.text
    assert basic not in caplog.text and fake_ews.password not in caplog.text


def test_a_graph_token_is_not_an_ews_token(ews, fake_graph, cafile):
    """Tokens are for one resource: EWS refuses a Graph token, which is a login error for the admin."""
    ews.bearer = lambda token: fake_graph.token_is_valid(token, "app-graph")
    with pytest.raises(RetryLater, match="refused the login"):
        open_mailbox(app_link(ews, fake_graph), cafile=cafile)


def test_a_wrong_client_secret_is_an_authentication_error(ews, fake_graph, cafile):
    ews.bearer = lambda token: fake_graph.token_is_valid(token, "app-ews")
    with pytest.raises(AuthenticationFailed, match="AADSTS7000215"):
        open_mailbox(app_link(ews, fake_graph, client_secret=Secret("wrong")), cafile=cafile)
    assert ews.operations == []


def test_delegated_token_signs_in_and_an_expired_one_is_refreshed_once(ews, fake_graph, cafile):
    ews.bearer = lambda token: fake_graph.token_is_valid(token, "user")
    ews.deliver(eml("one"))
    link = user_link(ews, fake_graph, fake_graph.issue_refresh_token())
    with open_mailbox(link, cafile=cafile) as mailbox:
        assert len(mailbox.unhandled()) == 1

    fake_graph.expire_access_tokens()
    with open_mailbox(link, cafile=cafile) as mailbox:
        assert len(mailbox.unhandled()) == 1

    refreshes = [r for r in fake_graph.token_requests if r["grant_type"] == "refresh_token"]
    assert len(refreshes) == 2
    assert "https://outlook.office365.com/EWS.AccessAsUser.All" in refreshes[0]["scope"].split()


def test_a_revoked_refresh_token_touches_nothing(ews, fake_graph, cafile):
    ews.bearer = lambda token: fake_graph.token_is_valid(token, "user")
    refresh_token = fake_graph.issue_refresh_token()
    fake_graph.revoke(refresh_token)

    with pytest.raises(AuthenticationFailed, match="AADSTS50173"):
        open_mailbox(user_link(ews, fake_graph, refresh_token), cafile=cafile)
    assert ews.operations == []


def test_ntlm_signs_in_to_on_premises_exchange(fake_ews, tmp_path, monkeypatch):
    users = tmp_path / "ntlm-users"
    users.write_text(f"CONTOSO:svc-jsm:{fake_ews.password}\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(users))
    fake_ews.ntlm = True
    item_id = fake_ews.deliver(eml("one"))
    link = ews_link(fake_ews, username="CONTOSO\\svc-jsm", auth=AuthMethod.NTLM)

    with open_mailbox(link) as mailbox:
        [ref] = mailbox.unhandled()
        mailbox.label(ref, CREATED)

    assert fake_ews.message(item_id).categories == ["jsm-processed"]
    assert fake_ews.ntlm_logins and set(fake_ews.ntlm_logins) == {"CONTOSO\\svc-jsm"}


def test_a_wrong_ntlm_password_is_refused(fake_ews, tmp_path, monkeypatch):
    users = tmp_path / "ntlm-users"
    users.write_text(f"CONTOSO:svc-jsm:{fake_ews.password}\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(users))
    fake_ews.ntlm = True
    link = ews_link(fake_ews, username="CONTOSO\\svc-jsm", password=Secret("wrong"), auth=AuthMethod.NTLM)

    with pytest.raises(RetryLater, match="refused the login"):
        open_mailbox(link)
    assert fake_ews.operations == []


def test_basic_is_refused_where_exchange_wants_ntlm(fake_ews, tmp_path, monkeypatch):
    monkeypatch.setenv("NTLM_USER_FILE", str(tmp_path / "none"))
    fake_ews.ntlm = True
    with pytest.raises(RetryLater, match="refused the login"):
        open_mailbox(ews_link(fake_ews))
