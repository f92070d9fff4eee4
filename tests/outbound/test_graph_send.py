"""Graph links send the agent's answer from the mailbox by sendMail (MIME form), kept in Sent Items, through
the same outbox: once, and queued while Graph throttles or the app may not send."""
from __future__ import annotations

import dataclasses
import email
import email.policy
import time
from datetime import timedelta

import pytest

from plugin.store.outbox import Outbox
from tests.conftest import mail_file
from tests.mailboxes.test_graph import graph_link


@pytest.fixture
def m365(service, fake_graph, smtp_sink):
    link = graph_link(fake_graph, from_name="Example Support")
    service.relink(**{f.name: getattr(link, f.name) for f in dataclasses.fields(link) if f.name not in ("id", "name")})
    service.settings = service.settings.with_(ca_file=fake_graph.cafile, poll_interval_s=1)
    return fake_graph


def answered(service, fake_graph, fake_jira):
    fake_graph.add(mail_file("request_plain.eml"))
    service.poll()
    [request] = fake_jira.requests
    fake_jira.add_agent_comment(request.key, "Please restart the VPN client.")
    return request


def test_a_graph_link_mails_the_answer_by_sendmail_and_keeps_it_in_sent_items(service, m365, fake_jira, smtp_sink):
    request = answered(service, m365, fake_jira)

    report = service.poll()
    service.poll()

    assert report.outbound.sent == 1
    [sent] = m365.sent
    mail = email.message_from_bytes(sent, policy=email.policy.default)
    assert mail["From"] == f"Example Support <{m365.address}>"
    assert mail["To"] == "Ann Customer <ann@example.org>"
    assert mail["Subject"] == f"[{request.key}] VPN drops every hour"
    assert mail["In-Reply-To"] == "<vpn-drops-1@example.org>"
    assert smtp_sink.messages == []
    assert [e.state for e in Outbox(service.store).entries()] == ["sent"]
    assert ("POST", f"/v1.0/users/{m365.address}/sendMail") in m365.requests


@pytest.mark.parametrize("status", [429, 503])
def test_throttled_sendmail_keeps_the_mail_queued_and_it_is_sent_once_later(service, m365, fake_jira, status):
    answered(service, m365, fake_jira)
    m365.throttle(1, status=status, retry_after=3, method="POST")

    report = service.poll()

    assert m365.sent == [] and report.outbound.waiting == 1
    assert "Microsoft Graph is busy" in (report.outbound.error or "")
    [entry] = Outbox(service.store).entries()
    assert entry.state == "queued"
    time.sleep(1.1)
    service.poll()
    service.poll()
    assert len(m365.sent) == 1
    assert [e.state for e in Outbox(service.store).entries()] == ["sent"]


def test_an_app_without_mail_send_keeps_the_mail_queued_and_says_which_permission(service, m365, fake_jira):
    answered(service, m365, fake_jira)
    m365.may_send = False

    report = service.poll()

    assert m365.sent == [] and report.outbound.waiting == 1
    assert "Mail.Send application permission" in (report.outbound.error or "")
    assert Outbox(service.store).entries()[0].state == "queued"


def test_an_answer_over_4_mb_is_sent_as_a_draft_with_an_upload_session(service, m365, fake_jira):
    """sendMail takes at most 4 MB: a bigger answer goes as a MIME draft, its file by upload session, then send."""
    service.relink(max_attachment_bytes=6 * 1024 * 1024)
    m365.add(mail_file("request_plain.eml"))
    service.poll()
    [request] = fake_jira.requests
    dump = bytes(range(256)) * (5 * 1024 * 4)  # 5 MB
    fake_jira.add_agent_comment(request.key, "The log you asked for.",
                                files=(("dump.bin", dump, "application/octet-stream"),))

    service.poll()
    service.poll()

    [sent] = m365.sent
    mail = email.message_from_bytes(sent, policy=email.policy.default)
    assert mail["In-Reply-To"] == "<vpn-drops-1@example.org>"
    assert [(a.get_filename(), a.get_content()) for a in mail.iter_attachments()] == [("dump.bin", dump)]
    assert ("POST", f"/v1.0/users/{m365.address}/sendMail") not in m365.requests
    assert [e.state for e in Outbox(service.store).entries()] == ["sent"]
    assert len(m365.uploads) == 2  # 5 MB in pieces of at most 4 MB


def test_an_interrupted_send_found_in_sent_items_is_not_sent_again(service, m365, fake_jira):
    answered(service, m365, fake_jira)
    service.poll()
    outbox = Outbox(service.store)
    [entry] = outbox.entries()
    # As if the process died after Graph took the mail, before it was marked sent.
    outbox._finish(entry.id, "sending", sending_since=entry.sent_at - timedelta(hours=1))

    service.poll()

    assert len(m365.sent) == 1
    assert outbox.entries()[0].state == "sent"
    assert "found in the Sent Items folder" in service.log()[-1].detail


def test_an_interrupted_send_missing_from_sent_items_is_sent_once_more(service, m365, fake_jira):
    answered(service, m365, fake_jira)
    m365.throttle(1, method="POST")
    service.poll()  # queued, not sent
    outbox = Outbox(service.store)
    [entry] = outbox.entries()
    # As if the process died before Graph took the mail.
    outbox._finish(entry.id, "sending", sending_since=entry.queued_at - timedelta(hours=1))

    service.poll()
    service.poll()

    assert ("GET", f"/v1.0/users/{m365.address}/mailFolders/sentitems/messages") in m365.requests
    assert len(m365.sent) == 1
    assert outbox.entries()[0].state == "sent"
