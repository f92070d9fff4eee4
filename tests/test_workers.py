"""More than one worker: `jsm-mail poll` and `serve` processes sharing links through PostgreSQL, one worker per
link at a time, a killed worker's link taken over, and every mail handled exactly once.

The suite runs 500 mails with two and with three workers; `benchmarks/workers.py` measures throughput.
"""
from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from plugin.store.models import LeaseRow, ProcessingLogRow, utcnow
from tests.conftest import jsm_mail
from tests.fakes.dovecot import MailAccount

PROCESSED, SEEN = "jsm-processed", "\\Seen"
FINAL = {"created", "commented", "bounce-recorded", "ignored", "rejected"}
NEW, REPLIES = 350, 150
DEADLINE_S = 90
RESTART_DELAY_S = 2.0  # a worker that found the link taken tries again after this, as `serve` would later


@pytest.fixture
def settings(settings, postgres_url):
    return settings.with_(database_url=postgres_url)


@pytest.fixture
def env(env, postgres_url) -> dict[str, str]:
    return {**env, "JSM_MAIL_DATABASE_URL": postgres_url}


@pytest.fixture(autouse=True)
def no_intake_limit(service) -> None:
    """These backlogs are about sharing work, not about the per-minute intake limit."""
    service.relink(intake_per_minute=10_000)


def customer_mail(n: int, *, reply_to: str | None = None) -> tuple[str, str, bytes]:
    """(Message-ID, token in its text, bytes) of a customer's new mail or reply."""
    token = f"tok{n:04d}"
    msg = EmailMessage()
    msg["From"] = f"Customer {n % 50} <customer{n % 50}@example.org>"  # within the 20 per sender budget
    msg["To"] = "support@example.test"
    msg["Subject"] = f"Re: Case {n % NEW}" if reply_to else f"Case {n}"
    msg["Message-ID"] = make_msgid(idstring=f"case-{n}", domain="example.org")
    if reply_to:
        msg["In-Reply-To"] = msg["References"] = reply_to
    msg.set_content(f"Please help with {token}.")
    return msg["Message-ID"], token, msg.as_bytes()


@dataclass
class Backlog:
    """The mails put into the mailbox: new requests first, then replies to some of them."""

    new: dict[str, str] = field(default_factory=dict)  # token -> Message-ID
    replies: dict[str, str] = field(default_factory=dict)  # token -> the token of the request it answers


