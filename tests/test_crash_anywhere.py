"""Crash anywhere: `jsm-mail poll` killed with SIGKILL at random moments over a mailbox of mixed mail and
agents' answers waiting to be mailed, restarted each time, until the mailbox and the outbox are done; then
every mail is in exactly one final state and every answer reached the SMTP server once.

The suite runs a short version; `benchmarks/crash_faults.py` runs it with hundreds of kills
(JSM_MAIL_CRASH_KILLS) and prints the counts.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from plugin.store.outbox import SENT, Outbox
from tests.conftest import mail_file

KILLS = int(os.environ.get("JSM_MAIL_CRASH_KILLS", "12"))
REPORT = os.environ.get("JSM_MAIL_CRASH_REPORT")  # where the benchmark wants the counts
NEW, REPLIES, AUTO_REPLIES = max(16, 4 * KILLS), max(8, KILLS), 4  # enough work to kill it that often
MAX_SIZE_BYTES = 200_000
FINAL = {"created", "commented", "bounce-recorded", "ignored", "rejected"}
SENDING_STALE_S = 3  # a mail left "sending" by a killed poll is taken up again after this (local SMTP: ms)


def customer_mail(n: int, *, reply_to: str | None = None, japanese: bool = False,
                  attachment: bool = False) -> tuple[str, str, bytes]:
    """(Message-ID, token in its text, bytes)."""
    token = f"tok{n:04d}"
    msg = EmailMessage()
    msg["From"] = f"Customer {n % 50} <customer{n % 50}@example.org>"  # within the 20 per sender budget
    msg["To"] = "support@example.test"
    subject = f"経費精算 {n}" if japanese else f"Case {n}"
    msg["Subject"] = f"Re: {subject}" if reply_to else subject
    msg["Message-ID"] = make_msgid(idstring=f"case-{n}", domain="example.org")
    if reply_to:
        msg["In-Reply-To"] = msg["References"] = reply_to
    if japanese:
        msg.set_content(f"お世話になっております。{token} ログインできません。", charset="iso-2022-jp")
    else:
        msg.set_content(f"Please help with {token}.")
    if attachment:
        msg.add_attachment(f"log {token}".encode(), maintype="text", subtype="plain", filename=f"{token}.log")
    return msg["Message-ID"], token, msg.as_bytes()


def mixed_mailbox(mail_account) -> dict[str, dict]:
    """Append the mix; returns what each mail must end as, by Message-ID."""
    expect: dict[str, dict] = {}
    parents = []
    for n in range(NEW):
        message_id, token, data = customer_mail(n, japanese=n % 4 == 0, attachment=n % 3 == 0)
        mail_account.append(data)
        parents.append(message_id)
        expect[message_id] = {"outcome": "created", "token": token, "files": 1 if n % 3 == 0 else 0}
    for n in range(REPLIES):
        message_id, token, data = customer_mail(10_000 + n, reply_to=parents[n])
        mail_account.append(data)
        expect[message_id] = {"outcome": "commented", "token": token, "parent": parents[n]}
    mail_account.append(mail_file("request_plain.eml"))
    expect["<vpn-drops-1@example.org>"] = {"outcome": "created", "token": "Monday", "files": 0}
    mail_account.append(mail_file("bounce_dsn_of_request_mail.eml"))
    expect["<bounce-vpn-drops-1@mx.example.org>"] = {"outcome": "bounce-recorded"}
    for name in ("autoreply_outlook_oof_en.eml", "autoreply_outlook_oof_ja.eml", "autoreply_rfc3834_vacation.eml",
                 "autoreply_german_abwesenheit.eml")[:AUTO_REPLIES]:
        mail_account.append(mail_file(name))
    big_id, _, big = customer_mail(99_999)
    mail_account.append(big.replace(b"Please help", b"x" * (MAX_SIZE_BYTES + 10_000) + b"\nPlease help"))
    expect[big_id] = {"outcome": "rejected"}
    return expect


def answer_new_requests(fake_jira, answered: dict[str, str]) -> None:
    """An agent answers each request made by mail since the last look; the answer carries its own token.
    (The VPN request's customer bounced, so an answer to it is rightly not mailed.)"""
    for request in fake_jira.requests:
        if request.key not in answered and "tok" in request.description:
            token = f"answ{len(answered):04d}"
            fake_jira.add_agent_comment(request.key, f"We are on it: {token}.")
            answered[request.key] = token


def test_killed_at_random_moments_every_mail_ends_once(env, sending, mail_account, fake_jira, smtp_sink,
                                                      tmp_path):
    service = sending
    service.relink(max_size_bytes=MAX_SIZE_BYTES, intake_per_minute=10_000, max_mails_per_minute=10_000)
    env = {**env, "JSM_MAIL_SENDING_STALE_S": str(SENDING_STALE_S)}
    expect = mixed_mailbox(mail_account)
    chance = random.Random(int(os.environ.get("JSM_MAIL_CRASH_SEED", "7")))
    answered: dict[str, str] = {}
    kills = runs = 0
    started = time.monotonic()
    while True:
        runs += 1
        answer_new_requests(fake_jira, answered)
        with (tmp_path / "poll.log").open("a") as poll_log:  # a pipe nobody reads would block a long poll
            poll = subprocess.Popen([sys.executable, "-m", "plugin.cli", "poll", "--once"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=poll_log)
        if kills < KILLS:
            try:
                poll.wait(timeout=chance.uniform(0.3, 1.5))
            except subprocess.TimeoutExpired:
                poll.send_signal(signal.SIGKILL)
                kills += 1
        poll.wait(timeout=900)  # one poll after the last kill does what is left, on a busy machine
        unlabelled = [uid for uid, flags, _ in mail_account.messages() if not flags & {"jsm-processed", "jsm-rejected"}]
        outbox = Outbox(service.store).entries()
        unsent = [(e.comment_id, e.state, e.attempts, e.last_error, e.sending_since) for e in outbox if e.state != SENT]
        if not unlabelled and poll.returncode == 0 and not unsent and len(outbox) == len(answered) and all(
                r.key in answered for r in fake_jira.requests if "tok" in r.description):
            break
        if kills >= KILLS and unsent and not unlabelled:
            time.sleep(SENDING_STALE_S / 3)  # a mail the last kill left "sending" waits to be taken up again
        assert runs < KILLS * 3 + 40, f"after {runs} runs: unlabelled {unlabelled}, unsent comments {unsent}"

    # Outbound: each answer mailed once, to its customer.
    mailed = Counter(token for m in smtp_sink.messages
                     for token in _tokens(m.message.get_body(("plain",)).get_content(), "answ0"))
    out_doubled = sum(n - 1 for n in mailed.values())
    out_missing = sum(mailed[token] == 0 for token in answered.values())
    # Jira: each request once, each comment once, each file once; counted first, so a report shows them.
    texts = [t for r in fake_jira.requests
             for t in [r.description, *(c.body for c in r.comments if " wrote:" in c.body)]]
    tokens = [e["token"] for e in expect.values() if "token" in e and e["token"].startswith("tok")]
    by_token = Counter(token for text in texts for token in _tokens(text))
    files = Counter(a.filename for r in fake_jira.requests for a in r.attachments)
    flags = [f for _, f, _ in mail_account.messages()]
    finals = Counter(e.message_id for e in service.log() if e.outcome in FINAL)
    requests = sum(e["outcome"] == "created" for e in expect.values())
    doubled = (sum(n - 1 for n in by_token.values()) + sum(n - 1 for n in files.values())
               + sum(n - 1 for n in finals.values()) + max(0, len(fake_jira.requests) - requests))
    missing = (sum(by_token[t] == 0 for t in tokens) + sum(not {"\\Seen"} <= f for f in flags)
               + max(0, len(flags) - len(finals)) + max(0, requests - len(fake_jira.requests)))
    if REPORT:
        Path(REPORT).write_text(json.dumps({
            "kills": kills, "runs": runs, "mails": len(flags), "requests": len(fake_jira.requests),
            "doubled": doubled, "missing": missing, "answers": len(answered), "mailed": len(smtp_sink.messages),
            "out_doubled": out_doubled, "out_missing": out_missing,
            "seconds": round(time.monotonic() - started, 1)}))

    assert (doubled, missing) == (0, 0)
    assert (out_doubled, out_missing) == (0, 0)
    assert len(smtp_sink.messages) == len(answered) == requests - 1
    assert len(fake_jira.requests) == requests
    assert {t: by_token[t] for t in tokens} == dict.fromkeys(tokens, 1)
    assert len(files) == sum(e.get("files", 0) for e in expect.values())
    [vpn] = [r for r in fake_jira.requests if r.summary == "VPN drops every hour"]
    assert len([c for c in vpn.comments if not c.public]) == 1  # the bounce note, once
    outcomes = {f"<{e.message_id}>": e.outcome for e in service.log() if e.outcome in FINAL}
    assert {m: outcomes.get(m) for m in expect} == {m: e["outcome"] for m, e in expect.items()}


def _tokens(text: str, prefix: str = "tok") -> set[str]:
    return {word for word in text.replace(".", " ").replace("。", " ").split() if word.startswith(prefix)}


def test_harness_mail_mix_is_what_the_product_sees(service, mail_account, fake_jira):
    """The mix is read as intended: the reply threads, the bounce is recorded, the big one rejected."""
    service.relink(max_size_bytes=MAX_SIZE_BYTES, intake_per_minute=10_000)
    expect = mixed_mailbox(mail_account)
    service.poll()
    outcomes = {f"<{e.message_id}>": e.outcome for e in service.log()}
    assert {m: outcomes.get(m) for m in expect} == {m: e["outcome"] for m, e in expect.items()}
