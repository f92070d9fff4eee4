"""GraphMailbox against the fake Graph API and token endpoint: listing, MIME, categories, throttling, sign-in.

The fake checks each call against Microsoft's documentation; tests/fakes/GRAPH.md lists the pages.
"""
from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from plugin.domain import AuthMethod, Link, MailProtocol, OAuthSettings, Outcome, OutcomeState, Secret, Security
from plugin.errors import RejectReason, RetryLater
from plugin.jira.rest import RestJira
from plugin.mailboxes import open_mailbox
from plugin.mailboxes.oauth import AuthenticationFailed
from plugin.poll import poll_mailbox
from tests.conftest import mail_file

CREATED = Outcome(OutcomeState.CREATED, issue_key="SD-1")
REJECTED = Outcome(OutcomeState.REJECTED, reason=RejectReason.MALFORMED, detail="no From")
WAITING = Outcome(OutcomeState.WAITING_RETRY, detail="Jira answered 503")


def eml(subject: str, size: int = 0) -> bytes:
    return (f"From: customer@example.org\r\nTo: support@contoso.example\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@example.org>\r\n\r\nHello{'.' * size}\r\n").encode()


def graph_link(fake, **overrides: object) -> Link:
    oauth = OAuthSettings(tenant_id=fake.tenant_id, client_id=fake.client_id, client_secret=Secret(fake.client_secret),
                          authority=fake.url)
    fields = {"id": 1, "name": "m365", "protocol": MailProtocol.GRAPH, "host": fake.url, "port": 443,
              "security": Security.SSL, "username": fake.address, "password": Secret(""), "folder": "INBOX",
              "service_desk_id": "1", "request_type_id": "10", "address": fake.address,
              "auth": AuthMethod.OAUTH2_APP, "oauth": oauth}
    return Link(**(fields | overrides))


def test_unhandled_lists_unread_mail_without_our_categories_oldest_first_across_pages(fake_graph):
    ids = [fake_graph.add(eml(f"mail {n}")) for n in range(57)]  # two pages of 50
    fake_graph.add(eml("read"), is_read=True)
    done = fake_graph.add(eml("done"), categories=("JSM-Processed",))
    fake_graph.add(eml("elsewhere"), folder="archive")
    kept = fake_graph.add(eml("tagged"), categories=("Blue category",))

    with open_mailbox(graph_link(fake_graph), cafile=fake_graph.cafile) as mailbox:
        refs = mailbox.unhandled()

    assert [ref.uid for ref in refs] == [*ids, kept]
    assert done not in [ref.uid for ref in refs]
    assert refs[0].size_bytes == len(eml("mail 0"))
    listing = [path for method, path in fake_graph.requests if path.endswith("/messages")]
    assert len(listing) == 2  # the second page came from @odata.nextLink


def test_fetch_returns_the_mime_bytes_and_leaves_the_mail_unread(fake_graph):
    message_id = fake_graph.add(eml("one"))

    with open_mailbox(graph_link(fake_graph), cafile=fake_graph.cafile) as mailbox:
        [ref] = mailbox.unhandled()
        raw = mailbox.fetch(ref)

    assert raw.data == eml("one")
    assert fake_graph.messages[message_id].is_read is False


@pytest.mark.parametrize(("outcome", "category"), [(CREATED, "jsm-processed"), (REJECTED, "jsm-rejected")])
def test_final_outcome_marks_read_and_adds_the_category_keeping_others(fake_graph, outcome, category):
    message_id = fake_graph.add(eml("one"), categories=("Blue category",))

    with open_mailbox(graph_link(fake_graph), cafile=fake_graph.cafile) as mailbox:
        [ref] = mailbox.unhandled()
        mailbox.label(ref, outcome)
        assert mailbox.unhandled() == []

    message = fake_graph.messages[message_id]
    assert message.is_read and message.categories == ["Blue category", category]


def test_waiting_retry_touches_nothing_and_a_vanished_mail_is_skipped(fake_graph):
    message_id = fake_graph.add(eml("one"))

    with open_mailbox(graph_link(fake_graph), cafile=fake_graph.cafile) as mailbox:
        [ref] = mailbox.unhandled()
        mailbox.label(ref, WAITING)
        assert fake_graph.messages[message_id].is_read is False
        del fake_graph.messages[message_id]
        mailbox.label(ref, CREATED)
        with pytest.raises(RetryLater, match="no longer in INBOX"):
            mailbox.fetch(ref)


def test_headers_of_a_mail_come_without_its_body(fake_graph):
    fake_graph.add(eml("big one", size=5000))

    with open_mailbox(graph_link(fake_graph), cafile=fake_graph.cafile) as mailbox:
        [ref] = mailbox.unhandled()
        headers = mailbox.headers(ref)

    assert headers is not None and b"Subject: big one\r\n" in headers and b"Hello" not in headers