def fill(mail_account, new: int, replies: int, *, first: int = 0) -> Backlog:
    backlog, parents, messages = Backlog(), [], []
    for n in range(first, first + new):
        message_id, token, data = customer_mail(n)
        backlog.new[token] = message_id
        parents.append((message_id, token))
        messages.append(data)
    for n in range(replies):
        parent_id, parent_token = parents[n * new // replies]
        _, token, data = customer_mail(first + new + n, reply_to=parent_id)
        backlog.replies[token] = parent_token
        messages.append(data)
    with mail_account.client(readonly=False) as client:
        for data in messages:
            client.append("INBOX", data)
    return backlog


def logged(service) -> int:
    with service.store.session() as s:
        return s.scalar(select(func.count()).select_from(ProcessingLogRow)) or 0


def lease_holder_pid(service) -> int | None:
    with service.store.session() as s:
        row = s.get(LeaseRow, service.link.id)
    return int(row.holder.split(":")[1]) if row else None


def unlabelled(mail_account) -> list[int]:
    return [uid for uid, flags, _ in mail_account.messages() if not flags & {PROCESSED, "jsm-rejected"}]


@dataclass
class Run:
    kills: int = 0
    starts: int = 0
    skipped: int = 0
    unfinished: list[str] = field(default_factory=list)  # the log tail of each worker still running at the end


def work_until_done(env: dict[str, str], workers: int, service, mail_account, *, kill_at: int,
                    logs: Path) -> Run:
    """Keep `workers` processes of `poll --once` going, each restarted when it ends, until the mailbox is
    done; SIGKILL the lease holder once `kill_at` mails are logged."""
    run = Run()
    command = [sys.executable, "-m", "plugin.cli", "poll", "--once"]
    log_files: dict[int, Path] = {}

    def start() -> subprocess.Popen[str]:
        run.starts += 1
        # The log goes to a file: a pipe nobody reads until the end fills up and stalls the worker.
        with open(logs / f"worker-{run.starts}.log", "w") as log:
            proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        log_files[proc.pid] = logs / f"worker-{run.starts}.log"
        return proc

    def log_tail(proc: subprocess.Popen[str]) -> str:
        return log_files[proc.pid].read_text()[-3000:]

    slots: list[subprocess.Popen[str] | None] = [start() for _ in range(workers)]
    waiting: dict[int, float] = {}
    deadline = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline:
            if not run.kills and logged(service) >= kill_at:
                pid = lease_holder_pid(service)
                victims = [p for p in slots if p and p.pid == pid]
                if victims:
                    victims[0].send_signal(signal.SIGKILL)
                    run.kills += 1
            for i, proc in enumerate(slots):
                if proc is not None and proc.poll() is not None:
                    out, _ = proc.communicate()
                    assert proc.returncode in (0, -signal.SIGKILL), log_tail(proc)
                    run.skipped += "skipped" in out
                    slots[i] = None
                    waiting[i] = time.monotonic() + (RESTART_DELAY_S if "skipped" in out else 0)
                    if proc.returncode == 0 and "skipped" not in out and run.kills and not unlabelled(mail_account):
                        for other in slots:
                            if other is not None:
                                assert other.wait(timeout=60) == 0, log_tail(other)
                        return run
            for i, at in list(waiting.items()):
                if time.monotonic() >= at:
                    del waiting[i]
                    slots[i] = start()
            time.sleep(0.05)
    finally:
        for proc in slots:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
                run.unfinished.append(log_tail(proc))
    raise AssertionError(f"mailbox not done in time: {len(unlabelled(mail_account))} mails unlabelled, {run}")


def assert_each_mail_once(backlog: Backlog, service, mail_account, fake_jira, *more: MailAccount) -> None:
    """Jira holds each request and comment once, on the right request; each mail is labelled and logged once."""
    requests = {}
    for request in fake_jira.requests:
        [token] = [w.rstrip(".") for w in request.description.split() if w.startswith("tok")]
        assert token not in requests, f"request for {token} made twice"
        requests[token] = request
    assert sorted(requests) == sorted(backlog.new), "requests missing"
    comments = Counter()
    for parent, request in requests.items():
        for comment in request.comments:
            for word in comment.body.split():
                if word.startswith("tok"):
                    comments[word.rstrip("."), parent] += 1
    assert comments == Counter(backlog.replies.items())  # each reply once, on its own request
    mails = [mail for account in (mail_account, *more) for mail in account.messages()]
    assert len(mails) == len(backlog.new) + len(backlog.replies)
    assert all({SEEN, PROCESSED} <= flags for _, flags, _ in mails)
    finals = Counter(e.message_id for e in service.store.processing_log() if e.outcome in FINAL)
    assert len(finals) == len(mails) and set(finals.values()) == {1}


def test_new_request_and_reply_as_comment_on_postgresql(service, mail_account, fake_jira):
    assert service.store.engine.dialect.name == "postgresql"
    request_id, _, request = customer_mail(1)
    reply_id, _, reply = customer_mail(2, reply_to=request_id)
    first = mail_account.append(request)
    service.poll()
    second = mail_account.append(reply)
    service.poll()

    [created] = fake_jira.requests
    assert "tok0001" in created.description
    assert [c.body.splitlines()[-1] for c in created.comments] == ["Please help with tok0002."]
    assert mail_account.flags(first) >= {SEEN, PROCESSED} and mail_account.flags(second) >= {SEEN, PROCESSED}
    log = {f"<{e.message_id}>": (e.outcome, e.issue_key) for e in service.store.processing_log()}
    assert log == {request_id: ("created", created.key), reply_id: ("commented", created.key)}


def test_two_workers_asking_for_a_new_link_at_once_get_it_once(service):
    """The first lease of a link is an INSERT: the loser of the race is told no, not an error."""
    answers: list[bool] = []
    with service.store.session() as s, s.begin():
        s.add(LeaseRow(link_id=service.link.id, holder="here:1:first", expires_at=utcnow() + timedelta(minutes=5)))
        s.flush()  # the row exists for this transaction only: the second worker's INSERT waits for it
        second = threading.Thread(target=lambda: answers.append(
            service.store.acquire_lease(service.link.id, "here:2:second", 300)))
        second.start()
        second.join(timeout=0.5)
        assert answers == []
    second.join(timeout=10)

    assert answers == [False]
    assert lease_holder_pid(service) == 1


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 3])
def test_workers_share_a_link_and_one_is_killed_each_mail_once(workers, env, service, mail_account, fake_jira,
                                                                tmp_path):
    backlog = fill(mail_account, NEW, REPLIES)
    kill_at = random.Random(workers).randrange(100, 300)

    run = work_until_done(env, workers, service, mail_account, kill_at=kill_at, logs=tmp_path)

    assert run.kills == 1
    assert_each_mail_once(backlog, service, mail_account, fake_jira)


