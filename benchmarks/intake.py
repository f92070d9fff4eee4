"""Intake throughput of `jsm-mail poll` against a Jira that answers every call after 50 ms, as a ratio to
the fewest calls a mail needs, measured over the same fake in the same run.

Usage: .venv/bin/python benchmarks/intake.py [--mails N] [--latency-ms MS]
A Maildir (not Dovecot: the mailbox is not what is measured, and Maildir starts instantly) gets N new
mails from N customers, polled until all are handled, then N replies to them, polled again. The
baseline is a tiny loop over the same fake Jira with the same latency: one customer call and one
create per new mail, one GET and one comment per reply. Prints mails/min, Jira calls per mail and
wall time as a ratio to the baseline for both phases; the goal is a ratio of at most 1.3x.
Exit status 1 when a phase misses it.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

# Run as a script, sys.path holds benchmarks/ only; the fake Jira lives in tests/ beside plugin/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plugin.domain import Link, MailProtocol, Secret, Security
from plugin.jira.rest import RestJira
from plugin.poll import poll_mailbox
from plugin.settings import Settings
from plugin.store.store import Store
from tests.fakes.jira import EMAIL_REQUEST_TYPE_ID, SERVICE_DESK_ID, FakeJira

GOAL_RATIO = 1.3
_ISSUE_OR_ID = re.compile(r"/[A-Z]+-\d+(?=/|$)")
SUPPORT = "support@example.test"


class SlowJira(FakeJira):
    """The contract-checking fake Jira, answering each call after a fixed network latency."""

    latency_s = 0.05

    def _dispatch(self, request: Request) -> Response:
        time.sleep(self.latency_s)
        return super()._dispatch(request)


def mail(n: int, prefix: str, in_reply_to: str | None = None, key: str = "") -> tuple[str, bytes]:
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <{prefix}{n}@example.org>"
    msg["To"] = SUPPORT
    msg["Subject"] = f"Re: [{key}] Printer {n} is offline" if in_reply_to else f"Printer {n} is offline"
    msg["Message-ID"] = make_msgid(idstring=f"{prefix}{n}{'r' if in_reply_to else ''}", domain="example.org")
    if in_reply_to:
        msg["In-Reply-To"] = msg["References"] = in_reply_to
        msg.set_content("It works again, thank you.\n\nAnn\n")
    else:
        msg.set_content(f"Hello,\n\nprinter {n} on floor 3 shows offline since this morning.\n\nAnn\n")
    return msg["Message-ID"], msg.as_bytes()


def deliver(folder: Path, mails: list[bytes], start: int) -> None:
    for n, data in enumerate(mails, start):
        (folder / "new" / f"{n:08d}.bench").write_bytes(data)  # names that sort in arrival order


def timed(jira: FakeJira, run: Callable[[], None]) -> tuple[float, Counter[str]]:
    before = len(jira.calls)
    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    return elapsed, Counter(f"{c.method} {_ISSUE_OR_ID.sub('/{id}', c.path)}" for c in jira.calls[before:])


def baseline_creates(jira: FakeJira, session: requests.Session, count: int) -> list[str]:
    keys = []
    for n in range(count):
        customer = session.post(f"{jira.url}/rest/servicedeskapi/customer",
                                json={"email": f"base{n}@example.org", "displayName": f"Customer {n}"})
        customer.raise_for_status()
        created = session.post(f"{jira.url}/rest/servicedeskapi/request", json={
            "serviceDeskId": SERVICE_DESK_ID, "requestTypeId": EMAIL_REQUEST_TYPE_ID,
            "raiseOnBehalfOf": customer.json()["accountId"],
            "requestFieldValues": {"summary": f"Printer {n} is offline", "description": "printer offline"}})
        created.raise_for_status()
        keys.append(created.json()["issueKey"])
    return keys


def baseline_comments(jira: FakeJira, session: requests.Session, keys: list[str]) -> None:
    for key in keys:
        session.get(f"{jira.url}/rest/servicedeskapi/request/{key}").raise_for_status()
        session.post(f"{jira.url}/rest/servicedeskapi/request/{key}/comment",
                     json={"body": "It works again, thank you.", "public": True}).raise_for_status()


def poll_until(link: Link, settings: Settings, store: Store, jira: RestJira, total: int) -> None:
    for _ in range(50):
        poll_mailbox(link, settings, store, jira)
        if len(store.processing_log(link=link.name, limit=total + 1)) >= total:
            return
    raise SystemExit("jsm-mail did not handle every mail in 50 rounds")


def report(phase: str, count: int, mine: tuple[float, Counter[str]], base: tuple[float, Counter[str]]) -> bool:
    (mine_s, mine_calls), (base_s, base_calls) = mine, base
    ratio = mine_s / base_s
    print(f"{phase}: jsm-mail {count / mine_s * 60:6.0f} mails/min, {sum(mine_calls.values()) / count:.2f} Jira "
          f"calls/mail; baseline {count / base_s * 60:6.0f} mails/min, {sum(base_calls.values()) / count:.2f} "
          f"calls/mail; wall time {ratio:.2f}x the baseline (goal <= {GOAL_RATIO}x)")
    print(f"  jsm-mail's calls: {', '.join(f'{k} x{v}' for k, v in mine_calls.most_common())}")
    return ratio <= GOAL_RATIO


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=50)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        jira = SlowJira(server)
        jira.latency_s = args.latency_ms / 1000
        with tempfile.TemporaryDirectory() as name:
            return run(jira, Path(name), args.mails, args.latency_ms)
    finally:
        server.clear()
        server.stop()


def run(jira: FakeJira, tmp: Path, count: int, latency_ms: float) -> int:
    settings = Settings.from_env({
        "JSM_MAIL_DATA_DIR": str(tmp / "var"), "JSM_MAIL_JIRA_URL": jira.url, "JSM_MAIL_JIRA_EMAIL": jira.email,
        "JSM_MAIL_JIRA_API_TOKEN": jira.api_token, "JSM_MAIL_JIRA_INDEX_LAG_S": "0",
        "JSM_MAIL_ENV_FILE": str(tmp / "no.env")})
    store = Store(settings)
    folder = tmp / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True)
    link = store.add_link(Link(
        id=0, name="bench", protocol=MailProtocol.MAILDIR, host=str(folder), port=0, security=Security.NONE,
        username=SUPPORT, password=Secret(""), folder="INBOX", service_desk_id=SERVICE_DESK_ID,
        request_type_id=EMAIL_REQUEST_TYPE_ID, address=SUPPORT, intake_per_minute=1_000_000))
    rest = RestJira(settings.jira_url, settings.jira_email, settings.jira_api_token, settings.jira_timeout_s)
    session = requests.Session()
    session.auth = (jira.email, jira.api_token)
    print(f"{count} new mails then {count} replies, Maildir, fake Jira answering after {latency_ms:g} ms")

    keys: list[str] = []
    base_new = timed(jira, lambda: keys.extend(baseline_creates(jira, session, count)))
    new = [mail(n, "cust") for n in range(count)]
    deliver(folder, [data for _, data in new], 0)
    mine_new = timed(jira, lambda: poll_until(link, settings, store, rest, count))
    ok = report("new mails", count, mine_new, base_new)

    base_replies = timed(jira, lambda: baseline_comments(jira, session, keys))
    issue_of = {r.summary: r.key for r in jira.requests}
    replies = [mail(n, "cust", message_id, issue_of[f"Printer {n} is offline"])[1]
               for n, (message_id, _) in enumerate(new)]
    deliver(folder, replies, count)
    mine_replies = timed(jira, lambda: poll_until(link, settings, store, rest, 2 * count))
    ok &= report("replies", count, mine_replies, base_replies)
    commented = sum(1 for r in jira.requests if any("It works again" in c.body for c in r.comments))
    if commented != 2 * count or jira.violations:
        print(f"wrong result: {commented} of {2 * count} requests commented; contract violations: "
              f"{jira.violations[:3]}")
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
