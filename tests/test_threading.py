"""Replies become comments on the right request, by the promised rules, with their evidence."""
from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from plugin.domain import SmartMatch
from tests.conftest import MAIL_DIR, mail_file

ORIGINAL_ID = "DM6PR11MB4657A1B2C3D4E5F6@DM6PR11MB4657.namprd11.prod.outlook.com"


@pytest.fixture
def original(service, mail_account, fake_jira):
    """SD-1, raised by Dana's Outlook mail (Lee in Cc)."""
    mail_account.append(mail_file("thread_original_outlook.eml"))
    service.poll()
    [request] = fake_jira.requests
    assert request.key == "SD-1"
    return request


def poll_one(service, mail_account, name: str, **replacements: str):
    data = mail_file(name)
    for placeholder, value in replacements.items():
        data = data.replace(placeholder.encode(), value.encode())
    uid = mail_account.append(data)
    service.poll()
    return uid, service.log()[-1]


def linked(request, other_key: str) -> bool:
    """The request has a "relates to" link with the other one."""
    return any(kind == "Relates" and other_key in (inward, outward) for kind, inward, outward in request.links)


def customer_comments(request):
    """Comments that carry a mail's text (JSM adds its own comment listing attached files)."""
    return [c for c in request.comments if " wrote:" in c.body]


def test_reply_by_in_reply_to_becomes_comment_with_only_the_new_text(service, mail_account, fake_jira, original):
    uid, entry = poll_one(service, mail_account, "thread_reply_in_reply_to_gmail.eml")

    assert (entry.outcome, entry.issue_key) == ("commented", "SD-1")
    assert entry.evidence == f"In-Reply-To <{ORIGINAL_ID}> = mail that created SD-1"
    assert len(fake_jira.requests) == 1
    [comment] = customer_comments(original)
    assert comment.public
    assert comment.body == "*Dana Reyes* (dana@example.com) wrote:\n\nIt is back online now, thanks\\!"
    [kept] = [a for a in original.attachments if a.filename == "original-mail.eml"]
    assert not kept.public and kept.data == mail_file("thread_reply_in_reply_to_gmail.eml")
    assert "\\Seen" in mail_account.flags(uid) and "jsm-processed" in mail_account.flags(uid)


def test_reply_by_references_newest_known_id(service, mail_account, fake_jira, original):
    _, entry = poll_one(service, mail_account, "thread_reply_references_only_apple.eml")

    assert (entry.outcome, entry.issue_key) == ("commented", "SD-1")
    assert entry.evidence == f"References <{ORIGINAL_ID}> = mail that created SD-1"
    assert customer_comments(original)[0].body.endswith("Still offline after lunch.")


def test_reply_by_issue_key_in_subject_from_the_reporter(service, mail_account, fake_jira, original):
    _, entry = poll_one(service, mail_account, "thread_reply_subject_key.eml")

    assert (entry.outcome, entry.issue_key) == ("commented", "SD-1")
    assert entry.evidence == "subject key SD-1, sender is reporter or participant"


def test_subject_key_from_a_stranger_opens_a_new_request_and_says_why(service, mail_account, fake_jira, original):
    _, entry = poll_one(service, mail_account, "thread_reply_subject_key_stranger.eml")

    assert (entry.outcome, entry.issue_key) == ("created", "SD-2")
    assert "subject key SD-1 ignored (sender not involved)" in entry.evidence
    assert "Thread-Index" in entry.evidence
    assert customer_comments(original) == []


def test_subject_key_from_a_stranger_comments_when_anyone_may_comment(service, mail_account, fake_jira, original):
    service.relink(anyone_may_comment=True)

    _, entry = poll_one(service, mail_account, "thread_reply_subject_key_stranger.eml")

    assert (entry.outcome, entry.issue_key) == ("commented", "SD-1")
    assert "mallory@example.net" in original.participant_emails


def test_outlook_thread_index_threads_a_japanese_reply_without_reply_headers(service, mail_account, fake_jira,
                                                                             original):
    _, entry = poll_one(service, mail_account, "thread_reply_thread_index_outlook_ja.eml")

    assert (entry.outcome, entry.issue_key) == ("commented", "SD-1")
    assert entry.evidence.startswith("Thread-Index conversation ")
    [comment] = customer_comments(original)
    assert comment.body == "*山田 太郎* (dana@example.com) wrote:\n\nまだ印刷できません。至急対応をお願いします。"


def test_in_reply_to_wins_over_a_different_key_in_the_subject(service, mail_account, fake_jira, original):
    fake_jira.add_request("Another topic", reporter_email="dana@example.com")  # SD-2

    _, entry = poll_one(service, mail_account, "thread_precedence_headers_over_subject.eml")

    assert (entry.outcome, entry.issue_key) == ("commented", "SD-1")
    assert entry.evidence.startswith("In-Reply-To")


def test_reply_to_a_jira_notification_threads_by_the_issue_id_inside(service, mail_account, fake_jira):
    request = fake_jira.add_request("Printer offline", reporter_email="dana@example.com")

    _, entry = poll_one(service, mail_account, "thread_reply_to_jira_notification.eml", **{"{ISSUE_ID}": request.id})

    assert (entry.outcome, entry.issue_key) == ("commented", request.key)
    assert entry.evidence == (f"In-Reply-To <JIRA.{request.id}.1767600000000@example.atlassian.net> = "
                              f"Jira notification about {request.key}")


