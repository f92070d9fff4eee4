"""End to end: mail APPENDed to a real Dovecot, one poll, the result in the fake Jira and the mailbox."""
from __future__ import annotations

import hashlib
import re
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from plugin.domain import Access, MailProtocol, Security
from plugin.poll import poll_mailbox
from plugin.store.models import LedgerRow
from tests.conftest import mail_file
from tests.fakes.dovecot import MailAccount

PROCESSED, REJECTED, SEEN = "jsm-processed", "jsm-rejected", "\\Seen"


def test_new_mail_becomes_request_with_decoded_fields(service, mail_account, fake_jira):
    uid = mail_account.append(mail_file("request_japanese_outlook.eml"))

    service.poll()

    [request] = fake_jira.requests
    assert request.summary == "経費精算システムにログインできません"
    body, reference = request.description.split("\n\n{color:#97a0af}Mail reference: ")
    assert body == ("お世話になっております。\n経費精算システムにログインできません。\n"
                    "\\*至急\\* ご確認ください \\{エラー: 401\\}")
    assert re.fullmatch(r"jsm[0-9a-f]{24}\{color\}", reference)
    assert request.reporter_email == "taro.yamada@example.jp"
    assert request.participant_emails == ["hanako.sato@example.jp"]
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}
    [entry] = service.log()
    assert (entry.outcome, entry.issue_key, entry.reason) == ("created", request.key, None)
    assert entry.message_id == "TYAPR01MB1234ABCD@TYAPR01MB1234.jpnprd01.prod.outlook.com"


def test_attachments_and_inline_images_are_attached_to_the_request(service, mail_account, fake_jira):
    mail_account.append(mail_file("request_with_attachment_and_inline_image.eml"))

    service.poll()

    [request] = fake_jira.requests
    attached = {a.filename: hashlib.md5(a.data).hexdigest() for a in request.attachments}
    assert set(attached) == {"screenshot.png", "invoice-117.pdf"}
    assert attached["invoice-117.pdf"] == hashlib.md5(b"%PDF-1.4\n%test invoice\n").hexdigest()
    assert "The total on the attached invoice is wrong." in request.description


def test_unknown_sender_becomes_a_customer_on_an_open_link(service, mail_account, fake_jira):
    mail_account.append(mail_file("request_plain.eml"))

    service.poll()

    assert "ann@example.org" in fake_jira.customers
    assert fake_jira.requests[0].reporter_email == "ann@example.org"


def test_customers_only_link_rejects_unknown_sender(service, mail_account, fake_jira):
    service.relink(access=Access.CUSTOMERS_ONLY)
    uid = mail_account.append(mail_file("request_plain.eml"))

    service.poll()

    assert fake_jira.requests == []
    assert mail_account.flags(uid) >= {SEEN, REJECTED}
    [entry] = service.log()
    assert (entry.outcome, entry.reason) == ("rejected", "sender-not-customer")
    assert "ann@example.org" in entry.detail


def test_customers_only_link_accepts_existing_customer(service, mail_account, fake_jira):
    service.relink(access=Access.CUSTOMERS_ONLY)
    fake_jira.add_customer("ann@example.org", "Ann Customer")
    mail_account.append(mail_file("request_plain.eml"))

    service.poll()

    assert [r.reporter_email for r in fake_jira.requests] == ["ann@example.org"]


def test_second_poll_changes_nothing(service, mail_account, fake_jira):
    mail_account.append(mail_file("request_plain.eml"))
    service.poll()

    report = service.poll()

    assert len(fake_jira.requests) == 1 and not report.outcomes


def test_mail_whose_label_was_lost_is_labelled_not_duplicated(service, mail_account, fake_jira):
    uid = mail_account.append(mail_file("request_plain.eml"))
    service.poll()
    with mail_account.client(readonly=False) as client:
        client.remove_flags([uid], [SEEN, PROCESSED])

    service.poll()

    assert len(fake_jira.requests) == 1
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}
    assert [e.outcome for e in service.log()] == ["created"]  # one row per handled mail


def test_jira_outage_leaves_mail_untouched_then_creates_exactly_one_request(service, mail_account, fake_jira):
    uid = mail_account.append(mail_file("request_plain.eml"))
    fake_jira.start_outage(503)

    service.poll()

    assert mail_account.flags(uid) == set()
    assert service.log()[-1].outcome == "waiting-retry"
    assert service.log()[-1].message_id == "vpn-drops-1@example.org"

    fake_jira.end_outage()
    service.poll()

    assert len(fake_jira.requests) == 1
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}


