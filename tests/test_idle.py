"""Arrival in seconds: while `serve` runs, new IMAP mail starts its link's round at once (IDLE, or NOOP where
the server offers no IDLE), through Dovecot restarts, up to the connection bound, and stops cleanly."""
from __future__ import annotations

import logging
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from plugin.arrival import BACKOFF_CAP_S, backoff_s
from plugin.mailboxes.network import RETRY_AFTER_CONFIG_S, RETRY_AFTER_S
from plugin.runtime import Runtime
from plugin.scheduler import start_scheduler
from tests.fakes.dovecot import SEARCH_PATH as DOVECOT_PATH
from tests.fakes.dovecot import (
    DovecotServer,
    MailAccount,
    _free_ports,
    _make_root,
    _stop,
    _wait_until_ready,
    _write_config,
    openssl_path,
)

POLL_INTERVAL_S = 300  # far beyond every deadline below: only the watcher can bring mail in time
DEADLINE_S = 60.0  # generous: the machine is shared; arrival itself takes about a second


def customer_mail(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <customer{n}@example.org>"
    msg["To"] = "support@example.test"
    msg["Subject"] = f"Printer {n} is jammed"
    msg["Message-ID"] = make_msgid(idstring=f"arrival-{n}", domain="example.org")
    msg.set_content("It stopped at page 3.")
    return msg.as_bytes()


def wait_until(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {deadline_s:.0f} s: {what}")
        time.sleep(0.1)


def logged_out_cleanly(log: Path, username: str, since: int = 0) -> bool:
    """Every IMAP session of the user (begun after log offset `since`) ended with LOGOUT, none by a dropped
    connection."""
    lines = log.read_text(errors="replace")[since:].splitlines()
    logins = sum(1 for line in lines if "imap-login:" in line and f"Login: user=<{username}>," in line)
    ends = [line for line in lines if f"imap({username})" in line and ("Logged out" in line or "Disconnected" in line)]
    return logins > 0 and len(ends) == logins and all("Logged out" in line for line in ends)


@dataclass
class OwnDovecot:
    """A Dovecot of one test, which the test may restart; mail survives restarts (Maildir on disk)."""

    server: DovecotServer
    conf: Path
    proc: subprocess.Popen[bytes]

    @property
    def log(self) -> Path:
        return self.server.root / "log" / "dovecot.log"

    def account(self, username: str = "support@example.test") -> MailAccount:
        return MailAccount(self.server, username, self.server.password_for(username))

    def start(self) -> None:
        dovecot_bin = _dovecot_bin()
        with open(self.server.root / "log" / "stderr.log", "ab") as stderr:
            self.proc = subprocess.Popen([dovecot_bin, "-F", "-c", str(self.conf)], stderr=stderr)
        assert _wait_until_ready(self.proc, self.server), "Dovecot did not start again"

    def stop(self) -> None:
        _stop(self.proc)


def _dovecot_bin() -> str:
    path = shutil.which("dovecot", path=DOVECOT_PATH)
    assert path, "dovecot not found"
    return path


def own_dovecot_with(extra_config: str) -> Iterator[OwnDovecot]:
    root = _make_root(openssl_path())
    password_secret = secrets.token_hex(8)
    ports = _free_ports(4)
    server = DovecotServer(root, "127.0.0.1", *ports, cafile=str(root / "cert.pem"), password_secret=password_secret)
    conf = _write_config(root, ports, password_secret, "http://127.0.0.1:9/introspect")
    conf.write_text(conf.read_text() + extra_config)
    own = OwnDovecot(server, conf, proc=None)  # type: ignore[arg-type]
    own.start()
    try:
        yield own
    finally:
        own.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def own_dovecot() -> Iterator[OwnDovecot]:
    yield from own_dovecot_with("")


@pytest.fixture
def dovecot_without_idle() -> Iterator[OwnDovecot]:
    # The capabilities Dovecot 2.3 announces after login, less IDLE.
    yield from own_dovecot_with("imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ UIDPLUS "
                                "NAMESPACE UNSELECT CHILDREN\n")


def arrival_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("arrival ")]


def test_serve_turns_new_mail_into_a_request_within_seconds_and_logs_out_on_stop(env, service, mail_account, dovecot,
                                                                                  fake_jira, tmp_path):
    mail_account.append(customer_mail(1))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve_log = tmp_path / "serve.log"
    with serve_log.open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "plugin.cli", "serve", "--port", str(port)],
                                  env={**env, "JSM_MAIL_POLL_INTERVAL_S": str(POLL_INTERVAL_S)},
                                  stdout=subprocess.DEVNULL, stderr=log)
    try:
        # The first round takes mail 1; after that only the watcher can start a round before 300 s.
        wait_until(lambda: len(fake_jira.requests) == 1, "the first round makes a request of mail 1")
        wait_until(lambda: "watching link=test for new mail by IDLE" in serve_log.read_text(), "the watcher idles")
        appended = datetime.now(UTC)
        mail_account.append(customer_mail(2))
        wait_until(lambda: len(fake_jira.requests) == 2, "mail 2 becomes a request long before the next round")
        assert fake_jira.requests[1].summary == "Printer 2 is jammed"
        assert (fake_jira.requests[1].created - appended).total_seconds() < POLL_INTERVAL_S
        wait_until(lambda: all("jsm-processed" in flags for _, flags, _ in mail_account.messages()),
                   "both mails are labelled")
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C: serve stops the scheduler and the watchers
        assert server.wait(timeout=60) == 0, serve_log.read_text()[-3000:]

    dovecot_log = dovecot.root / "log" / "dovecot.log"
    wait_until(lambda: logged_out_cleanly(dovecot_log, mail_account.username),
               "every session of the link, the watcher's too, ended with LOGOUT", deadline_s=10)


