"""XOAUTH2 for IMAP and POP3 against the real Dovecot, whose oauth2 passdb asks a token introspection
endpoint; the tokens come from the fake Entra ID token endpoint (tests/fakes/graph.py) by refresh token."""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from plugin.domain import AuthMethod, MailProtocol, OAuthSettings, Outcome, OutcomeState, Secret, Security
from plugin.errors import RetryLater
from plugin.mailboxes import open_mailbox
from plugin.mailboxes.oauth import AuthenticationFailed, expiry_warnings, forget_tokens
from tests.conftest import mail_file

CREATED = Outcome(OutcomeState.CREATED, issue_key="SD-1")


def eml(subject: str) -> bytes:
    return f"From: customer@example.org\r\nTo: support@example.test\r\nSubject: {subject}\r\n\r\nHello\r\n".encode()


@pytest.fixture
def signed_in(mail_account, fake_graph, token_introspection):
    """Dovecot accepts exactly the unexpired delegated tokens the fake identity platform issued, for this user."""
    token_introspection.owner = lambda token: mail_account.username if fake_graph.token_is_valid(token) else None
    return fake_graph.issue_refresh_token()


def oauth_link(mail_account, fake_graph, refresh_token: str, protocol: str = "imap", **overrides: object):
    oauth = OAuthSettings(tenant_id=fake_graph.tenant_id, client_id=fake_graph.client_id, authority=fake_graph.url,
                          refresh_token=Secret(refresh_token))
    return mail_account.link(protocol=protocol, password=Secret(""), auth=AuthMethod.OAUTH2_DELEGATED, oauth=oauth,
                             **overrides)


def refreshes(fake_graph) -> int:
    return sum(1 for r in fake_graph.token_requests if r["grant_type"] == "refresh_token")


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_xoauth2_login_lists_fetches_and_labels(mail_account, fake_graph, token_introspection, signed_in, protocol):
    mail_account.append(eml("one"))
    link = oauth_link(mail_account, fake_graph, signed_in, protocol)

    with open_mailbox(link, cafile=fake_graph.cafile) as mailbox:
        [ref] = mailbox.unhandled()
        assert mailbox.fetch(ref).data == eml("one")
        mailbox.label(ref, CREATED)

    if protocol == "imap":
        assert "jsm-processed" in mail_account.flags(int(ref.uid))
    else:
        assert mail_account.messages() == []
    assert len(token_introspection.asked) == 1
    scope = {"imap": "https://outlook.office.com/IMAP.AccessAsUser.All",
             "pop3": "https://outlook.office.com/POP.AccessAsUser.All"}[protocol]
    assert {"offline_access", scope} <= set(fake_graph.token_requests[0]["scope"].split())


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_one_access_token_serves_many_connections(mail_account, fake_graph, signed_in, protocol):
    link = oauth_link(mail_account, fake_graph, signed_in, protocol)
    for _ in range(3):
        with open_mailbox(link, cafile=fake_graph.cafile) as mailbox:
            mailbox.unhandled()
    assert refreshes(fake_graph) == 1


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_an_expired_access_token_is_refreshed_once_and_mail_flows(mail_account, fake_graph, signed_in, protocol):
    mail_account.append(eml("one"))
    link = oauth_link(mail_account, fake_graph, signed_in, protocol)
    with open_mailbox(link, cafile=fake_graph.cafile) as mailbox:
        mailbox.unhandled()

    fake_graph.expire_access_tokens()  # the server knows it ran out; our clock does not
    with open_mailbox(link, cafile=fake_graph.cafile) as mailbox:
        assert mailbox.fetch(mailbox.unhandled()[0]).data == eml("one")

    assert refreshes(fake_graph) == 2


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_revoked_refresh_token_is_an_authentication_error(mail_account, fake_graph, signed_in, protocol):
    link = oauth_link(mail_account, fake_graph, signed_in, protocol)
    fake_graph.revoke(signed_in)

    with pytest.raises(AuthenticationFailed, match="invalid_grant: AADSTS50173") as caught:
        open_mailbox(link, cafile=fake_graph.cafile)

    assert signed_in not in caught.value.detail


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_no_token_reaches_the_log_even_at_debug(mail_account, fake_graph, signed_in, protocol, caplog):
    link = oauth_link(mail_account, fake_graph, signed_in, protocol)
    with caplog.at_level("DEBUG"), open_mailbox(link, cafile=fake_graph.cafile) as mailbox:
        mailbox.unhandled()

    assert fake_graph.access_tokens and caplog.records
    for secret in {*fake_graph.access_tokens, *fake_graph.refresh_tokens}:
        assert secret not in caplog.text


def test_a_token_of_another_user_is_refused_without_showing_it(mail_account, fake_graph, token_introspection,
                                                               signed_in):
    token_introspection.owner = lambda token: "someone-else@example.test"
    link = oauth_link(mail_account, fake_graph, signed_in)

    with pytest.raises(RetryLater, match="refused the login") as caught:
        open_mailbox(link, cafile=fake_graph.cafile)

    assert refreshes(fake_graph) == 2  # the kept token, then one fresh one
    assert not any(token in str(caught.value) for token in fake_graph.access_tokens)


def test_a_rotated_refresh_token_is_saved_encrypted_on_the_link(store, settings, mail_account, fake_graph, signed_in):
    link = store.add_link(oauth_link(mail_account, fake_graph, signed_in, id=0))

    with open_mailbox(link, cafile=fake_graph.cafile, store=store) as mailbox:
        mailbox.unhandled()

    saved = store.link(link.id).oauth
    assert saved.refresh_token.reveal() not in ("", signed_in)
    assert saved.refresh_token_expires == datetime.now(UTC).date() + timedelta(days=90)
    database = b"".join(path.read_bytes() for path in settings.data_dir.glob("jsm-mail.db*"))
    assert saved.refresh_token.reveal().encode() not in database and signed_in.encode() not in database
    forget_tokens()  # as after a restart: the saved token alone must sign in
    with open_mailbox(store.link(link.id), cafile=fake_graph.cafile, store=store) as mailbox:
        assert mailbox.unhandled() == []


