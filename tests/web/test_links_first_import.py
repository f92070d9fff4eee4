"""The first-import choice in a real poll (Dovecot over IMAP and POP3, the Exchange fakes over EWS and Graph, a
local Maildir): only new mail, unread of the last N days, or all unread."""
from __future__ import annotations

import mailbox
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from plugin.domain import FirstImport, Link, MailProtocol, Secret, Security
from plugin.jira.rest import RestJira
from plugin.mailboxes import open_mailbox
from plugin.poll import poll_mailbox
from plugin.store.models import LinkRow
from tests.mailboxes.test_graph import graph_link


def mail(subject: str) -> bytes:
    return (f"From: customer@example.com\r\nTo: support@example.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@example.com>\r\n"
            "Date: Mon, 30 Nov 2026 09:00:00 +0000\r\n\r\nPlease help.\r\n").encode()


@pytest.mark.parametrize(("choice", "days", "created"), [
    (FirstImport.NEW, 7, ["arrived after linking"]),
    (FirstImport.RECENT, 3, ["two days old", "arrived after linking"]),
    (FirstImport.ALL, 7, ["ten days old", "two days old", "arrived after linking"]),
])
def test_the_first_poll_takes_only_the_mail_the_admin_chose(service, mail_account, fake_jira, choice, days, created):
    linked_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    service.relink(first_import=choice, first_import_days=days, linked_at=linked_at)
    with mail_account.client(readonly=False) as client:  # APPEND sets INTERNALDATE as delivery would (RFC 3501 6.3.11)
        client.append("INBOX", mail("ten days old"), msg_time=linked_at - timedelta(days=10))
        client.append("INBOX", mail("two days old"), msg_time=linked_at - timedelta(days=2))
        client.append("INBOX", mail("arrived after linking"), msg_time=linked_at + timedelta(minutes=1))

    report = service.poll()

    assert [request.summary for request in fake_jira.requests] == created
    assert report.outcomes == {"created": len(created)}
    untouched = [uid for uid, flags, _ in mail_account.messages() if "\\Seen" not in flags]
    assert len(untouched) == 3 - len(created)  # older mail stays unread and unlabelled for a person to see


def test_a_link_added_without_a_choice_takes_all_unread_mail(store, mail_account):
    link = store.add_link(mail_account.link())
    assert link.first_import is FirstImport.ALL and link.import_since is None
    assert store.link(link.id).linked_at == link.linked_at


@pytest.mark.parametrize(("choice", "created"), [
    (FirstImport.NEW, ["arrived after linking"]),
    (FirstImport.RECENT, ["two days old", "arrived after linking"]),
    (FirstImport.ALL, ["ten days old", "two days old", "arrived after linking"]),
])
def test_pop3_tells_the_arrival_by_the_received_header(service, mail_account, fake_jira, choice, created):
    linked_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    service.relink(protocol=MailProtocol.POP3, port=mail_account.pop3_port, first_import=choice,
                   first_import_days=3, linked_at=linked_at)
    for subject, age in (("ten days old", timedelta(days=10)), ("two days old", timedelta(days=2)),
                         ("arrived after linking", -timedelta(minutes=1))):
        stamp = format_datetime(linked_at - age)
        mail_account.append(f"Received: from mx.example.com by mail.example.test; {stamp}\r\n".encode()
                            + mail(subject))

    assert service.poll().outcomes == {"created": len(created)}
    assert [request.summary for request in fake_jira.requests] == created
    assert len(mail_account.messages()) == 3 - len(created)  # older mail stays on the server
    assert service.poll().outcomes == {}  # and is looked at once


def test_exchange_over_ews_leaves_mail_received_before_linking(service, fake_ews, fake_jira):
    first = fake_ews.deliver(mail("received before linking"))
    service.relink(protocol=MailProtocol.EWS, host=fake_ews.url, port=443, username=fake_ews.username,
                   password=Secret(fake_ews.password), first_import=FirstImport.NEW,
                   linked_at=fake_ews.message(first).received + timedelta(seconds=30))
    fake_ews.deliver(mail("arrived after linking"))

    assert service.poll().outcomes == {"created": 1}
    assert [request.summary for request in fake_jira.requests] == ["arrived after linking"]
    assert fake_ews.message(first).is_read is False


def test_microsoft_graph_leaves_mail_received_before_linking(settings, store, fake_graph, fake_jira):
    linked_at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    old = fake_graph.add(mail("received before linking"), received=linked_at - timedelta(days=2))
    fake_graph.add(mail("arrived after linking"), received=linked_at + timedelta(minutes=1))
    link = store.add_link(graph_link(fake_graph, id=0, first_import=FirstImport.RECENT, first_import_days=1,
                                     linked_at=linked_at))
    jira = RestJira(settings.jira_url, settings.jira_email, settings.jira_api_token, settings.jira_timeout_s)

    report = poll_mailbox(link, settings.with_(ca_file=fake_graph.cafile), store, jira)

    assert report.outcomes == {"created": 1}
    assert [request.summary for request in fake_jira.requests] == ["arrived after linking"]
    assert fake_graph.messages[old].is_read is False


def test_an_older_link_switched_to_new_mail_only_counts_from_its_creation(store, mail_account):
    link = store.add_link(mail_account.link())
    with store.session() as s, s.begin():  # as a link stored before the first-import choice existed
        row = s.get(LinkRow, link.id)
        row.options = {k: v for k, v in row.options.items() if k not in ("linked_at", "first_import")}
    older = store.link(link.id)
    assert older.first_import is FirstImport.ALL and older.linked_at is not None
    store.update_link(replace(older, first_import=FirstImport.NEW))
    assert store.link(link.id).import_since == older.linked_at


def test_a_local_maildir_leaves_mail_delivered_before_linking(store, tmp_path):
    folder = mailbox.Maildir(tmp_path / "demo", create=True)
    old = mailbox.MaildirMessage(mail("delivered before linking"))
    linked_at = datetime.now(UTC).replace(microsecond=0)
    old.set_date((linked_at - timedelta(days=1)).timestamp())
    folder.add(old)
    folder.add(mail("delivered after linking"))
    link = store.add_link(Link(id=0, name="demo", protocol=MailProtocol.MAILDIR, host=str(tmp_path / "demo"), port=0,
                               security=Security.NONE, username="demo", password=Secret(""), folder="INBOX",
                               service_desk_id="1", request_type_id="10", first_import=FirstImport.NEW,
                               linked_at=linked_at))
    with open_mailbox(link) as box:
        [ref] = box.unhandled()
        assert b"delivered after linking" in box.fetch(ref).data