def test_a_dead_workers_lease_on_another_machine_is_taken_over_after_its_ttl(env, service, mail_account,
                                                                             fake_jira):
    ttl_s = 3
    backlog = fill(mail_account, 30, 10)
    worker = subprocess.Popen([sys.executable, "-m", "plugin.cli", "poll", "--once"],
                              env={**env, "JSM_MAIL_LEASE_TTL_S": str(ttl_s)}, stdout=subprocess.DEVNULL)
    while logged(service) < 5 and worker.poll() is None:
        time.sleep(0.02)
    worker.send_signal(signal.SIGKILL)
    assert worker.wait() == -signal.SIGKILL
    # As if that worker had run on another machine: its process cannot be looked up, only its expiry counts.
    with service.store.session() as s, s.begin():
        lease = s.get(LeaseRow, service.link.id)
        lease.holder = "worker-2.example.net:" + lease.holder.partition(":")[2]
        expires_at = lease.expires_at
    assert timedelta(0) < expires_at - utcnow() <= timedelta(seconds=ttl_s)

    assert service.poll().skipped
    time.sleep((expires_at - utcnow()).total_seconds() + 0.1)
    resumed = jsm_mail(env, "poll", "--once")

    assert resumed.returncode == 0, resumed.stderr
    assert "skipped" not in resumed.stdout
    assert_each_mail_once(backlog, service, mail_account, fake_jira)


def test_workers_started_together_on_an_empty_database_create_its_tables_once(postgres_url, env):
    """The first start of several workers: each runs the migrations, one creates the tables."""
    command = [sys.executable, "-m", "plugin.cli", "poll", "--once"]
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(3)]
    outputs = [worker.communicate(timeout=60) for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0, 0], [err[-2000:] for _, err in outputs]


def test_serve_processes_share_two_links_and_one_is_killed_each_mail_once(env, service, mail_account, dovecot,
                                                                          fake_jira, tmp_path):
    username = f"second-{mail_account.username}"  # Dovecot lives for the whole run: a user of this test alone
    other = MailAccount(dovecot, username, dovecot.password_for(username))
    service.store.add_link(other.link(name="second", address=username, intake_per_minute=10_000))
    backlog = fill(mail_account, 45, 15)
    second = fill(other, 45, 15, first=1000)
    backlog.new.update(second.new)
    backlog.replies.update(second.replies)

    def serve(n: int) -> subprocess.Popen[bytes]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with open(tmp_path / f"serve-{n}.log", "w") as log:
            return subprocess.Popen([sys.executable, "-m", "plugin.cli", "serve"], stdout=log, stderr=log,
                                    env={**env, "JSM_MAIL_PORT": str(port), "JSM_MAIL_POLL_INTERVAL_S": "1"})

    servers = [serve(1), serve(2)]
    try:
        while logged(service) < 40:
            time.sleep(0.05)
        holder = lease_holder_pid(service)
        [victim] = [p for p in servers if p.pid == holder] or servers[:1]
        victim.send_signal(signal.SIGKILL)
        assert victim.wait() == -signal.SIGKILL
        servers = [p for p in servers if p is not victim] + [serve(3)]
        deadline = time.monotonic() + 60
        while (unlabelled(mail_account) or unlabelled(other)) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(timeout=30)

    assert_each_mail_once(backlog, service, mail_account, fake_jira, other)
