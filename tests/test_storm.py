"""A storm of auto-replies, bounces and loops: recognised, recorded, never a request, never answered."""
from __future__ import annotations

import itertools
import re

from tests.conftest import mail_file
from tests.corpus import corpus_cases

PROCESSED, REJECTED, SEEN = "jsm-processed", "jsm-rejected", "\\Seen"
STORM_SIZE = 1000
TEMPLATES = ("storm_outlook_oof.eml", "storm_rfc3834_vacation.eml", "storm_auto_submitted.eml", "storm_dsn.eml",
             "storm_qmail_bounce.eml", "storm_mailer_daemon.eml", "storm_loop.eml",
             "bounce_dsn_of_jira_notification.eml")
JIRA_NOTIFICATION_ID = b"JIRA.10001."
# fml's loop alert carries no signal a classifier could read (see tests/test_classify.py KNOWN_FAILURES).
UNREADABLE = {"lhost-fml-03.eml"}
MACHINE_OUTCOMES = {"ignored", "bounce-recorded", "rejected"}
MESSAGE_ID = re.compile(rb"(?m)^Message-ID: <([^>]+)>")


def varied(template: bytes, n: int) -> bytes:
    """The template as the n-th mail of the storm: its own Message-ID and one of 40 sender domains."""
    mail = MESSAGE_ID.sub(lambda m: b"Message-ID: <storm-%d.%s>" % (n, m[1]), template, count=1)
    return mail.replace(b"@customer.example", b"@c%d.customer.example" % (n % 40))


def storm(issue_id: str) -> tuple[list[bytes], list[bytes]]:
    """Corpus bounces and auto-replies as they are, and templated ones up to STORM_SIZE; the
    bounced Jira notifications are about the issue with this id."""
    corpus = [case.path.read_bytes() for name in ("sisimai", "flufl-bounce") for case in corpus_cases(name)
              if case.file not in UNREADABLE]
    templates = itertools.cycle(mail_file(name).replace(JIRA_NOTIFICATION_ID, b"JIRA.%s." % issue_id.encode())
                                for name in TEMPLATES)
    return corpus, [varied(next(templates), n) for n in range(STORM_SIZE - len(corpus))]


def all_flags(mail_account) -> list[set[str]]:
    """The flags of every mail in the mailbox."""
    with mail_account.client() as client:
        fetched = client.fetch(client.search("ALL"), ["FLAGS"])
    return [{flag.decode() for flag in data[b"FLAGS"]} for data in fetched.values()]


def in_reply_to(mail: bytes, message_id: str) -> bytes:
    """The mail as an answer to ours: what an auto-responder writes."""
    return b"In-Reply-To: <%s>\r\n" % message_id.encode() + mail


def test_storm_of_machine_mail_raises_nothing_and_answers_nothing(sending, mail_account, fake_jira, smtp_sink):
    sending.relink(intake_per_minute=STORM_SIZE)
    request = fake_jira.add_request("Printer on floor 3", reporter_email="moved.away@customer.example")
    answer = fake_jira.add_agent_comment(request.key, "A technician comes at 3 pm.")
    sending.poll()
    [ours] = smtp_sink.messages  # the mail every auto-reply below answers
    our_id = ours.message["Message-ID"].strip("<>")
    corpus, templated = storm(request.id)
    templated = [in_reply_to(m, our_id) for m in templated]
    with mail_account.client(readonly=False) as client:
        client.multiappend("INBOX", corpus + templated)

    for _ in range(3):
        if not sending.poll().outcomes:
            break

    assert fake_jira.requests == [request]
    bounces_of_notifications = sum(JIRA_NOTIFICATION_ID.replace(b"10001", request.id.encode()) in m
                                   for m in templated)
    assert len(request.comments) == 1 + bounces_of_notifications
    assert request.public_comments == [answer]
    assert smtp_sink.messages == [ours]
    flags = all_flags(mail_account)
    assert len(flags) == STORM_SIZE
    assert all(SEEN in f and f & {PROCESSED, REJECTED} for f in flags)
    log = [entry for entry in sending.log() if entry.outcome != "sent"]
    assert len(log) == STORM_SIZE
    assert {entry.outcome for entry in log} <= MACHINE_OUTCOMES
    assert {e.message_id for e in log} >= {MESSAGE_ID.search(m)[1].decode() for m in templated}