def test_after_a_dovecot_restart_the_watcher_reconnects_and_the_next_mail_arrives(own_dovecot, settings, store,
                                                                                  fake_jira, caplog):
    caplog.set_level(logging.INFO, logger="plugin.arrival")
    account = own_dovecot.account()
    store.add_link(account.link(address=account.address))
    runtime = Runtime(settings.with_(poll_interval_s=POLL_INTERVAL_S), store=store)
    scheduler = start_scheduler(runtime)
    try:
        wait_until(lambda: "watching link=test for new mail by IDLE" in caplog.text, "the watcher idles")
        own_dovecot.stop()
        wait_until(lambda: "not watching link=test for new mail" in caplog.text, "the watcher sees the server go")
        time.sleep(3)  # a reconnect attempt or two fails meanwhile, and backs off
        own_dovecot.start()
        restarted = len(own_dovecot.log.read_text(errors="replace"))
        wait_until(lambda: "watching link=test again after" in caplog.text, "the watcher reconnects")
        account.append(customer_mail(3))
        wait_until(lambda: len(fake_jira.requests) == 1, "the mail sent after the restart becomes a request")
    finally:
        scheduler.shutdown(wait=True)

    assert arrival_threads() == []
    # One warning for the outage, however many reconnects failed during it.
    assert caplog.text.count("not watching link=test for new mail") == 1
    wait_until(lambda: logged_out_cleanly(own_dovecot.log, account.username, restarted),
               "the watcher's last session ended with LOGOUT", deadline_s=10)


def test_a_server_without_idle_is_watched_by_noop(dovecot_without_idle, settings, store, fake_jira, caplog):
    caplog.set_level(logging.INFO, logger="plugin.arrival")
    account = dovecot_without_idle.account()
    store.add_link(account.link(address=account.address))
    runtime = Runtime(settings.with_(poll_interval_s=POLL_INTERVAL_S), store=store)
    scheduler = start_scheduler(runtime)
    try:
        wait_until(lambda: "watching link=test for new mail by NOOP every 5 s (the server offers no IDLE)"
                   in caplog.text, "the watcher falls back to NOOP")
        account.append(customer_mail(4))
        wait_until(lambda: len(fake_jira.requests) == 1, "the mail becomes a request within a few NOOPs")
    finally:
        scheduler.shutdown(wait=True)
    assert arrival_threads() == []


def test_watchers_stay_within_the_bound_and_follow_disabled_and_changed_links(mail_account, dovecot, settings, store,
                                                                               fake_jira, caplog):
    caplog.set_level(logging.INFO, logger="plugin.arrival")
    first = store.add_link(mail_account.link(name="first", address="support@example.test"))
    username = f"second-{mail_account.username}"
    other = MailAccount(dovecot, username, dovecot.password_for(username))
    second = store.add_link(other.link(name="second", address="help@example.test"))
    runtime = Runtime(settings.with_(poll_interval_s=POLL_INTERVAL_S, idle_max_connections=1), store=store)
    scheduler = start_scheduler(runtime)
    sync = scheduler.get_job("sync-links")
    arrivals = sync.args[2]
    try:
        assert arrivals.watched() == [first.id]
        assert "1 IMAP links are beyond JSM_MAIL_IDLE_MAX_CONNECTIONS=1 and are polled on schedule only: second" \
            in caplog.text
        wait_until(lambda: "watching link=first for new mail by IDLE" in caplog.text, "the first link is watched")

        # The admin disables the first link: at the next refresh the second takes its place.
        store.update_link(replace(store.link(first.id), enabled=False))
        sync.modify(next_run_time=datetime.now(UTC))
        wait_until(lambda: arrivals.watched() == [second.id], "the watcher follows the links")
        wait_until(lambda: "watching link=second for new mail by IDLE" in caplog.text, "the second link is watched")
        other.append(customer_mail(5))
        wait_until(lambda: len(fake_jira.requests) == 1, "mail on the second link arrives at once")

        # A changed folder starts the watcher again with the new settings.
        with other.client(readonly=False) as client:
            client.create_folder("Support")
        store.update_link(replace(store.link(second.id), folder="Support"))
        sync.modify(next_run_time=datetime.now(UTC))
        wait_until(lambda: caplog.text.count("watching link=second for new mail by IDLE") == 2, "the watcher restarts")
        with other.client(readonly=False) as client:
            client.append("Support", customer_mail(6))
        wait_until(lambda: len(fake_jira.requests) == 2, "mail in the new folder arrives at once")
    finally:
        scheduler.shutdown(wait=True)
    assert arrival_threads() == []
    assert caplog.text.count("beyond JSM_MAIL_IDLE_MAX_CONNECTIONS") == 1


def test_reconnects_back_off_exponentially_with_jitter_up_to_a_cap():
    waits = [[backoff_s(failures, RETRY_AFTER_S) for _ in range(200)] for failures in range(1, 13)]

    assert min(waits[0]) >= 0.5 and max(waits[0]) <= 1.0  # never a busy loop, even at the first failure
    assert [min(w) for w in waits[:8]] == sorted(min(w) for w in waits[:8])
    assert min(waits[7]) >= 64 and max(waits[-1]) <= BACKOFF_CAP_S
    assert len({round(w, 6) for w in waits[3]}) > 100  # jitter: watchers of one server do not return in step
    # A refused login waits long at once: trying again soon only risks locking the mailbox out.
    assert min(backoff_s(1, RETRY_AFTER_CONFIG_S) for _ in range(200)) >= BACKOFF_CAP_S / 2
