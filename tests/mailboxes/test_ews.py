"""EwsMailbox against a fake Exchange: what is listed, that fetching changes nothing, what labels do, errors."""
from __future__ import annotations

import socket

import pytest
import requests

from plugin.domain import Link, MailProtocol, Outcome, OutcomeState, Secret, Security
from plugin.errors import RejectReason, RetryLater
from plugin.mailboxes import open_mailbox
from plugin.mailboxes.ews import service_endpoint
from tests.conftest import mail_file


def eml(subject: str) -> bytes:
    return (
        f"From: Customer <customer@example.org>\r\nTo: support@example.test\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '-')}@example.org>\r\n"
        f"\r\nHello,\r\n"
    ).encode()


CREATED = Outcome(OutcomeState.CREATED, issue_key="SD-1")
REJECTED = Outcome(OutcomeState.REJECTED, reason=RejectReason.TOO_LARGE, detail="too big")
WAITING = Outcome(OutcomeState.WAITING_RETRY, detail="Jira answered 503")


def ews_link(fake, **overrides: object) -> Link:
    """A Link to the fake's mailbox; fields can be overridden."""
    fields = {"id": 1, "name": "exchange", "protocol": MailProtocol.EWS, "host": fake.url, "port": 443, "security": Security.SSL,
                  "username": fake.username, "password": Secret(fake.password), "folder": "INBOX", "service_desk_id": "1",
                  "request_type_id": "10", "address": fake.address}
    return Link(**(fields | overrides))


@pytest.fixture
def unread(fake_ews) -> str:
    """One unread mail in the inbox; returns its item id."""
    return fake_ews.deliver(eml("unread"))


def test_unhandled_lists_only_unread_mail_without_our_categories_with_its_size(fake_ews):
    fake_ews.deliver(eml("already read"), read=True)
    first = fake_ews.deliver(eml("unread"))
    fake_ews.deliver(eml("processed"), categories=("jsm-processed",))
    fake_ews.deliver(eml("rejected"), categories=("jsm-rejected",))
    flagged = fake_ews.deliver(eml("flagged by a person"), categories=("Important",))

    with open_mailbox(ews_link(fake_ews)) as mailbox:
        refs = mailbox.unhandled()

    assert [(ref.link_id, ref.uid, ref.size_bytes) for ref in refs] == [
        (1, first, len(eml("unread"))), (1, flagged, len(eml("flagged by a person")))]


def test_unhandled_pages_through_a_full_inbox_oldest_first(fake_ews):
    """exchangelib asks FindItem for 100 items a page."""
    ids = [fake_ews.deliver(eml(f"mail {n}")) for n in range(130)]

    with open_mailbox(ews_link(fake_ews)) as mailbox:
        assert [ref.uid for ref in mailbox.unhandled()] == ids


def test_fetch_returns_the_exact_mime_and_leaves_the_mail_unread(fake_ews):
    item_id = fake_ews.deliver(mail_file("request_plain.eml"))

    with open_mailbox(ews_link(fake_ews)) as mailbox:
        [ref] = mailbox.unhandled()
        raw = mailbox.fetch(ref)

    assert raw.data == mail_file("request_plain.eml")
    assert raw.ref == ref
    assert (fake_ews.message(item_id).is_read, fake_ews.message(item_id).categories) == (False, [])
    assert "UpdateItem" not in fake_ews.operations


@pytest.mark.parametrize(
    ("outcome", "category"),
    [
        (CREATED, "jsm-processed"),
        (Outcome(OutcomeState.IGNORED), "jsm-processed"),
        (REJECTED, "jsm-rejected"),
        (Outcome(OutcomeState.FAILED, reason=RejectReason.INTERNAL_ERROR), "jsm-rejected"),
    ],
    ids=["created", "ignored", "rejected", "failed"],
)
def test_final_outcome_marks_read_with_its_category(fake_ews, unread, outcome, category):
    with open_mailbox(ews_link(fake_ews)) as mailbox:
        [ref] = mailbox.unhandled()
        mailbox.label(ref, outcome)
        assert mailbox.unhandled() == []

    assert (fake_ews.message(unread).is_read, fake_ews.message(unread).categories) == (True, [category])


def test_label_keeps_the_categories_people_gave_the_mail(fake_ews):
    item_id = fake_ews.deliver(eml("flagged"), categories=("Red category",))

    with open_mailbox(ews_link(fake_ews, processed_label="Jira done")) as mailbox:
        mailbox.label(mailbox.unhandled()[0], CREATED)

    assert fake_ews.message(item_id).categories == ["Red category", "Jira done"]


def test_waiting_retry_leaves_the_mail_unread_and_uncategorised(fake_ews, unread):
    with open_mailbox(ews_link(fake_ews)) as mailbox:
        [ref] = mailbox.unhandled()
        mailbox.label(ref, WAITING)
        assert mailbox.unhandled() == [ref]

    assert (fake_ews.message(unread).is_read, fake_ews.message(unread).categories) == (False, [])
    assert "UpdateItem" not in fake_ews.operations


