"""Jira misbehaving at scale: over a mailbox of twenty mails, a 429 storm, 5xx answers, answers slower than
the client's timeout and Jira down end with each mail once in Jira, nothing rejected, and each outage one
error-log row that counts its repeats."""
from __future__ import annotations

import dataclasses
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest

from plugin.jira.rest import RestJira
from tests.conftest import Service
from tests.fakes.smtp import _free_port

MAILS = 20
CREATE = r"/rest/servicedeskapi/request"
SEEN, PROCESSED = "\\Seen", "jsm-processed"


def fill(mail_account) -> list[str]:
    """Twenty requests from ten senders; returns the token each one's text carries."""
    tokens = []
    for n in range(MAILS):
        msg = EmailMessage()
        msg["From"] = f"Customer {n % 10} <customer{n % 10}@example.org>"
        msg["To"] = "support@example.test"
        msg["Subject"] = f"Printer {n} jams"
        msg["Message-ID"] = make_msgid(idstring=f"fault-{n}", domain="example.org")
        msg.set_content(f"Paper jam number tok{n:03d} on floor 2.")
        mail_account.append(msg.as_bytes())
        tokens.append(f"tok{n:03d}")
    return tokens


def poll_until_done(service: Service, mail_account, rounds: int = 200) -> list:
    """Poll as the scheduler would, honouring Retry-After, until every mail is labelled."""
    reports = []
    for _ in range(rounds):
        report = service.poll()
        reports.append(report)
        if all(PROCESSED in flags for _, flags, _ in mail_account.messages()):
            return reports
        time.sleep(min(report.retry_after_s or 0.0, 2.5))
    raise AssertionError(f"mail still unlabelled after {rounds} rounds: {reports[-1]}")


def assert_each_mail_once(service: Service, mail_account, fake_jira, tokens: list[str]) -> None:
    """Each token in exactly one request, one request per mail, each mail labelled once and logged created."""
    seen = Counter(word.rstrip(".") for r in fake_jira.requests for word in r.description.split()
                   if word.startswith("tok"))
    assert {t: seen[t] for t in tokens} == dict.fromkeys(tokens, 1)
    assert len(fake_jira.requests) == MAILS
    assert all({SEEN, PROCESSED} <= flags for _, flags, _ in mail_account.messages())
    finals = Counter(e.outcome for e in service.log() if e.outcome != "waiting-retry")
    assert finals == {"created": MAILS}  # nothing rejected, nothing failed, nothing logged twice


def waiting_rows(service: Service) -> int:
    return sum(e.outcome == "waiting-retry" for e in service.log())


def test_a_429_storm_in_seconds_and_http_dates_loses_and_doubles_nothing(service, mail_account, fake_jira):
    tokens = fill(mail_account)
    fake_jira.fail_next(15, status=429, retry_after=0, path=CREATE, method="POST")
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=1), usegmt=True)
    fake_jira.fail_next(5, status=429, retry_after=soon, path=CREATE, method="POST")

    reports = poll_until_done(service, mail_account)

    assert_each_mail_once(service, mail_account, fake_jira, tokens)
    assert sum(r.outcomes["waiting-retry"] for r in reports) == 20  # every 429 stopped its round
    [storm] = service.store.error_log()
    assert "Jira answered 429" in storm.summary and storm.count >= 20
    assert storm.last_seen >= storm.time
    assert waiting_rows(service) == 1  # the one mail that met the storm, logged once however often it waited


def test_retry_after_quiets_the_whole_site_not_one_mail(service, mail_account, fake_jira):
    fill(mail_account)
    fake_jira.fail_next(1, status=429, retry_after=2, path=CREATE, method="POST")

    first = service.poll()
    calls = len(fake_jira.calls)
    second = service.poll()  # within the quiet period: no mail calls Jira

    assert first.retry_after_s == pytest.approx(2, abs=0.1) and len(fake_jira.calls) == calls
    assert second.outcomes == {"waiting-retry": 1} and "asked this site to wait" in (second.error or "")
    time.sleep(2.1)
    service.poll()
    assert len(fake_jira.requests) == MAILS


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_lose_and_double_nothing(service, mail_account, fake_jira, status):
    tokens = fill(mail_account)
    fake_jira.fail_next(6, status=status, path=CREATE, method="POST")
    fake_jira.fail_next(4, status=status, path=CREATE, method="POST", lost=True)  # made, answer lost
    fake_jira.fail_next(3, status=status, retry_after=0)  # any call

    poll_until_done(service, mail_account)

    assert_each_mail_once(service, mail_account, fake_jira, tokens)
    errors = service.store.error_log()
    assert [e.summary.split(" to ")[0] for e in errors] == [f"RetryLater: Jira answered {status}"] * len(errors)
    assert sum(e.count for e in errors) == 13 and len(errors) <= 3  # one row per kind of call, with its count


def test_answers_slower_than_the_timeout_are_retried_without_doubles(service, mail_account, fake_jira, settings):
    tokens = fill(mail_account)
    # The gateway gives up after the settings' timeout; Jira still makes the request it answers late.
    service.settings = dataclasses.replace(settings, jira_timeout_s=0.5)
    service.jira = RestJira(settings.jira_url, settings.jira_email, settings.jira_api_token, 0.5)
    fake_jira.slow_next(3, 1.0, path=CREATE, method="POST")
    fake_jira.slow_next(2, 1.0, method="GET")

    poll_until_done(service, mail_account)

    assert_each_mail_once(service, mail_account, fake_jira, tokens)
    summaries = [e.summary for e in service.store.error_log()]
    assert summaries and all("Jira unreachable" in s and "Timeout" in s for s in summaries)
    assert sum(e.count for e in service.store.error_log()) == 5


def test_jira_down_then_back(service, mail_account, fake_jira, settings):
    tokens = fill(mail_account)
    up = service.jira
    service.jira = RestJira(f"http://127.0.0.1:{_free_port()}", settings.jira_email, settings.jira_api_token, 2)

    down = [service.poll() for _ in range(5)]
    service.jira = up
    poll_until_done(service, mail_account)

    assert all(r.outcomes == {"waiting-retry": 1} and "Jira unreachable" in (r.error or "") for r in down)
    assert all(PROCESSED in flags for _, flags, _ in mail_account.messages())
    assert_each_mail_once(service, mail_account, fake_jira, tokens)
    [outage] = service.store.error_log()
    assert "Jira unreachable" in outage.summary and "ConnectionError" in outage.summary and outage.count == 5
    assert waiting_rows(service) == 1


def test_more_answered_requests_than_one_look_reads_are_all_mailed(sending, mail_account, fake_jira, smtp_sink,
                                                                   monkeypatch):
    # A look reads at most MAX_REQUESTS_PER_LOOK updated requests; made small so a few mails exceed it.
    monkeypatch.setattr("plugin.outbound.outbox.MAX_REQUESTS_PER_LOOK", 5)
    sending.relink(max_mails_per_minute=100)
    fill(mail_account)
    sending.poll()
    for n, request in enumerate(fake_jira.requests):
        fake_jira.add_agent_comment(request.key, f"On its way: answ{n:03d}.")
        time.sleep(0.002)  # Jira stamps updates to the millisecond; agents do not answer twenty in one

    for _ in range(MAILS // 5 + 1):
        sending.poll()

    mailed = Counter(word.rstrip(".") for m in smtp_sink.messages
                     for word in m.message.get_body(("plain",)).get_content().split() if word.startswith("answ0"))
    assert mailed == {f"answ{n:03d}": 1 for n in range(MAILS)}
