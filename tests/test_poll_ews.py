"""End to end over EWS: mail delivered to a fake Exchange, one poll, the result in the fake Jira and the mailbox."""
from __future__ import annotations

import pytest

from plugin.domain import MailProtocol, Secret
from tests.conftest import mail_file

PROCESSED = "jsm-processed"


@pytest.fixture
def exchange(service, fake_ews):
    """The service's link moved to the fake Exchange mailbox, as an admin would relink it."""
    service.relink(protocol=MailProtocol.EWS, host=fake_ews.url, port=443, username=fake_ews.username,
                   password=Secret(fake_ews.password))
    return fake_ews


def test_new_mail_becomes_a_request_and_is_read_and_categorised(service, exchange, fake_jira):
    item_id = exchange.deliver(mail_file("request_plain.eml"))

    service.poll()

    [request] = fake_jira.requests
    assert (request.summary, request.reporter_email) == ("VPN drops every hour", "ann@example.org")
    assert (exchange.message(item_id).is_read, exchange.message(item_id).categories) == (True, [PROCESSED])
    [entry] = service.log()
    assert (entry.outcome, entry.issue_key, entry.message_id) == ("created", request.key, "vpn-drops-1@example.org")


def test_request_and_its_reply_in_one_poll_become_a_request_with_a_comment(service, exchange, fake_jira):
    original = exchange.deliver(mail_file("thread_original_outlook.eml"))
    reply = exchange.deliver(mail_file("thread_reply_in_reply_to_gmail.eml"))

    service.poll()

    [request] = fake_jira.requests
    assert any("It is back online now, thanks" in comment.body for comment in request.comments)
    assert [(e.outcome, e.issue_key) for e in service.log()] == [("created", request.key),
                                                                  ("commented", request.key)]
    for item_id in (original, reply):
        assert (exchange.message(item_id).is_read, exchange.message(item_id).categories) == (True, [PROCESSED])


def test_exchange_outage_leaves_the_mail_for_the_next_poll(service, exchange, fake_jira):
    item_id = exchange.deliver(mail_file("request_plain.eml"))
    exchange.fail_next("ErrorServerBusy")

    report = service.poll()

    assert fake_jira.requests == [] and report.retry_after_s == exchange.back_off_ms / 1000
    assert exchange.message(item_id).is_read is False
    service.poll()
    assert len(fake_jira.requests) == 1 and exchange.message(item_id).is_read