def test_rate_limit_on_create_is_retried_later_without_duplicates(service, mail_account, fake_jira):
    uid = mail_account.append(mail_file("request_plain.eml"))
    fake_jira.fail_next(1, status=429, retry_after=1, path=r"/rest/servicedeskapi/request$", method="POST")

    report = service.poll()

    assert report.outcomes["waiting-retry"] == 1 and mail_account.flags(uid) == set()
    time.sleep(1.2)  # the Retry-After Jira asked for
    service.poll()
    assert len(fake_jira.requests) == 1


def test_too_large_mail_is_rejected_without_download(service, mail_account, fake_jira):
    service.relink(max_size_bytes=2000)
    uid = mail_account.append(mail_file("request_plain.eml").replace(b"hour.", b"hour." + b" padding" * 500))

    service.poll()

    assert fake_jira.requests == []
    assert mail_account.flags(uid) >= {SEEN, REJECTED}
    [entry] = service.log()
    assert entry.reason == "too-large" and "is over the 2.0 kB limit" in entry.detail
    assert (entry.sender, entry.subject) == ("ann@example.org", "VPN drops every hour")


def test_mail_without_from_is_rejected_and_kept(service, mail_account, fake_jira):
    uid = mail_account.append(mail_file("invalid_no_from.eml"))

    service.poll()

    assert fake_jira.requests == []
    assert mail_account.flags(uid) >= {SEEN, REJECTED}
    [entry] = service.log()
    assert entry.reason == "missing-from"
    assert entry.raw_path
    assert Path(entry.raw_path).read_bytes() == mail_file("invalid_no_from.eml")


def test_mail_without_recipients_is_rejected(service, mail_account, fake_jira):
    mail_account.append(mail_file("invalid_no_recipients.eml"))

    service.poll()

    assert fake_jira.requests == [] and service.log()[0].reason == "missing-to"


def test_bytes_that_are_not_a_mail_are_rejected_as_malformed(service, mail_account, fake_jira):
    uid = mail_account.append(b"\x00\x01\x02\xff\xfe binary garbage \x00\r\n")

    service.poll()

    assert fake_jira.requests == []
    assert mail_account.flags(uid) >= {SEEN, REJECTED}
    assert service.log()[0].reason == "malformed"


def test_auto_reply_is_labelled_processed_and_ignored(service, mail_account, fake_jira):
    uid = mail_account.append(mail_file("autoreply_outlook_oof_ja.eml"))

    service.poll()

    assert fake_jira.requests == []
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}
    [entry] = service.log()
    assert entry.outcome == "ignored" and entry.evidence


def test_custom_labels_are_used(service, mail_account):
    service.relink(processed_label="Jira-Done", rejected_label="Jira-Rejected")
    ok = mail_account.append(mail_file("request_plain.eml"))
    bad = mail_account.append(mail_file("invalid_no_from.eml"))

    service.poll()

    assert "Jira-Done" in mail_account.flags(ok) and "Jira-Rejected" in mail_account.flags(bad)


def test_pop3_mail_is_deleted_only_after_the_request_exists(service, mail_account, fake_jira):
    service.relink(protocol=MailProtocol.POP3, port=mail_account.pop3_port, security=Security.NONE)
    mail_account.append(mail_file("request_plain.eml"))
    fake_jira.start_outage(503)

    service.poll()

    assert len(mail_account.messages()) == 1
    fake_jira.end_outage()
    service.poll()
    assert len(fake_jira.requests) == 1 and mail_account.messages() == []


def test_imap_over_tls_with_the_servers_certificate(service, mail_account, fake_jira, settings):
    service.settings = settings.with_(ca_file=mail_account.cafile)
    service.relink(port=mail_account.imaps_port, security=Security.SSL)
    mail_account.append(mail_file("request_plain.eml"))

    service.poll()

    assert len(fake_jira.requests) == 1


def test_retry_after_from_jira_reaches_the_scheduler(service, mail_account, fake_jira):
    mail_account.append(mail_file("request_plain.eml"))
    fake_jira.fail_next(1, status=429, retry_after=120, path=r"/rest/servicedeskapi/request$", method="POST")

    report = service.poll()

    assert report.retry_after_s == 120


def test_an_outage_is_one_error_log_row_not_one_per_poll(service, mail_account, settings):
    service.relink(port=1)  # nothing listens there

    service.poll()
    service.poll()

    [error] = service.store.error_log()
    assert "refused the connection" in error.summary