def test_a_named_folder_is_found_under_the_inbox_and_a_missing_one_is_retry_later(fake_graph):
    in_support = fake_graph.add(eml("one"), folder="folder-support")
    fake_graph.add(eml("two"))

    with open_mailbox(graph_link(fake_graph, folder="Support"), cafile=fake_graph.cafile) as mailbox:
        assert [ref.uid for ref in mailbox.unhandled()] == [in_support]
    with pytest.raises(RetryLater, match="no folder named 'Nowhere'"):
        open_mailbox(graph_link(fake_graph, folder="Nowhere"), cafile=fake_graph.cafile)


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_is_retry_later_after_the_servers_delay(fake_graph, status):
    fake_graph.add(eml("one"))
    with open_mailbox(graph_link(fake_graph), cafile=fake_graph.cafile) as mailbox:
        fake_graph.throttle(1, status=status, retry_after=42)
        with pytest.raises(RetryLater) as caught:
            mailbox.unhandled()
        assert caught.value.after_s == 42
        assert len(mailbox.unhandled()) == 1  # the next round goes on


def test_one_token_serves_many_connections_until_it_expires(fake_graph):
    link = graph_link(fake_graph)
    for _ in range(3):
        with open_mailbox(link, cafile=fake_graph.cafile) as mailbox:
            mailbox.unhandled()
    assert len(fake_graph.token_requests) == 1
    assert fake_graph.token_requests[0] == {"grant_type": "client_credentials", "client_id": fake_graph.client_id,
                                            "scope": "https://graph.microsoft.com/.default"}


def test_no_token_or_secret_reaches_the_log_even_at_debug(fake_graph, caplog):
    fake_graph.add(eml("one"))
    with caplog.at_level("DEBUG"), open_mailbox(graph_link(fake_graph), cafile=fake_graph.cafile) as mailbox:
        mailbox.label(mailbox.unhandled()[0], CREATED)

    assert fake_graph.access_tokens and caplog.records
    for secret in {*fake_graph.access_tokens, fake_graph.client_secret}:
        assert secret not in caplog.text


def test_a_wrong_client_secret_is_an_authentication_error_without_the_secret(fake_graph):
    fake_graph.add(eml("one"))
    wrong = "not-the-secret-" + "x" * 8
    link = graph_link(fake_graph, oauth=dataclasses.replace(graph_link(fake_graph).oauth, client_secret=Secret(wrong)))

    with pytest.raises(AuthenticationFailed, match="AADSTS7000215") as caught:
        open_mailbox(link, cafile=fake_graph.cafile)

    assert wrong not in caught.value.detail and fake_graph.client_secret not in caught.value.detail
    assert fake_graph.requests == []  # no Graph call without a token


def test_an_unknown_tenant_is_an_authentication_error(fake_graph):
    link = graph_link(fake_graph, oauth=dataclasses.replace(graph_link(fake_graph).oauth, tenant_id="nope"))
    with pytest.raises(AuthenticationFailed, match="tenant 'nope' was not found"):
        open_mailbox(link, cafile=fake_graph.cafile)


def test_an_untrusted_certificate_is_retry_later(fake_graph, untrusted_cafile):
    with pytest.raises(RetryLater, match="not trusted"):
        open_mailbox(graph_link(fake_graph), cafile=untrusted_cafile)


def test_a_certificate_signs_in_instead_of_a_secret(fake_graph, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jsm-mail")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    pem = tmp_path / "app.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
                    + certificate.public_bytes(serialization.Encoding.PEM))
    fake_graph.certificate = certificate
    fake_graph.add(eml("one"))
    oauth = dataclasses.replace(graph_link(fake_graph).oauth, client_secret=Secret(""), certificate_path=str(pem))

    with open_mailbox(graph_link(fake_graph, oauth=oauth), cafile=fake_graph.cafile) as mailbox:
        assert len(mailbox.unhandled()) == 1


@pytest.fixture
def graph_service(settings, store, fake_graph, fake_jira):
    settings = settings.with_(ca_file=fake_graph.cafile)
    link = store.add_link(graph_link(fake_graph, id=0, max_size_bytes=4000))
    jira = RestJira(settings.jira_url, settings.jira_email, settings.jira_api_token, settings.jira_timeout_s)
    return lambda: poll_mailbox(store.link(link.id), settings, store, jira)


