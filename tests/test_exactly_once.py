"""Exactly once under faults: a fake Jira that fails a chosen call, SIGKILL at a chosen fault point,
two pollers at once. Each test ends by asserting what Jira holds and how each mail is labelled."""
from __future__ import annotations

import signal
import subprocess
import sys
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import event

from tests.conftest import jsm_mail

PROCESSED, SEEN = "jsm-processed", "\\Seen"
CUSTOMER = "Ann Lee <ann@example.org>"


def mail(subject: str, body: str, *, sender: str = CUSTOMER, reply_to: str | None = None,
         attachment: tuple[str, bytes] | None = None, message_id: str | None = None) -> tuple[str, bytes]:
    """(Message-ID, bytes) of a customer's mail to the support mailbox."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "support@example.test", subject
    msg["Message-ID"] = message_id or make_msgid(domain="example.org")
    if reply_to:
        msg["In-Reply-To"] = msg["References"] = reply_to
    msg.set_content(body)
    if attachment:
        msg.add_attachment(attachment[1], maintype="application", subtype="pdf", filename=attachment[0])
    return msg["Message-ID"].strip("<>"), msg.as_bytes()


def mail_comments(request) -> list[str]:
    """The comments made from mails (JSM also records each upload as a comment of its own)."""
    return [c.body for c in request.comments if " wrote:" in c.body]


def log_by_message(service) -> dict[str, list[tuple[str, str | None]]]:
    rows: dict[str, list[tuple[str, str | None]]] = {}
    for entry in service.log():
        rows.setdefault(entry.message_id, []).append((entry.outcome, entry.issue_key))
    return rows


# -- story 1: a mail is lost when a transient error meets "reporter and summary" recovery

def test_same_sender_same_subject_after_a_transient_error_gets_its_own_request(service, mail_account, fake_jira):
    first_id, first = mail("Printer jams", "The printer on floor 3 jams.")
    second_id, second = mail("Printer jams", "Now the one on floor 5 jams as well.")
    mail_account.append(first)
    service.poll()
    uid = mail_account.append(second)
    fake_jira.fail_next(status=503, path="/rest/servicedeskapi/request", method="POST")

    service.poll()
    service.poll()

    one, two = fake_jira.requests
    assert "floor 3" in one.description and "floor 5" in two.description
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}
    log = log_by_message(service)
    assert log[first_id] == [("created", one.key)]
    assert log[second_id] == [("waiting-retry", None), ("created", two.key)]


# -- story 2: a mail is misattributed when a step after the create fails

def test_failure_after_the_create_keeps_the_mail_on_its_own_request(service, mail_account, fake_jira):
    _, first = mail("Printer jams", "The printer on floor 3 jams.")
    second_id, second = mail("Printer jams", "Floor 5 too, photo attached.", attachment=("jam.pdf", b"%PDF-1 jam"))
    mail_account.append(first)
    service.poll()
    mail_account.append(second)
    fake_jira.fail_next(status=503, path=r"/rest/servicedeskapi/request/SD-2/attachment", method="POST")

    service.poll()
    service.poll()
    reply_id, reply = mail("Re: Printer jams", "Fixed itself.", reply_to=f"<{second_id}>")
    mail_account.append(reply)
    service.poll()

    one, two = fake_jira.requests
    assert [a.filename for a in two.attachments] == ["jam.pdf"] and one.attachments == []
    assert [c.splitlines()[-1] for c in mail_comments(two)] == ["Fixed itself."] and one.comments == []
    log = log_by_message(service)
    assert log[second_id][-1] == ("created", "SD-2")
    assert log[reply_id] == [("commented", "SD-2")]


def test_create_whose_answer_was_lost_is_found_not_repeated(service, mail_account, fake_jira):
    message_id, data = mail("VPN down", "Since this morning.")
    uid = mail_account.append(data)
    fake_jira.fail_next(status=504, path="/rest/servicedeskapi/request", method="POST", lost=True)

    service.poll()
    service.poll()

    [request] = fake_jira.requests
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}
    assert log_by_message(service)[message_id][-1] == ("created", request.key)
    assert "interrupted attempt" in service.log()[-1].detail


# -- story 3: comments and attachments are doubled by a retry

def reply_on_a_request(service, mail_account, fake_jira, **reply: object) -> tuple[str, int]:
    request_id, request = mail("Laptop broken", "The screen flickers.")
    mail_account.append(request)
    service.poll()
    reply_id, data = mail("Re: Laptop broken", "It is the cable.", reply_to=f"<{request_id}>", **reply)
    return reply_id, mail_account.append(data)


def test_comment_whose_answer_was_lost_is_not_posted_again(service, mail_account, fake_jira):
    reply_id, uid = reply_on_a_request(service, mail_account, fake_jira)
    fake_jira.fail_next(status=503, path=r"/rest/api/2/issue/SD-1/comment", method="POST", lost=True)

    service.poll()
    service.poll()

    [request] = fake_jira.requests
    assert len(request.comments) == 1
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}
    assert log_by_message(service)[reply_id] == [("waiting-retry", None), ("commented", "SD-1")]


def test_reply_with_attachment_whose_comment_failed_uploads_the_file_once(service, mail_account, fake_jira):
    reply_on_a_request(service, mail_account, fake_jira, attachment=("cable.pdf", b"%PDF-1 cable"))
    fake_jira.fail_next(status=503, path=r"/rest/api/2/issue/SD-1/comment", method="POST")

    service.poll()
    service.poll()

    [request] = fake_jira.requests
    assert len(mail_comments(request)) == 1
    assert [a.filename for a in request.attachments] == ["cable.pdf"]
    assert fake_jira.count("POST", "/rest/servicedeskapi/servicedesk/1/attachTemporaryFile") == 1


def test_attachment_whose_answer_was_lost_is_not_attached_again(service, mail_account, fake_jira):
    _, uid = reply_on_a_request(service, mail_account, fake_jira, attachment=("cable.pdf", b"%PDF-1 cable"))
    fake_jira.fail_next(status=502, path=r"/rest/servicedeskapi/request/SD-1/attachment", method="POST", lost=True)

    service.poll()
    service.poll()

    [request] = fake_jira.requests
    assert len(mail_comments(request)) == 1
    assert [a.filename for a in request.attachments] == ["cable.pdf"]
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}


def test_process_killed_right_after_the_comment_post_comments_once(env, service, mail_account, fake_jira):
    reply_id, uid = reply_on_a_request(service, mail_account, fake_jira, attachment=("cable.pdf", b"%PDF-1 cable"))

    crashed = jsm_mail({**env, "JSM_MAIL_FAULT": "kill-at:jira-commented"}, "poll", "--once")
    resumed = jsm_mail(env, "poll", "--once")

    assert crashed.returncode == -signal.SIGKILL
    assert resumed.returncode == 0, resumed.stderr
    [request] = fake_jira.requests
    assert len(mail_comments(request)) == 1 and [a.filename for a in request.attachments] == ["cable.pdf"]
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}
    assert log_by_message(service)[reply_id] == [("commented", "SD-1")]


def test_process_killed_after_the_attachment_attaches_once(env, service, mail_account, fake_jira):
    reply_id, _ = reply_on_a_request(service, mail_account, fake_jira, attachment=("cable.pdf", b"%PDF-1 cable"))

    crashed = jsm_mail({**env, "JSM_MAIL_FAULT": "kill-at:jira-attached"}, "poll", "--once")
    jsm_mail(env, "poll", "--once")

    assert crashed.returncode == -signal.SIGKILL
    [request] = fake_jira.requests
    assert len(mail_comments(request)) == 1 and [a.filename for a in request.attachments] == ["cable.pdf"]
    assert log_by_message(service)[reply_id] == [("commented", "SD-1")]


# -- story 4: two pollers on one link double everything

def test_two_pollers_started_together_handle_each_mail_once(env, service, mail_account, fake_jira):
    service.relink(intake_per_minute=100)
    ids = []
    for n in range(12):
        message_id, data = mail(f"Question {n}", f"Question number {n}.")
        ids.append(message_id)
        mail_account.append(data)
    for n in range(0, 12, 3):
        mail_account.append(mail(f"Re: Question {n}", f"More on {n}.", reply_to=f"<{ids[n]}>")[1])
    service.poll()  # the first 12 become requests; the replies may thread on them now
    for n in range(12):
        mail_account.append(mail(f"Re: Question {n}", f"Later on {n}.", reply_to=f"<{ids[n]}>")[1])

    command = [sys.executable, "-m", "plugin.cli", "poll", "--once"]
    pollers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in pollers]

    assert [p.returncode for p in pollers] == [0, 0], outputs
    assert len(fake_jira.requests) == 12
    comments = [c.splitlines()[-1] for r in fake_jira.requests for c in mail_comments(r)]
    assert len(comments) == len(set(comments)) == 16
    assert all({SEEN, PROCESSED} <= flags for _, flags, _ in mail_account.messages())
    assert len(service.log()) == len(mail_account.messages()) == 28


def test_a_second_poller_skips_a_link_that_another_holds(service, mail_account, fake_jira):
    assert service.store.acquire_lease(service.link.id, "other-host:1:abc", 300)
    mail_account.append(mail("Hello", "Hi.")[1])

    report = service.poll()

    assert report.skipped and fake_jira.requests == []


# -- story 5: a crash between label and log leaves a handled mail without a log row

def test_process_killed_between_record_and_label_is_labelled_with_one_log_row(env, service, mail_account,
                                                                              fake_jira):
    message_id, data = mail("Mouse broken", "Left button.")
    uid = mail_account.append(data)

    crashed = jsm_mail({**env, "JSM_MAIL_FAULT": "kill-at:recorded"}, "poll", "--once")
    assert crashed.returncode == -signal.SIGKILL
    assert mail_account.flags(uid) == set()
    jsm_mail(env, "poll", "--once")

    [request] = fake_jira.requests
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}
    assert log_by_message(service)[message_id] == [("created", request.key)]


# -- the budgets: Jira calls and database commits per mail

def per_mail_calls(fake_jira, service, mail_account, messages: list[bytes]) -> int:
    for data in messages:
        mail_account.append(data)
    before = len(fake_jira.calls)
    service.poll()
    calls = fake_jira.calls[before:]
    per_round = [c for c in calls if c.path == "/rest/servicedeskapi/servicedesk/1"]
    return (len(calls) - len(per_round)) // len(messages)


def test_new_request_from_a_known_customer_costs_two_jira_calls(service, mail_account, fake_jira):
    senders = [f"Customer {n} <c{n}@example.org>" for n in range(3)]
    for s in senders:
        fake_jira.add_customer(s.split("<")[1].rstrip(">"))
    assert per_mail_calls(fake_jira, service, mail_account,
                          [mail(f"Issue {n}", "Text.", sender=s)[1] for n, s in enumerate(senders)]) <= 2


def test_new_request_from_a_new_customer_costs_three_jira_calls(service, mail_account, fake_jira):
    messages = [mail(f"Issue {n}", "Text.", sender=f"New {n} <new{n}@example.org>")[1] for n in range(3)]
    assert per_mail_calls(fake_jira, service, mail_account, messages) <= 3
    assert len(fake_jira.requests) == 3


def test_comment_costs_two_jira_calls(service, mail_account, fake_jira):
    ids = []
    for n in range(3):
        message_id, data = mail(f"Issue {n}", "Text.")
        ids.append(message_id)
        mail_account.append(data)
    service.poll()
    replies = [mail(f"Re: Issue {n}", "More.", reply_to=f"<{ids[n]}>")[1] for n in range(3)]
    assert per_mail_calls(fake_jira, service, mail_account, replies) <= 2
    assert all(len(r.comments) == 1 for r in fake_jira.requests)


def test_each_mail_costs_at_most_two_database_commits(service, mail_account, fake_jira):
    commits = []
    event.listen(service.store.engine, "commit", lambda connection: commits.append(1))
    service.poll()
    per_round = len(commits)  # the link's lease, the outbound cursor: the same with or without mail
    commits.clear()
    request_id, request = mail("Issue", "Text.")
    messages = [request, mail("Re: Issue", "More.", reply_to=f"<{request_id}>")[1],
                mail("Out of office", "Away.", sender="bob@example.org")[1]]
    for data in messages:
        mail_account.append(data)

    service.poll()

    assert len(service.log()) == 3
    assert len(commits) - per_round <= 2 * len(messages)
