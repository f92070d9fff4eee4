"""Hostile mail (tests/hostile.py) never crashes `inspect` or the pipeline; the time budget stops a long mail."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from plugin.domain import OutcomeState
from plugin.errors import MailRejected, RejectReason
from plugin.inspect import inspect_file
from plugin.parse import budget
from plugin.parse.mail import parse_bytes
from plugin.parse.mime import MAX_PARTS
from tests.hostile import Case, hostile_mail, seed_mails
from tests.test_robustness import _handle

KINDS = ("mail", "auto_reply", "bounce", "feedback_report", "invalid")
# Short-run sizes: up to a fiftieth of the benchmark's (hundreds of kB, not tens of MB per mail).
SUITE_SCALE = 0.02


@settings(max_examples=250, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=hostile_mail(seed_mails(), SUITE_SCALE))
def test_inspect_reads_hostile_mail_without_raising(tmp_path_factory, case: Case):
    path = tmp_path_factory.mktemp("hostile") / "hostile.eml"
    path.write_bytes(case.data)

    result = inspect_file(path)

    assert result["kind"] in KINDS, case
    assert result["kind"] != "invalid" or result["reason"], case


def _mail_with(body: str) -> bytes:
    return (f"From: Ann <ann@example.org>\nTo: support@example.test\nSubject: help\n"
            f"Message-ID: <slow@example.org>\n\n{body}").encode()


def test_a_mail_past_the_time_budget_is_rejected_as_malformed_with_the_reason(tmp_path):
    path = tmp_path / "long.eml"
    path.write_bytes(_mail_with("On Mon, 1 Dec 2026 Bob <bob@example.org> wrote:\n> quoted\n" * 20_000))

    result = inspect_file(path, time_budget_s=0.01)

    assert result["kind"] == "invalid"
    assert result["reason"].startswith("malformed: reading this mail took longer than 0.01 s")


def test_the_same_mail_within_the_budget_is_read(tmp_path):
    path = tmp_path / "long.eml"
    path.write_bytes(_mail_with("On Mon, 1 Dec 2026 Bob <bob@example.org> wrote:\n> quoted\n" * 200))

    assert inspect_file(path)["kind"] == "mail"


def test_time_spent_waiting_does_not_count_against_the_budget():
    with budget.reading(0.2):
        time.sleep(0.4)  # as a slow Jira answer would
        budget.check()
        with pytest.raises(budget.TookTooLong):
            spin_until = time.thread_time() + 0.3
            while time.thread_time() < spin_until:
                budget.check()


def test_pipeline_rejects_an_over_budget_mail_and_the_log_says_why(service):
    service.settings = service.settings.with_(mail_time_budget_s=0.01)
    cc = ", ".join(f"Person {n} <p{n}@example.org>" for n in range(50_000))
    data = f"Cc: {cc}\n".encode() + _mail_with("hello\n")

    _, handled = _handle(service, data)

    assert handled.outcome.state is OutcomeState.REJECTED
    assert handled.outcome.reason is RejectReason.MALFORMED
    assert "took longer than 0.01 s" in (handled.outcome.detail or "")


def test_a_mail_of_more_parts_than_the_limit_is_malformed_and_says_so():
    part = "--b\nContent-Type: text/plain\n\nx\n"
    data = _mail_with("").replace(b"\n\n", b'\nContent-Type: multipart/mixed; boundary="b"\n\n', 1)

    with pytest.raises(MailRejected) as rejected:
        parse_bytes(data + (part * (MAX_PARTS + 1) + "--b--\n").encode())
    parse_bytes(data + (part * MAX_PARTS + "--b--\n").encode())

    assert rejected.value.reason is RejectReason.MALFORMED
    assert f"more than {MAX_PARTS:,} MIME parts" in rejected.value.detail


def test_the_strategies_start_from_real_mail():
    assert any(path.parent == Path(__file__).parent / "mail" for path in seed_mails())
    assert any("corpus" in path.parts for path in seed_mails())