def test_mail_deleted_meanwhile_is_skipped_by_label_and_retried_by_fetch(fake_ews, unread):
    with open_mailbox(ews_link(fake_ews)) as mailbox:
        [ref] = mailbox.unhandled()
        fake_ews.delete(unread)

        mailbox.label(ref, CREATED)
        with pytest.raises(RetryLater, match="no longer in INBOX"):
            mailbox.fetch(ref)


def test_subfolder_of_the_inbox_is_found_by_name(fake_ews):
    folder_id = fake_ews.add_folder("Support")
    fake_ews.deliver(eml("in the inbox"))
    in_support = fake_ews.deliver(eml("in support"), folder_id=folder_id)

    with open_mailbox(ews_link(fake_ews, folder="support")) as mailbox:
        assert [ref.uid for ref in mailbox.unhandled()] == [in_support]


def test_folder_beside_the_inbox_is_found_by_name(fake_ews):
    folder_id = fake_ews.add_folder("Helpdesk", parent="msgfolderroot")
    in_helpdesk = fake_ews.deliver(eml("in helpdesk"), folder_id=folder_id)

    with open_mailbox(ews_link(fake_ews, folder="Helpdesk")) as mailbox:
        assert [ref.uid for ref in mailbox.unhandled()] == [in_helpdesk]


def test_missing_folder_is_retry_later_naming_it(fake_ews):
    with pytest.raises(RetryLater, match="no folder named 'Support'") as caught:
        open_mailbox(ews_link(fake_ews, folder="Support"))

    assert caught.value.after_s > 60


def test_wrong_password_is_retry_later_without_the_password(fake_ews):
    wrong = "Wr0ng-Passw0rd"
    with pytest.raises(RetryLater, match=f"refused the login of {fake_ews.username}") as caught:
        open_mailbox(ews_link(fake_ews, password=Secret(wrong)))

    assert wrong not in caught.value.detail
    assert fake_ews.password not in caught.value.detail
    assert caught.value.after_s > 60


def test_server_busy_is_retry_later_after_the_back_off_exchange_asks_for(fake_ews, unread):
    fake_ews.back_off_ms = 45_000
    with open_mailbox(ews_link(fake_ews)) as mailbox:
        fake_ews.fail_next("ErrorServerBusy")
        with pytest.raises(RetryLater, match="busy") as caught:
            mailbox.unhandled()

    assert caught.value.after_s == 45


def test_service_unavailable_is_retry_later(fake_ews):
    fake_ews.fail_next(503)
    with pytest.raises(RetryLater, match="temporarily unavailable"):
        open_mailbox(ews_link(fake_ews))


def test_connection_refused_is_retry_later():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    link = Link(id=1, name="exchange", protocol=MailProtocol.EWS, host=f"http://127.0.0.1:{port}/EWS/Exchange.asmx",
                port=443, security=Security.SSL, username="user@example.test", password=Secret("pw"), folder="INBOX",
                service_desk_id="1", request_type_id="10")

    with pytest.raises(RetryLater, match="refused the connection"):
        open_mailbox(link)


def test_tls_with_the_server_certificate_works(fake_ews_tls):
    item_id = fake_ews_tls.deliver(eml("over tls"))

    with open_mailbox(ews_link(fake_ews_tls), cafile=fake_ews_tls.cafile) as mailbox:
        assert [ref.uid for ref in mailbox.unhandled()] == [item_id]


def test_tls_with_an_untrusted_certificate_is_retry_later(fake_ews_tls):
    with pytest.raises(RetryLater, match="not trusted") as caught:
        open_mailbox(ews_link(fake_ews_tls))

    assert caught.value.after_s > 60


@pytest.mark.parametrize(
    ("host", "endpoint"),
    [
        ("mail.example.com", "https://mail.example.com/EWS/Exchange.asmx"),
        ("https://ex.example.com/EWS/Exchange.asmx", "https://ex.example.com/EWS/Exchange.asmx"),
        ("http://127.0.0.1:8080/EWS/Exchange.asmx", "http://127.0.0.1:8080/EWS/Exchange.asmx"),
    ],
)
def test_host_name_or_url_gives_the_ews_endpoint(host, endpoint):
    assert service_endpoint(host) == endpoint


def test_mail_deleted_between_reading_and_labelling_it_is_skipped(fake_ews, unread):
    with open_mailbox(ews_link(fake_ews)) as mailbox:
        [ref] = mailbox.unhandled()
        fake_ews.on_next("UpdateItem", lambda: fake_ews.delete(unread))

        mailbox.label(ref, CREATED)

    assert unread not in fake_ews.messages


def test_the_fake_refuses_what_it_does_not_model(fake_ews):
    """A request the fake does not know gets an EWS error and fails the test, so exchangelib changes show."""
    envelope = (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">'
        "<s:Body><m:DeleteItem DeleteType=\"HardDelete\"/></s:Body></s:Envelope>"
    )
    answer = requests.post(fake_ews.url, data=envelope, auth=(fake_ews.username, fake_ews.password),
                           headers={"Content-Type": "text/xml; charset=utf-8"}, timeout=5)

    assert answer.status_code == 500 and b"ErrorSchemaValidation" in answer.content
    assert fake_ews.take_violations() == ["DeleteItem: operation DeleteItem is not modelled"]
