"""`jsm-mail links switch`: a new sign-in is probed live before it replaces the old one on the same link,
and mail arriving around the switch is handled exactly once."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from plugin.domain import AuthMethod, MailProtocol, OAuthSettings, Secret, Security
from plugin.jira.rest import RestJira
from plugin.mailboxes import open_mailbox
from plugin.poll import poll_mailbox
from tests.conftest import mail_file
from tests.mailboxes.test_ews import eml, ews_link
from tests.mailboxes.test_graph import graph_link


@pytest.fixture
def cli(settings, fake_jira, fake_graph, monkeypatch, capsys):
    """`jsm-mail ARGS` in this process against the test's store and fake Jira, trusting the fake sign-in host;
    returns (exit code, output)."""
    from plugin.cli import main
    for name, value in {"DATA_DIR": str(settings.data_dir), "JIRA_URL": fake_jira.url, "JIRA_EMAIL": fake_jira.email,
                        "JIRA_API_TOKEN": fake_jira.api_token, "ENV_FILE": str(settings.data_dir / "no.env"),
                        "CA_FILE": fake_graph.cafile}.items():
        monkeypatch.setenv(f"JSM_MAIL_{name}", value)

    def run(*args: str) -> tuple[int, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out + err
    return run


def approve_when_asked(fake_graph) -> threading.Thread:
    """The mailbox user enters the device code as soon as one was handed out."""
    def approve() -> None:
        deadline = time.monotonic() + 10
        while not fake_graph._device_codes and time.monotonic() < deadline:
            time.sleep(0.05)
        fake_graph.approve_device_codes()
    thread = threading.Thread(target=approve)
    thread.start()
    return thread


@pytest.fixture
def imap_service(service, fake_graph, token_introspection, mail_account, settings):
    """The IMAP link of `service` (password login), with the fake identity platform trusted."""
    service.settings = settings.with_(ca_file=fake_graph.cafile)
    token_introspection.owner = lambda token: mail_account.username if fake_graph.token_is_valid(token) else None
    return service


def switch_to_xoauth2(cli, service, fake_graph, *extra: str) -> tuple[int, str]:
    approver = approve_when_asked(fake_graph)
    try:
        return cli("links", "switch", service.link.name, "--auth", "oauth2-delegated", "--tenant-id",
                   fake_graph.tenant_id, "--client-id", fake_graph.client_id, "--authority", fake_graph.url, *extra)
    finally:
        approver.join()


def test_password_to_xoauth2_switch_handles_mail_around_it_exactly_once(cli, imap_service, mail_account, fake_graph,
                                                                       fake_jira):
    before = mail_account.append(mail_file("request_plain.eml"))
    imap_service.poll()
    during = mail_account.append(mail_file("request_plain.eml").replace(b"vpn-drops-1@", b"vpn-drops-2@"))

    code, output = switch_to_xoauth2(cli, imap_service, fake_graph)

    assert code == 0, output
    assert "enter the code FAKE-CODE" in output and "switched to imap with oauth2-delegated" in output
    switched = imap_service.store.link(imap_service.link.id)
    assert switched.auth is AuthMethod.OAUTH2_DELEGATED and switched.oauth.refresh_token
    imap_service.link = switched
    after = mail_account.append(mail_file("request_plain.eml").replace(b"vpn-drops-1@", b"vpn-drops-3@"))
    imap_service.poll()
    imap_service.poll()

    assert len(fake_jira.requests) == 3  # one each: before, during and after the switch
    for uid in (before, during, after):
        assert "jsm-processed" in mail_account.flags(uid)
    assert mail_account.flags(during) >= {"\\Seen"}


def test_a_switch_whose_probe_fails_keeps_the_old_sign_in_and_mail_flows(cli, imap_service, mail_account, fake_graph,
                                                                         token_introspection, fake_jira):
    token_introspection.owner = lambda token: None  # the server refuses every token: OAuth not enabled for IMAP

    code, output = switch_to_xoauth2(cli, imap_service, fake_graph)

    assert code == 2 and "failed its probe" in output and "keeps the old one" in output
    kept = imap_service.store.link(imap_service.link.id)
    assert kept.auth is AuthMethod.PASSWORD and kept.password == imap_service.link.password
    mail_account.append(mail_file("request_plain.eml"))
    assert imap_service.poll().outcomes == {"created": 1}


@pytest.fixture
def graph_linked(settings, store, fake_graph, fake_jira):
    settings = settings.with_(ca_file=fake_graph.cafile)
    link = store.add_link(graph_link(fake_graph, id=0))
    jira = RestJira(settings.jira_url, settings.jira_email, settings.jira_api_token, settings.jira_timeout_s)
    return link, lambda: poll_mailbox(store.link(link.id), settings, store, jira)


def test_rotating_a_graph_client_secret_is_probed_then_stored(cli, graph_linked, fake_graph, store, monkeypatch):
    link, poll = graph_linked
    message_id = fake_graph.add(mail_file("request_plain.eml"))
    fake_graph.client_secret = "new-secret-" + "y" * 10  # the admin added a secret; the old one still works here
    monkeypatch.setenv("NEW_SECRET", fake_graph.client_secret)

    code, output = cli("links", "switch", link.name, "--client-secret-env", "NEW_SECRET",
                       "--client-secret-expires", "2027-12-31", "--authority", fake_graph.url)

    assert code == 0, output
    assert fake_graph.client_secret not in output
    saved = store.link(link.id).oauth
    assert saved.client_secret.reveal() == fake_graph.client_secret and str(saved.client_secret_expires) == "2027-12-31"
    patched = [path for method, path in fake_graph.requests if method == "PATCH"]
    assert patched == [f"/v1.0/users/{fake_graph.address}/messages/jsm-mail-probe-no-such-message"]
    assert fake_graph.messages[message_id].categories == []  # the probe touched no mail
    poll()
    assert fake_graph.messages[message_id].categories == ["jsm-processed"]


def test_a_read_only_app_fails_the_probe(cli, graph_linked, fake_graph, store, monkeypatch):
    link, _ = graph_linked
    fake_graph.read_only = True
    monkeypatch.setenv("NEW_SECRET", fake_graph.client_secret)

    code, output = cli("links", "switch", link.name, "--client-secret-env", "NEW_SECRET",
                       "--authority", fake_graph.url)

    assert code == 2 and "Mail.ReadWrite" in output
    assert store.link(link.id).oauth.client_secret_expires is None


def test_ews_basic_to_app_only_oauth_switch_probes_a_label_write(cli, fake_ews_tls, fake_graph, store, monkeypatch,
                                                                 tmp_path, settings):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(b"".join(Path(name).read_bytes() for name in (fake_ews_tls.cafile, fake_graph.cafile)))
    monkeypatch.setenv("JSM_MAIL_CA_FILE", str(bundle))
    fake_ews_tls.bearer = lambda token: fake_graph.token_is_valid(token, "app-ews")
    item_id = fake_ews_tls.deliver(eml("waiting"))
    link = store.add_link(ews_link(fake_ews_tls, id=0))
    monkeypatch.setenv("APP_SECRET", fake_graph.client_secret)

    code, output = cli("links", "switch", link.name, "--auth", "oauth2-app", "--tenant-id", fake_graph.tenant_id,
                       "--client-id", fake_graph.client_id, "--client-secret-env", "APP_SECRET",
                       "--authority", fake_graph.url)

    assert code == 0, output
    assert store.link(link.id).auth is AuthMethod.OAUTH2_APP
    assert fake_ews_tls.operations.count("UpdateItem") == 1  # the probe, on an id that does not exist
    assert fake_ews_tls.message(item_id).categories == []
    with open_mailbox(store.link(link.id), cafile=str(bundle)) as mailbox:
        assert [ref.uid for ref in mailbox.unhandled()] == [item_id]


def test_switching_protocol_takes_the_new_protocols_default_port(cli, imap_service, mail_account):
    code, output = cli("links", "switch", imap_service.link.name, "--protocol", "pop3", "--port",
                       str(mail_account.pop3_port), "--security", "none")
    assert code == 0, output
    switched = imap_service.store.link(imap_service.link.id)
    assert (switched.protocol, switched.port, switched.security) == (MailProtocol.POP3, mail_account.pop3_port,
                                                                     Security.NONE)
    assert switched.oauth == OAuthSettings() and switched.password == Secret(mail_account.password)
