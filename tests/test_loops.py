"""End to end: our own mail and Jira's coming back to the mailbox is ignored, never a request or comment."""
from __future__ import annotations

import pytest

from tests.conftest import mail_file

PROCESSED, SEEN = "jsm-processed", "\\Seen"


@pytest.mark.parametrize("name, evidence", [
    ("loop_jsm_mail_header.eml", "loop: X-JSM-Mail-Loop"),
    ("loop_jira_fingerprint.eml", "loop: X-JIRA-FingerPrint"),
    ("loop_own_message_id.eml", "loop: message-id @jsm-mail.example.test"),
    ("loop_jira_notification.eml", "loop: Jira notification <JIRA.123.456@example.atlassian.net>"),
])
def test_looping_mail_is_ignored_even_when_it_names_a_request(service, mail_account, fake_jira, name, evidence):
    # The reporter writing with the key in the subject: without the loop signal this would be a comment.
    request = fake_jira.add_request("VPN drops every hour", reporter_email="ann@example.org")
    assert request.key == "SD-1"
    uid = mail_account.append(mail_file(name))

    service.poll()

    assert fake_jira.requests == [request] and request.comments == []
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}
    [entry] = service.log()
    assert (entry.outcome, entry.reason, entry.issue_key) == ("ignored", None, None)
    assert evidence in entry.evidence


def test_mail_from_the_linked_mailbox_itself_is_a_loop(service, mail_account, fake_jira):
    uid = mail_account.append(mail_file("request_plain.eml").replace(b"From: Ann Customer <ann@example.org>",
                                                                      b"From: Support <support@example.test>"))

    service.poll()

    assert fake_jira.requests == []
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}
    assert service.log()[0].evidence == "loop: sent from the linked mailbox support@example.test itself"
