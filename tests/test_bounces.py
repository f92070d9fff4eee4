"""End to end: a bounce of our mail or of Jira's notification is an internal note on its request, never a reply."""
from __future__ import annotations

import pytest

from tests.conftest import mail_file

PROCESSED, SEEN = "jsm-processed", "\\Seen"
ANN_WRITES_AGAIN = b"""\
From: Ann Customer <ann@example.org>
To: support@example.test
Subject: Re: VPN drops every hour
Date: Wed, 07 Jan 2026 08:00:00 +0000
Message-ID: <vpn-drops-2@example.org>
In-Reply-To: <vpn-drops-1@example.org>
Content-Type: text/plain; charset=utf-8

My mailbox works again; the VPN still drops.
"""


def customer_mail_about_something_else() -> bytes:
    return (mail_file("request_plain.eml").replace(b"<vpn-drops-1@", b"<printer-1@")
            .replace(b"Subject: VPN drops every hour", b"Subject: Printer offline"))


def test_bounce_of_a_request_mail_is_an_internal_comment_and_marks_the_address(service, mail_account, fake_jira):
    mail_account.append(mail_file("request_plain.eml"))
    service.poll()
    [request] = fake_jira.requests
    uid = mail_account.append(mail_file("bounce_dsn_of_request_mail.eml"))

    service.poll()

    assert len(fake_jira.requests) == 1
    [comment] = request.comments
    assert not comment.public
    assert comment.body.startswith("Mail to ann@example.org bounced: 5.1.1")
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}
    entry = service.log()[-1]
    assert (entry.outcome, entry.issue_key, entry.reason) == ("bounce-recorded", request.key, None)
    assert service.store.is_undeliverable("ann@example.org")


def test_delivery_success_report_is_not_recorded_as_a_bounce(service, mail_account, fake_jira):
    mail_account.append(mail_file("request_plain.eml"))
    service.poll()
    [request] = fake_jira.requests
    uid = mail_account.append(mail_file("bounce_dsn_success_of_request_mail.eml"))

    service.poll()

    assert request.comments == []
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}
    entry = service.log()[-1]
    assert (entry.outcome, entry.issue_key) == ("ignored", None)
    assert "Mail to ann@example.org was delivered: 2.0.0" in entry.detail
    assert not service.store.is_undeliverable("ann@example.org")


def test_address_is_deliverable_again_when_that_person_writes(service, mail_account, fake_jira):
    mail_account.append(mail_file("request_plain.eml"))
    mail_account.append(mail_file("bounce_dsn_of_request_mail.eml"))
    service.poll()
    assert service.store.is_undeliverable("ann@example.org")

    mail_account.append(ANN_WRITES_AGAIN)
    service.poll()

    assert service.log()[-1].outcome == "commented"
    assert not service.store.is_undeliverable("ann@example.org")


def test_address_is_deliverable_again_when_that_person_raises_a_new_request(service, mail_account, fake_jira):
    mail_account.append(mail_file("request_plain.eml"))
    mail_account.append(mail_file("bounce_dsn_of_request_mail.eml"))
    service.poll()

    mail_account.append(customer_mail_about_something_else())
    service.poll()

    assert service.log()[-1].outcome == "created"
    assert not service.store.is_undeliverable("ann@example.org")


@pytest.mark.parametrize("notification_id", ["JIRA.{id}.1767693540000.17.1767697140000@Atlassian.JIRA",
                                             "JIRA.{id}.1767693540000@Atlassian.JIRA"])
def test_bounce_of_a_jira_notification_is_recorded_on_its_request(service, mail_account, fake_jira,
                                                                  notification_id):
    request = fake_jira.add_request("Printer on floor 3", reporter_email="moved.away@customer.example")
    original = b"JIRA.10001.1767693540000.17.1767697140000@Atlassian.JIRA"
    bounce = mail_file("bounce_dsn_of_jira_notification.eml").replace(
        original, notification_id.format(id=request.id).encode())
    uid = mail_account.append(bounce)

    service.poll()

    [comment] = request.comments
    assert not comment.public and "Mail to moved.away@customer.example bounced: 5.1.1" in comment.body
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}
    entry = service.log()[-1]
    assert (entry.outcome, entry.issue_key) == ("bounce-recorded", request.key)
    assert "Jira notification" in entry.evidence
    assert service.store.is_undeliverable("moved.away@customer.example")


def test_bounce_of_a_jira_notification_about_an_unknown_issue_is_only_logged(service, mail_account, fake_jira):
    uid = mail_account.append(mail_file("bounce_dsn_of_jira_notification.eml").replace(b"JIRA.10001.", b"JIRA.99999."))

    service.poll()

    assert fake_jira.requests == []
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}
    assert service.log()[-1].outcome == "ignored"


def test_bounce_of_an_unknown_mail_is_ignored_labelled_and_logged(service, mail_account, fake_jira):
    request = fake_jira.add_request("Unrelated", reporter_email="gone@customer.example")
    uid = mail_account.append(mail_file("storm_dsn.eml"))

    service.poll()

    assert len(fake_jira.requests) == 1 and request.comments == []
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}
    [entry] = service.log()
    assert (entry.outcome, entry.reason, entry.issue_key) == ("ignored", None, None)
    assert "never-ours@elsewhere.example" in entry.evidence
    assert "Mail to gone@customer.example bounced: 5.1.1" in entry.detail
