"""End to end: who may raise requests on a link, and the per-sender budget that stops a storm."""
from __future__ import annotations

from pathlib import Path

from plugin.replay import replay_file
from plugin.runtime import Runtime
from tests.conftest import mail_file

PROCESSED, REJECTED, SEEN = "jsm-processed", "jsm-rejected", "\\Seen"
ANN, BOB = "ann@example.org", "bob@example.net"


def customer_mail(sender: str, n: int) -> bytes:
    """A plain customer mail with its own subject and Message-ID, nothing automatic about it."""
    mail = mail_file("request_plain.eml").replace(b"ann@example.org", sender.encode())
    return (mail.replace(b"Subject: VPN drops every hour", b"Subject: Problem number %d" % n)
            .replace(b"<vpn-drops-1@", b"<problem-%d-%s@" % (n, sender.partition("@")[0].encode())))


def with_header(header: bytes) -> bytes:
    """The plain customer mail with one more header line on top."""
    return header + b"\n" + mail_file("request_plain.eml")


def uids_by_sender(mail_account) -> dict[str, list[int]]:
    """UIDs of the mailbox's mails by who wrote them, oldest first."""
    found: dict[str, list[int]] = {}
    for uid, _, data in mail_account.messages():
        sender = ANN if b"From: Ann Customer <ann@" in data else BOB
        found.setdefault(sender, []).append(uid)
    return found


def test_storm_from_one_sender_is_quarantined_after_the_budget(service, mail_account, fake_jira):
    service.relink(intake_per_minute=100)
    with mail_account.client(readonly=False) as client:
        for n in range(25):
            client.append("INBOX", customer_mail(ANN, n))
            if n % 2:
                client.append("INBOX", customer_mail(BOB, n))

    service.poll()

    reporters = [r.reporter_email for r in fake_jira.requests]
    assert reporters.count(ANN) == 20 and reporters.count(BOB) == 12
    assert [sender for _, sender, _ in service.store.quarantined()] == [ANN]
    ann_uids = uids_by_sender(mail_account)[ANN]
    assert all({SEEN, PROCESSED} <= mail_account.flags(uid) for uid in ann_uids[:20])
    assert all({SEEN, REJECTED} <= mail_account.flags(uid) for uid in ann_uids[20:])
    held = [e for e in service.log() if e.outcome == "rejected"]
    assert [e.reason for e in held] == ["sender-quarantined"] * 5
    assert [Path(e.raw_path).read_bytes() for e in held] == [customer_mail(ANN, n) for n in range(20, 25)]


def test_released_senders_held_mails_can_be_replayed_into_requests(service, mail_account, fake_jira):
    service.relink(sender_budget=2)
    with mail_account.client(readonly=False) as client:
        for n in range(4):
            client.append("INBOX", customer_mail(ANN, n))
    service.poll()
    held = [e for e in service.log() if e.reason == "sender-quarantined"]
    assert len(fake_jira.requests) == 2 and len(held) == 2

    assert service.store.release(service.link.id, ANN)
    runtime = Runtime(service.settings)
    replies = [replay_file(Path(e.raw_path), service.link, runtime, apply=True) for e in held]

    assert all(": created SD-" in reply for reply in replies), replies
    assert [r.summary for r in fake_jira.requests] == [f"Problem number {n}" for n in range(4)]


def test_released_senders_held_mails_put_back_unread_are_handled_at_the_next_poll(service, mail_account, fake_jira):
    service.relink(sender_budget=2)
    with mail_account.client(readonly=False) as client:
        for n in range(4):
            client.append("INBOX", customer_mail(ANN, n))
    service.poll()
    held = [uid for uid, flags, _ in mail_account.messages() if REJECTED in flags]

    service.store.release(service.link.id, ANN)
    with mail_account.client(readonly=False) as client:
        client.remove_flags(held, [SEEN, REJECTED])
    service.poll()

    assert len(fake_jira.requests) == 4
    assert all({SEEN, PROCESSED} <= mail_account.flags(uid) for uid in held)


def test_auto_reply_signals_of_an_allowlisted_domain_do_not_stop_a_request(service, mail_account, fake_jira):
    service.relink(autoreply_allow_domains=("example.org",))
    mail_account.append(with_header(b"Precedence: bulk"))
    mail_account.append(with_header(b"Auto-Submitted: auto-generated").replace(b"vpn-drops-1@", b"vpn-drops-9@"))

    service.poll()

    assert [r.reporter_email for r in fake_jira.requests] == [ANN, ANN]
    assert all(e.evidence.startswith("allowlisted domain example.org; ignored ") for e in service.log())


def test_auto_reply_signals_of_other_domains_are_ignored(service, mail_account, fake_jira):
    service.relink(autoreply_allow_domains=("example.com",))
    mail_account.append(with_header(b"Precedence: bulk"))

    service.poll()

    assert fake_jira.requests == [] and service.log()[0].outcome == "ignored"


def test_mail_from_a_blocked_domain_is_rejected_and_kept(service, mail_account, fake_jira):
    service.relink(blocked_domains=("example.org",))
    uid = mail_account.append(mail_file("request_plain.eml"))

    service.poll()

    assert fake_jira.requests == []
    assert mail_account.flags(uid) >= {SEEN, REJECTED}
    [entry] = service.log()
    assert (entry.outcome, entry.reason) == ("rejected", "sender-not-allowed")
    assert Path(entry.raw_path).read_bytes() == mail_file("request_plain.eml")


def test_mail_without_to_or_cc_is_rejected(service, mail_account, fake_jira):
    uid = mail_account.append(mail_file("invalid_no_recipients.eml"))

    service.poll()

    assert fake_jira.requests == [] and mail_account.flags(uid) >= {SEEN, REJECTED}
    assert [(e.outcome, e.reason) for e in service.log()] == [("rejected", "missing-to")]