def test_polling_creates_requests_labels_rejects_and_judges_size_before_download(graph_service, fake_graph,
                                                                                 fake_jira):
    good = fake_graph.add(mail_file("request_plain.eml"))
    bad = fake_graph.add(mail_file("invalid_no_from.eml"))
    big = fake_graph.add(eml("huge", size=8000))

    report = graph_service()

    assert report.outcomes == {"created": 1, "rejected": 2}
    assert len(fake_jira.requests) == 1
    assert fake_graph.messages[good].categories == ["jsm-processed"]
    assert fake_graph.messages[bad].categories == ["jsm-rejected"]
    assert fake_graph.messages[big].categories == ["jsm-rejected"] and fake_graph.messages[big].is_read
    assert ("GET", f"/v1.0/users/{fake_graph.address}/messages/{big}/$value") not in fake_graph.requests
    assert graph_service().outcomes == {}


def test_polling_during_throttling_touches_nothing_and_retries_after_the_delay(graph_service, fake_graph, fake_jira):
    message_id = fake_graph.add(mail_file("request_plain.eml"))
    fake_graph.throttle(1, retry_after=30)

    report = graph_service()
    assert report.retry_after_s == 30 and fake_jira.requests == []
    assert report.outcomes == {}
    assert fake_graph.messages[message_id].is_read is False

    graph_service()
    assert fake_graph.messages[message_id].categories == ["jsm-processed"]


def test_a_throttled_label_write_is_retried_without_a_second_request(graph_service, fake_graph, fake_jira):
    message_id = fake_graph.add(mail_file("request_plain.eml"))
    fake_graph.throttle(1, retry_after=5, method="PATCH")

    first = graph_service()
    assert first.retry_after_s == 5 and len(fake_jira.requests) == 1
    assert fake_graph.messages[message_id].is_read is False

    graph_service()
    assert len(fake_jira.requests) == 1
    assert fake_graph.messages[message_id].categories == ["jsm-processed"]


def test_a_revoked_app_secret_is_an_authentication_error_and_no_mail_is_touched(graph_service, fake_graph, fake_jira):
    message_id = fake_graph.add(mail_file("request_plain.eml"))
    fake_graph.client_secret = "rotated-by-the-admin"

    report = graph_service()

    assert "AADSTS7000215" in (report.error or "")
    assert fake_jira.requests == [] and fake_graph.requests == []
    assert fake_graph.messages[message_id].is_read is False


@pytest.fixture
def cli(settings, fake_jira, tmp_path, monkeypatch, capsys):
    """`jsm-mail ARGS` in this process, with the test's data folder and fake Jira; returns (exit code, output)."""
    from plugin.cli import main
    for name, value in {"DATA_DIR": str(settings.data_dir), "JIRA_URL": fake_jira.url, "JIRA_EMAIL": fake_jira.email,
                        "JIRA_API_TOKEN": fake_jira.api_token, "ENV_FILE": str(tmp_path / "no.env")}.items():
        monkeypatch.setenv(f"JSM_MAIL_{name}", value)

    def run(*args: str) -> tuple[int, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out + err
    return run


def test_links_add_graph_stores_the_secret_encrypted_and_lists_its_expiry(cli, settings, fake_graph, monkeypatch):
    monkeypatch.setenv("M365_SECRET", fake_graph.client_secret)
    soon = (datetime.now(UTC).date() + timedelta(days=10)).isoformat()

    added = cli("links", "add", "--name", "m365", "--protocol", "graph", "--username", fake_graph.address,
                "--tenant-id", fake_graph.tenant_id, "--client-id", fake_graph.client_id,
                "--client-secret-env", "M365_SECRET", "--client-secret-expires", soon,
                "--service-desk", "1", "--request-type", "10")
    listed = cli("links", "list")
    as_json = json.loads(cli("links", "list", "--json")[1])

    assert added[0] == 0, added[1]
    assert "graph://support@contoso.example@https://graph.microsoft.com:443/INBOX" in listed[1]
    assert f"WARNING m365: client secret expires on {soon}, in 10 days" in listed[1]
    assert as_json[0]["auth"] == "oauth2-app" and as_json[0]["client_secret_expires"] == soon
    assert fake_graph.client_secret not in added[1] + listed[1]
    database = b"".join(path.read_bytes() for path in settings.data_dir.glob("jsm-mail.db*"))  # WAL included
    assert b"oauth2-app" in database and fake_graph.client_secret.encode() not in database


def test_links_add_graph_without_a_secret_is_refused(cli):
    code, output = cli("links", "add", "--name", "m365", "--protocol", "graph", "--username", "a@b.example",
                       "--tenant-id", "t", "--client-id", "c", "--service-desk", "1", "--request-type", "10")
    assert code == 2 and "needs --tenant-id, --client-id and --client-secret-env" in output
