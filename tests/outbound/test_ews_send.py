"""Exchange links send the agent's answer through the mailbox itself (EWS CreateItem, SendAndSaveCopy)."""
from __future__ import annotations

import email
import email.policy

import pytest

from plugin.domain import MailProtocol, Secret
from tests.conftest import mail_file


@pytest.fixture
def exchange(service, fake_ews):
    service.relink(protocol=MailProtocol.EWS, host=fake_ews.url, port=443, username=fake_ews.username,
                   password=Secret(fake_ews.password), from_name="Example Support")
    return fake_ews


def test_an_exchange_link_mails_the_answer_and_keeps_it_in_sent_items(service, exchange, fake_jira, smtp_sink):
    exchange.deliver(mail_file("request_plain.eml"))
    service.poll()
    [request] = fake_jira.requests
    fake_jira.add_agent_comment(request.key, "Please restart the VPN client.")

    report = service.poll()

    assert report.outbound.sent == 1
    [sent] = exchange.sent
    mail = email.message_from_bytes(sent, policy=email.policy.default)
    assert mail["To"] == "Ann Customer <ann@example.org>"
    assert mail["Subject"] == f"[{request.key}] VPN drops every hour"
    assert mail["In-Reply-To"] == "<vpn-drops-1@example.org>"
    assert smtp_sink.messages == []
    sent_items = exchange._distinguished("sentitems").id
    assert [m.mime for m in exchange.messages.values() if m.folder_id == sent_items] == [sent]