def test_mail_that_keeps_hitting_a_bug_is_given_up_after_max_attempts(service, mail_account, fake_jira,
                                                                      monkeypatch):
    from plugin.domain import NewRequest
    from plugin.handlers import HANDLERS

    def broken(route, raw, ctx):
        raise RuntimeError("simulated bug")

    # Last resort: no real input reaches a bug on purpose, so one handler is made to fail.
    monkeypatch.setattr(HANDLERS[NewRequest], "apply", broken)
    service.settings = service.settings.with_(max_attempts=2)
    uid = mail_account.append(mail_file("request_plain.eml"))

    service.poll()
    service.poll()
    assert mail_account.flags(uid) == set()  # still waiting while attempts remain
    [error] = service.store.error_log()
    assert "simulated bug" in error.summary and error.message_id == "vpn-drops-1@example.org"

    service.poll()

    assert mail_account.flags(uid) >= {SEEN, REJECTED}
    entry = service.log()[-1]
    assert (entry.outcome, entry.reason) == ("failed", "internal-error")
    assert entry.raw_path is not None


def test_too_large_pop3_mail_stays_on_the_server_and_is_logged_once(service, mail_account, fake_jira):
    service.relink(protocol=MailProtocol.POP3, port=mail_account.pop3_port, security=Security.NONE,
                   max_size_bytes=2000)
    mail_account.append(mail_file("request_plain.eml").replace(b"hour.", b"hour." + b" padding" * 500))

    service.poll()
    service.poll()

    assert fake_jira.requests == [] and len(mail_account.messages()) == 1
    [entry] = service.log()
    assert (entry.reason, entry.sender, entry.subject) == ("too-large", "ann@example.org", "VPN drops every hour")


def test_intake_limit_leaves_the_newest_mail_for_later_rounds(service, mail_account, fake_jira):
    service.relink(intake_per_minute=3)
    uids = [mail_account.append(mail_file("request_plain.eml").replace(b"vpn-drops-1@", f"vpn-{n}@".encode()))
            for n in range(5)]

    first = service.poll()
    second = service.poll()

    assert first.outcomes["created"] == 3 and first.waiting == 2 and "2 more wait" in str(first)
    assert [bool(mail_account.flags(uid)) for uid in uids] == [True, True, True, False, False]
    assert second.outcomes == {} and second.waiting == 2  # the minute's budget is spent
    with service.store.session() as s, s.begin():  # a minute later
        s.execute(update(LedgerRow).values(finished_at=LedgerRow.finished_at - timedelta(minutes=2)))
    service.poll()
    assert len(fake_jira.requests) == 5 and all(mail_account.flags(uid) for uid in uids)


def test_a_rate_limit_holds_every_link_of_the_site_not_just_the_mail(service, mail_account, dovecot, fake_jira):
    other = MailAccount(dovecot, "sales@example.test", dovecot.password_for("sales@example.test"))
    sales = service.store.add_link(other.link(name="sales", address="sales@example.test"))
    first = mail_account.append(mail_file("request_plain.eml"))
    second = other.append(mail_file("request_plain.eml").replace(b"vpn-drops-1@", b"vpn-drops-2@"))
    fake_jira.fail_next(status=429, retry_after=120, path="/rest/servicedeskapi/request", method="POST")

    report = service.poll()
    calls = len(fake_jira.calls)
    held = poll_mailbox(sales, service.settings, service.store, service.jira)

    assert report.outcomes["waiting-retry"] == 1 and 100 < report.retry_after_s <= 120
    assert held.outcomes["waiting-retry"] == 1 and 100 < held.retry_after_s <= 120
    assert len(fake_jira.calls) == calls  # Jira is left alone until its Retry-After has passed
    assert mail_account.flags(first) == other.flags(second) == set()


def test_an_attachment_jira_refuses_leaves_the_request_and_says_why(service, mail_account, fake_jira):
    uid = mail_account.append(mail_file("request_with_attachment_and_inline_image.eml"))
    fake_jira.fail_next(status=413, path=r"/rest/servicedeskapi/servicedesk/1/attachTemporaryFile", method="POST")

    service.poll()

    [request] = fake_jira.requests
    assert mail_account.flags(uid) >= {SEEN, PROCESSED}
    [entry] = service.log()
    assert (entry.outcome, entry.issue_key) == ("created", request.key)
    assert "attachments not added: Jira refused" in entry.detail