def test_forward_is_a_new_request_linked_to_the_old_one(service, mail_account, fake_jira, original):
    _, entry = poll_one(service, mail_account, "thread_forward.eml")

    assert (entry.outcome, entry.issue_key) == ("created", "SD-2")
    assert "forwarded mail, not a comment" in entry.evidence
    assert customer_comments(original) == []
    new = fake_jira.request("SD-2")
    assert new.summary == "Printer offline on floor 3"
    assert linked(new, "SD-1")


def test_reply_to_a_request_resolved_long_ago_opens_a_linked_request(service, mail_account, fake_jira, original):
    fake_jira.resolve("SD-1", at=datetime.now(UTC) - timedelta(days=30))

    _, entry = poll_one(service, mail_account, "thread_reply_in_reply_to_gmail.eml")

    assert (entry.outcome, entry.issue_key) == ("created", "SD-2")
    assert "SD-1 was resolved 30 days ago" in entry.evidence
    assert linked(fake_jira.request("SD-2"), "SD-1")
    assert any(not c.public and "raised as SD-2" in c.body for c in original.comments)
    assert any(not c.public and "follows SD-1" in c.body for c in fake_jira.request("SD-2").comments)


def test_reply_to_a_recently_resolved_request_is_a_comment(service, mail_account, fake_jira, original):
    fake_jira.resolve("SD-1", at=datetime.now(UTC) - timedelta(days=2))

    _, entry = poll_one(service, mail_account, "thread_reply_in_reply_to_gmail.eml")

    assert (entry.outcome, entry.issue_key) == ("commented", "SD-1")


def test_smart_match_is_off_by_default(service, mail_account, fake_jira, original):
    _, entry = poll_one(service, mail_account, "thread_smart_match.eml")

    assert (entry.outcome, entry.issue_key) == ("created", "SD-2")
    assert "smart match off" in entry.evidence


def test_smart_match_threads_same_subject_and_shared_addresses(service, mail_account, fake_jira, original):
    service.relink(smart_match=SmartMatch(enabled=True))

    _, entry = poll_one(service, mail_account, "thread_smart_match.eml")

    assert (entry.outcome, entry.issue_key) == ("commented", "SD-1")
    assert entry.evidence.startswith("smart match: subject 'printer offline on floor 3' and 2 shared addresses")


def test_smart_match_needs_enough_shared_addresses(service, mail_account, fake_jira, original):
    service.relink(smart_match=SmartMatch(enabled=True, hash_min_address_count=3))

    _, entry = poll_one(service, mail_account, "thread_smart_match.eml")

    assert entry.outcome == "created" and "smart match: no match" in entry.evidence


def test_reply_from_someone_new_comments_and_adds_them_and_their_cc(service, mail_account, fake_jira, original):
    _, entry = poll_one(service, mail_account, "thread_reply_from_new_person.eml")

    assert (entry.outcome, entry.issue_key) == ("commented", "SD-1")
    assert {"kim@example.com", "jo@example.com"} <= set(original.participant_emails)
    assert "support@example.test" not in original.participant_emails
    [comment] = customer_comments(original)
    assert comment.body == ("*Kim Park* (kim@example.com) wrote:\n\n"
                            "I sit next to Dana: the printer shows error E-502.")


def test_reply_with_nothing_new_is_not_an_empty_comment(service, mail_account, fake_jira, original):
    _, entry = poll_one(service, mail_account, "thread_reply_only_quote.eml")

    assert entry.outcome == "commented"
    [comment] = customer_comments(original)
    assert "No new text in this mail" in comment.body
    assert "original-mail.eml" in [a.filename for a in original.attachments]


def test_replay_shows_the_decision_without_changing_anything(service, mail_account, fake_jira, original, settings,
                                                             tmp_path):
    env = {"JSM_MAIL_DATA_DIR": str(settings.data_dir), "JSM_MAIL_JIRA_URL": settings.jira_url,
           "JSM_MAIL_JIRA_EMAIL": settings.jira_email, "JSM_MAIL_JIRA_API_TOKEN": settings.jira_api_token.reveal(),
           "JSM_MAIL_ENV_FILE": str(tmp_path / "no.env"), "PATH": "/usr/bin:/bin"}
    comments_before = len(original.comments)

    result = subprocess.run([sys.executable, "-m", "plugin.cli", "replay", str(MAIL_DIR / "thread_forward.eml"),
                             str(MAIL_DIR / "thread_reply_in_reply_to_gmail.eml"), "--link", service.link.name],
                            env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("would be new request linked to SD-1: forwarded mail, not a comment: "
                             f"In-Reply-To <{ORIGINAL_ID}> = mail that created SD-1")
    assert lines[1].endswith(f"would be comment on SD-1: In-Reply-To <{ORIGINAL_ID}> = mail that created SD-1")
    assert len(fake_jira.requests) == 1 and len(original.comments) == comments_before


def test_tracking_token_in_the_subject_threads_like_an_issue_key(service, mail_account, fake_jira, original):
    service.relink(tracking_token="CRM")

    _, entry = poll_one(service, mail_account, "thread_reply_tracking_token.eml")

    assert (entry.outcome, entry.issue_key) == ("commented", "SD-1")
    assert entry.evidence == "subject key SD-1, sender is reporter or participant"


def test_reply_to_a_deleted_request_opens_a_new_one(service, mail_account, fake_jira, original):
    del fake_jira.issues["SD-1"]  # an agent deleted the request in Jira

    _, entry = poll_one(service, mail_account, "thread_reply_in_reply_to_gmail.eml")

    assert (entry.outcome, entry.issue_key) == ("created", "SD-2")
    assert entry.evidence.endswith("= mail that created SD-1, but SD-1 no longer exists")
