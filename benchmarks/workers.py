"""Throughput of 1, 2 and 3 `jsm-mail poll` workers sharing links through PostgreSQL, as ratios to one worker
measured in the same run.

Usage: .venv/bin/python benchmarks/workers.py [--links N] [--mails N]
Starts the servers the tests use (Dovecot, PostgreSQL, the contract-checking fake Jira) through the tests'
pytest fixtures. A link is worked by one process at a time, so extra workers speed up several links, never
one; each round also checks that every mail was handled once. Without PostgreSQL it exits with status 2.
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

# Run as a script, sys.path holds benchmarks/ only; the tests' fixtures live beside plugin/.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plugin.settings import Settings  # noqa: E402
from plugin.store.models import ProcessingLogRow  # noqa: E402
from plugin.store.store import Store  # noqa: E402
from tests.fakes.dovecot import MailAccount  # noqa: E402
from tests.test_workers import customer_mail  # noqa: E402

GOAL = "2 and 3 workers over several links: faster than 1 worker (ratio > 1.00x), each mail once"
WORKER_COUNTS = (1, 2, 3)


def run_workers(workers: int, links: int, mails: int, postgres, dovecot, fake_jira, tmp: Path) -> float:
    """Seconds until `workers` processes of `jsm-mail poll` have handled `mails` mails on each of `links` links."""
    database = f"bench_{workers}"
    with postgres.admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("JSM_MAIL_")},
           "JSM_MAIL_DATA_DIR": str(tmp / database), "JSM_MAIL_DATABASE_URL": postgres.url(database),
           "JSM_MAIL_JIRA_URL": fake_jira.url, "JSM_MAIL_JIRA_EMAIL": fake_jira.email,
           "JSM_MAIL_JIRA_API_TOKEN": fake_jira.api_token, "JSM_MAIL_JIRA_INDEX_LAG_S": "0",
           "JSM_MAIL_POLL_INTERVAL_S": "1", "JSM_MAIL_ENV_FILE": str(tmp / "no.env")}
    store = Store(Settings.from_env(env))
    for n in range(links):
        username = f"bench{workers}-{n}@example.test"
        account = MailAccount(dovecot, username, dovecot.password_for(username))
        store.add_link(account.link(name=f"link-{n}", address=f"support{n}@example.test"))
        with account.client(readonly=False) as client:
            for m in range(mails):
                client.append("INBOX", customer_mail(workers * 100_000 + n * 1000 + m)[2])
    requests_before = len(fake_jira.requests)
    total = links * mails
    logs = [open(tmp / f"{database}-worker-{w}.log", "w") for w in range(workers)]  # noqa: SIM115
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-m", "plugin.cli", "poll"], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=log) for log in logs]
    try:
        while (done := _logged(store)) < total:
            if any(p.poll() is not None for p in procs):
                raise SystemExit(f"a worker stopped early; see {tmp}")
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        for log in logs:
            log.close()
    finals = Counter(e.message_id for e in store.processing_log())
    created = len(fake_jira.requests) - requests_before
    if done != total or set(finals.values()) != {1} or created != total:
        raise SystemExit(f"{workers} workers: {done} log rows, {created} requests for {total} mails")
    store.engine.dispose()
    return elapsed


def _logged(store: Store) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(ProcessingLogRow)) or 0


def test_benchmark(postgres, dovecot, fake_jira, tmp_path, pytestconfig) -> None:
    links, mails = pytestconfig.workers_links, pytestconfig.workers_mails
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake Jira's line per call
    print(f"\n{links} links x {mails} new mails, PostgreSQL {postgres.host}:{postgres.port}, {os.cpu_count()} cores")
    seconds = {w: run_workers(w, links, mails, postgres, dovecot, fake_jira, tmp_path) for w in WORKER_COUNTS}
    for workers, elapsed in seconds.items():
        rate = links * mails / elapsed * 60
        print(f"{workers} worker{'s' if workers > 1 else ' '}: {elapsed:6.1f} s, {rate:7.0f} mails/min, "
              f"throughput {seconds[1] / elapsed:.2f}x one worker")
    print(f"goal: {GOAL}")
    if min(seconds[1] / elapsed for workers, elapsed in seconds.items() if workers > 1) <= 1.0:
        print(f"missed here: the workers share {os.cpu_count()} cores with PostgreSQL, Dovecot and a fake Jira "
              "that answers one call at a time, so they wait on the same resources: the ratio shows what sharing "
              "costs, not what parallel links gain against a Jira with network latency (not measured here)")


class _Options:
    """Hands the command line to the benchmark test."""

    def __init__(self, links: int, mails: int) -> None:
        self.links, self.mails = links, mails

    def pytest_configure(self, config: pytest.Config) -> None:
        config.workers_links, config.workers_mails = self.links, self.mails  # type: ignore[attr-defined]

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "setup" and report.skipped:
            print(f"benchmark cannot run: {report.longrepr}", file=sys.stderr)
            raise SystemExit(2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=6)
    parser.add_argument("--mails", type=int, default=100, help="new mails per link")
    args = parser.parse_args()
    return int(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider", "-p", "no:logging",
                            "-p", "tests.conftest", "--rootdir", str(REPO), "-W", "ignore"],
                           plugins=[_Options(args.links, args.mails)]))


if __name__ == "__main__":
    sys.exit(main())