@pytest.fixture
def oauth_service(service, fake_graph, signed_in, mail_account):
    service.settings = service.settings.with_(ca_file=fake_graph.cafile)
    link = oauth_link(mail_account, fake_graph, signed_in)
    service.relink(password=Secret(""), auth=link.auth, oauth=link.oauth)
    return service


def test_polling_over_xoauth2_creates_the_request_and_survives_an_expired_token(oauth_service, mail_account,
                                                                                fake_graph, fake_jira):
    first = mail_account.append(mail_file("request_plain.eml"))
    oauth_service.poll()
    fake_graph.expire_access_tokens()
    second = mail_account.append(mail_file("request_plain.eml").replace(b"vpn-drops-1@", b"vpn-drops-2@"))

    report = oauth_service.poll()

    assert report.outcomes == {"created": 1} and len(fake_jira.requests) == 2
    assert "jsm-processed" in mail_account.flags(first) and "jsm-processed" in mail_account.flags(second)


def test_polling_with_a_revoked_refresh_token_touches_no_mail_and_logs_an_auth_error(oauth_service, mail_account,
                                                                                     fake_graph, fake_jira,
                                                                                     signed_in):
    uid = mail_account.append(mail_file("request_plain.eml"))
    fake_graph.revoke(signed_in)

    report = oauth_service.poll()

    assert report.outcomes == {} and "AADSTS50173" in (report.error or "")
    assert fake_jira.requests == [] and mail_account.flags(uid) == set()
    assert oauth_service.log() == []  # no mail was rejected
    [error] = oauth_service.store.error_log()
    assert "AADSTS50173" in error.summary


def test_links_auth_runs_the_device_code_flow_and_stores_the_refresh_token(store, settings, mail_account, fake_graph,
                                                                          token_introspection, monkeypatch, capsys):
    from plugin.cli import main
    token_introspection.owner = lambda token: mail_account.username if fake_graph.token_is_valid(token) else None
    for name, value in {"DATA_DIR": str(settings.data_dir), "JIRA_URL": settings.jira_url,
                        "JIRA_EMAIL": settings.jira_email, "JIRA_API_TOKEN": settings.jira_api_token.reveal(),
                        "ENV_FILE": str(settings.data_dir / "no.env"), "CA_FILE": fake_graph.cafile}.items():
        monkeypatch.setenv(f"JSM_MAIL_{name}", value)
    added = main(["links", "add", "--name", "o365", "--protocol", "imap", "--host", mail_account.host,
                  "--port", str(mail_account.imap_port), "--security", "none", "--username", mail_account.username,
                  "--auth", "oauth2-delegated", "--tenant-id", fake_graph.tenant_id, "--client-id",
                  fake_graph.client_id, "--authority", fake_graph.url, "--service-desk", "1", "--request-type", "10"])
    assert added == 0, capsys.readouterr().err
    link = store.link("o365")

    def user_signs_in() -> None:
        deadline = time.monotonic() + 10
        while not fake_graph._device_codes and time.monotonic() < deadline:
            time.sleep(0.05)
        fake_graph.approve_device_codes()

    approver = threading.Thread(target=user_signs_in)
    approver.start()
    code = main(["links", "auth", "o365"])
    approver.join()
    out = capsys.readouterr().out

    assert code == 0
    assert "enter the code FAKE-CODE" in out and "signed in" in out
    saved = store.link(link.id)
    assert saved.oauth.refresh_token and saved.oauth.refresh_token.reveal() not in out
    assert saved.oauth.refresh_token_expires == datetime.now(UTC).date() + timedelta(days=90)
    with open_mailbox(saved, cafile=fake_graph.cafile) as mailbox:
        assert mailbox.unhandled() == []
    assert main(["links", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"sign-in oauth2-delegated (refresh token expires {saved.oauth.refresh_token_expires})" in listed
    assert "WARNING" not in listed


def test_links_list_warns_of_a_refresh_token_running_out_or_gone():
    today = datetime(2027, 3, 1, tzinfo=UTC).date()
    soon = OAuthSettings(refresh_token_expires=today + timedelta(days=14), client_secret_expires=today)
    gone = OAuthSettings(refresh_token_expires=today - timedelta(days=1))
    later = OAuthSettings(refresh_token_expires=today + timedelta(days=15))

    assert expiry_warnings(soon, today) == ["client secret expires on 2027-03-01, in 0 days",
                                            "refresh token expires on 2027-03-15, in 14 days"]
    assert expiry_warnings(gone, today) == ["refresh token expired on 2027-02-28"]
    assert expiry_warnings(later, today) == []


def test_imap_over_tls_with_xoauth2(mail_account, fake_graph, signed_in, tmp_path):
    bundle = tmp_path / "ca.pem"  # a private CA bundle that trusts both the mail server and the sign-in host
    bundle.write_bytes(b"".join(Path(cafile).read_bytes() for cafile in (mail_account.cafile, fake_graph.cafile)))
    mail_account.append(eml("one"))
    link = oauth_link(mail_account, fake_graph, signed_in, port=mail_account.imaps_port, security=Security.SSL)

    with open_mailbox(link, cafile=str(bundle)) as mailbox:
        assert len(mailbox.unhandled()) == 1
    assert link.protocol is MailProtocol.IMAP
