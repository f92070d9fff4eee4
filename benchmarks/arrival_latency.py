"""Seconds from a mail appended to the mailbox to its request in Jira while `jsm-mail serve` runs, with IDLE and
with polling alone (IDLE off) measured in the same run, and serve's CPU while no mail comes.

Usage: .venv/bin/python benchmarks/arrival_latency.py [--mails N] [--poll-interval S] [--idle-seconds S]
Starts the servers the tests use (Dovecot, the contract-checking fake Jira) through the tests' pytest fixtures
and one `jsm-mail serve` per mode on one IMAP link. Each mail is appended at a random moment of the polling
cycle, once the one before it is a request. The CPU figure is the serve process's user + system time
(/proc/<pid>/stat) over --idle-seconds without mail, with its watcher idling.
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

# Run as a script, sys.path holds benchmarks/ only; the tests' fixtures live beside plugin/.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plugin.settings import Settings  # noqa: E402
from plugin.store.store import Store  # noqa: E402
from tests.fakes.dovecot import MailAccount  # noqa: E402
from tests.test_workers import customer_mail  # noqa: E402

GOAL_MEDIAN_S = 2.0
GOAL_IDLE_CPU = 0.01  # of one core
ARRIVAL_TIMEOUT_S = 120.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "plugin.cli", "serve", "--port", str(port)], env=env,
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=out)


def arrive(account: MailAccount, fake_jira, n: int, proc: subprocess.Popen[bytes]) -> float:
    """Append mail `n` and return the seconds until the fake Jira holds its request."""
    known = len(fake_jira.requests)
    appended = datetime.now(UTC)
    account.append(customer_mail(n)[2])
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    while len(fake_jira.requests) == known:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"mail {n} did not become a request (serve exit status {proc.poll()})")
        time.sleep(0.01)
    return (fake_jira.requests[known].created - appended).total_seconds()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (proc(5): fields 14 and 15 of /proc/<pid>/stat, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def run_mode(idle: bool, mails: int, interval_s: int, idle_seconds: float, dovecot, fake_jira,
             tmp: Path) -> tuple[list[float], float | None]:
    """Latencies of `mails` mails, and (with IDLE) serve's share of a core while no mail comes."""
    name = "idle" if idle else "poll"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("JSM_MAIL_")},
           "JSM_MAIL_DATA_DIR": str(tmp / name), "JSM_MAIL_JIRA_URL": fake_jira.url,
           "JSM_MAIL_JIRA_EMAIL": fake_jira.email, "JSM_MAIL_JIRA_API_TOKEN": fake_jira.api_token,
           "JSM_MAIL_JIRA_INDEX_LAG_S": "0", "JSM_MAIL_POLL_INTERVAL_S": str(interval_s),
           "JSM_MAIL_IDLE_MAX_CONNECTIONS": "20" if idle else "0", "JSM_MAIL_ENV_FILE": str(tmp / "no.env")}
    store = Store(Settings.from_env(env))
    username = f"arrival-{name}@example.test"
    account = MailAccount(dovecot, username, dovecot.password_for(username))
    store.add_link(account.link(name=name, address="support@example.test"))
    store.engine.dispose()
    first = 0 if idle else 1000
    proc = serve(env, tmp / f"serve-{name}.log")
    try:
        arrive(account, fake_jira, first, proc)  # the first round: serve is up and has polled once
        if idle:
            deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
            while "watching link=idle for new mail" not in (tmp / "serve-idle.log").read_text():
                if time.monotonic() > deadline:
                    raise SystemExit(f"no watcher started; see {tmp / 'serve-idle.log'}")
                time.sleep(0.05)
        latencies = []
        for n in range(first + 1, first + 1 + mails):
            time.sleep(random.uniform(0, 1 if idle else interval_s))  # a random moment of the polling cycle
            latencies.append(arrive(account, fake_jira, n, proc))
        cpu_share = None
        if idle:
            time.sleep(2)  # the last round's labelling and logging settle
            before, started = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(idle_seconds)
            cpu_share = (cpu_seconds(proc.pid) - before) / (time.monotonic() - started)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    return latencies, cpu_share


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]


def test_benchmark(dovecot, fake_jira, tmp_path, pytestconfig) -> None:
    mails, interval_s, idle_seconds = pytestconfig.arrival_options
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake Jira's line per call
    print(f"\nmail appended -> request created in the fake Jira: {mails} mails on one IMAP link, {os.cpu_count()} "
          f"cores")
    idle, cpu_share = run_mode(True, mails, interval_s, idle_seconds, dovecot, fake_jira, tmp_path)
    polled, _ = run_mode(False, mails, interval_s, idle_seconds, dovecot, fake_jira, tmp_path)
    assert cpu_share is not None
    print(f"IDLE:                        median {statistics.median(idle):6.2f} s, p90 {p90(idle):6.2f} s   "
          f"goal: <= {GOAL_MEDIAN_S:.0f} s median")
    print(f"polling every {interval_s:3d} s, no IDLE: median {statistics.median(polled):6.2f} s, "
          f"p90 {p90(polled):6.2f} s")
    print(f"serve's CPU over {idle_seconds:.0f} s without mail, watcher idling: {cpu_share * 100:.2f}% of a core   "
          f"goal: < {GOAL_IDLE_CPU * 100:.0f}% of a core")


class _Options:
    """Hands the command line to the benchmark test."""

    def __init__(self, mails: int, interval_s: int, idle_seconds: float) -> None:
        self.options = (mails, interval_s, idle_seconds)

    def pytest_configure(self, config: pytest.Config) -> None:
        config.arrival_options = self.options  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=10, help="mails measured in each mode")
    parser.add_argument("--poll-interval", type=int, default=20, help="JSM_MAIL_POLL_INTERVAL_S of both modes")
    parser.add_argument("--idle-seconds", type=float, default=30, help="how long serve's CPU is measured")
    args = parser.parse_args()
    if args.mails < 1 or args.poll_interval < 1 or args.idle_seconds <= 0:
        parser.error("--mails and --poll-interval must be at least 1, --idle-seconds above 0")
    return int(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider", "-p", "no:logging",
                            "-p", "tests.conftest", "--rootdir", str(REPO), "-W", "ignore"],
                           plugins=[_Options(args.mails, args.poll_interval, args.idle_seconds)]))


if __name__ == "__main__":
    sys.exit(main())
