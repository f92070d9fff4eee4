"""Which comments are mailed, to whom, and what happens when the mail server is down or refuses."""
from __future__ import annotations

import dataclasses
import re
import time
from datetime import timedelta

from plugin.domain import Secret, Security
from plugin.parse.charsets import decode_text
from plugin.store.outbox import Outbox
from tests.conftest import mail_file
from tests.fakes.smtp import _free_port


def first_mail(sending, mail_account, fake_jira, name: str = "request_plain.eml"):
    """A request raised by mail, and its mail already handled."""
    mail_account.append(mail_file(name))
    sending.poll()
    return fake_jira.requests[-1]


def test_internal_comment_is_never_mailed(sending, mail_account, fake_jira, smtp_sink):
    request = first_mail(sending, mail_account, fake_jira)
    fake_jira.add_agent_comment(request.key, "Customer sounds annoyed; escalate.", public=False)

    report = sending.poll()

    assert smtp_sink.messages == [] and Outbox(sending.store).entries() == []
    assert report.outbound.sent == 0


def test_comments_jsm_mail_wrote_are_never_mailed_back(sending, mail_account, fake_jira, smtp_sink):
    request = first_mail(sending, mail_account, fake_jira)
    fake_jira.add_comment(request.key, "written by the API user")  # the account jsm-mail calls Jira as
    fake_jira.add_agent_comment(request.key, "a customer's mail, added through the platform API",
                                author_email="someone.else@example.com",
                                properties={"jsm-mail": {"ledger": "reply-1@example.org"}})

    sending.poll()

    assert smtp_sink.messages == [] and Outbox(sending.store).entries() == []


def test_comments_from_before_the_link_existed_are_never_mailed(sending, mail_account, fake_jira, smtp_sink):
    request = first_mail(sending, mail_account, fake_jira)
    old = fake_jira.add_agent_comment(request.key, "an answer from before the mailbox was linked")
    old.created -= timedelta(hours=1)
    fake_jira.add_agent_comment(request.key, "a new answer")

    sending.poll()

    [mail] = [m.message for m in smtp_sink.messages]
    assert "a new answer" in mail.get_body(("plain",)).get_content()


def test_participants_are_copied_but_never_our_own_or_bounced_addresses(sending, mail_account, fake_jira, smtp_sink):
    request = fake_jira.add_request("Printer jams", reporter_email="ann@example.org",
                                    participants=("bob@example.org", "support@example.test", "gone@example.org"))
    Outbox(sending.store).mark_undeliverable("gone@example.org", "5.1.1", request.key)
    fake_jira.add_agent_comment(request.key, "A technician comes at 3 pm.")

    sending.poll()

    [delivered] = smtp_sink.messages
    mail = delivered.message
    assert sorted(delivered.rcpt_tos) == ["ann@example.org", "bob@example.org"]
    assert (mail["To"], mail["Cc"]) == ("ann <ann@example.org>", "bob <bob@example.org>")
    assert mail["In-Reply-To"] is None  # the request came from the portal: no mail to answer
    [row] = [e for e in sending.log() if e.outcome == "sent"]
    assert "gone@example.org (marked undeliverable by a bounce)" in row.detail
    assert "support@example.test (our own address)" in row.detail


def test_a_permanent_refusal_of_a_participant_is_noted_for_agents(sending, mail_account, fake_jira, smtp_sink):
    request = fake_jira.add_request("Printer jams", reporter_email="ann@example.org",
                                    participants=("nobody@example.org",))
    smtp_sink.refused_recipients["nobody@example.org"] = "550 5.1.1 <nobody@example.org>: no such user"
    fake_jira.add_agent_comment(request.key, "A technician comes at 3 pm.")

    sending.poll()

    [delivered] = smtp_sink.messages
    assert delivered.rcpt_tos == ("ann@example.org",)
    [note] = [c for c in request.comments if not c.public]
    assert "nobody@example.org (550 5.1.1 <nobody@example.org>: no such user)" in note.body
    assert sending.store.is_undeliverable("nobody@example.org")
    assert Outbox(sending.store).entries()[0].state == "sent"


def test_mail_waits_while_smtp_is_down_and_is_sent_once_when_it_is_back(sending, mail_account, fake_jira,
                                                                        smtp_sink):
    sending.settings = dataclasses.replace(sending.settings, poll_interval_s=1)  # retry every round
    up = sending.link
    sending.relink(smtp_port=_free_port())  # nothing listens there
    request = first_mail(sending, mail_account, fake_jira)
    fake_jira.add_agent_comment(request.key, "Please restart the VPN client.")

    down = [sending.poll() for _ in range(3) if not time.sleep(1.1)]

    assert all(r.outbound.waiting == 1 and "refused the connection" in r.outbound.error for r in down)
    assert [e.summary for e in sending.store.error_log()] == [f"RetryLater: {down[0].outbound.error}"]
    sending.relink(smtp_port=up.smtp_port)
    time.sleep(1.1)
    sending.poll()
    sending.poll()
    assert len(smtp_sink.messages) == 1
    [entry] = Outbox(sending.store).entries()
    assert (entry.state, entry.attempts) == ("sent", 4)


def test_a_temporary_refusal_of_the_mail_is_retried(sending, mail_account, fake_jira, smtp_sink):
    sending.settings = dataclasses.replace(sending.settings, poll_interval_s=1)
    request = first_mail(sending, mail_account, fake_jira)
    fake_jira.add_agent_comment(request.key, "Please restart the VPN client.")
    smtp_sink.data_reply = "451 4.3.0 Mail server temporarily rejected message"

    report = sending.poll()
    smtp_sink.data_reply = None
    time.sleep(1.1)
    sending.poll()

    assert "451" in report.outbound.error
    assert len(smtp_sink.messages) == 1


def test_a_permanent_refusal_of_the_mail_is_logged_and_noted(sending, mail_account, fake_jira, smtp_sink):
    request = first_mail(sending, mail_account, fake_jira)
    fake_jira.add_agent_comment(request.key, "Please restart the VPN client.")
    smtp_sink.data_reply = "554 5.7.1 Message rejected as spam"

    sending.poll()
    smtp_sink.data_reply = None
    sending.poll()

    assert smtp_sink.messages == []
    [row] = [e for e in sending.log() if e.outcome == "send-failed"]
    assert (row.reason, row.issue_key) == ("refused", request.key)
    assert "554 5.7.1 Message rejected as spam" in row.detail
    assert any("554 5.7.1" in c.body for c in request.comments if not c.public)


def test_at_most_the_links_mails_per_minute_the_rest_wait(sending, mail_account, fake_jira, smtp_sink):
    sending.relink(max_mails_per_minute=2)
    request = first_mail(sending, mail_account, fake_jira)
    for n in range(3):
        fake_jira.add_agent_comment(request.key, f"answer {n}")

    report = sending.poll()

    assert (report.outbound.sent, report.outbound.waiting) == (2, 1)
    assert len(smtp_sink.messages) == 2
    assert [e.state for e in Outbox(sending.store).entries()] == ["sent", "sent", "queued"]


def test_a_recent_auto_replier_is_not_mailed(sending, mail_account, fake_jira, smtp_sink):
    request = first_mail(sending, mail_account, fake_jira)
    fake_jira.add_agent_comment(request.key, "first answer")
    sending.poll()
    [ours] = [m.message for m in smtp_sink.messages]
    mail_account.append(auto_reply_to(ours))
    sending.poll()
    fake_jira.add_agent_comment(request.key, "second answer")

    sending.poll()

    assert len(smtp_sink.messages) == 1
    [failed] = [e for e in sending.log() if e.outcome == "send-failed"]
    assert failed.reason == "no-recipient"
    assert "ann@example.org (sent us an auto-reply within the last day)" in failed.detail
    assert any("was not mailed" in c.body for c in request.comments if not c.public)


def test_an_auto_reply_about_one_request_does_not_silence_another(sending, mail_account, fake_jira, smtp_sink):
    request = first_mail(sending, mail_account, fake_jira)
    mail_account.append(mail_file("request_plain.eml").replace(b"vpn-drops-1@", b"vpn-drops-2@")
                        .replace(b"VPN drops every hour", b"Printer jams"))
    sending.poll()
    other = fake_jira.requests[-1]
    fake_jira.add_agent_comment(request.key, "first answer")
    sending.poll()
    mail_account.append(auto_reply_to(smtp_sink.messages[0].message))
    sending.poll()

    fake_jira.add_agent_comment(other.key, "an answer about the printer")
    sending.poll()

    assert len(smtp_sink.messages) == 2
    assert f"[{other.key}]" in smtp_sink.messages[1].message["Subject"]
    [oof] = [e for e in sending.log() if e.message_id == "oof-1@example.org"]
    assert (oof.outcome, oof.issue_key) == ("ignored", request.key)


def auto_reply_to(mail) -> bytes:
    return (f"From: Ann Customer <ann@example.org>\r\nTo: {mail['From']}\r\nSubject: Automatic reply: "
            f"{mail['Subject']}\r\nMessage-ID: <oof-1@example.org>\r\nIn-Reply-To: {mail['Message-ID']}\r\n"
            "Auto-Submitted: auto-replied\r\nDate: Tue, 06 Jan 2026 12:00:00 +0000\r\n\r\n"
            "I am out of the office until Monday.\r\n").encode()


def test_an_auto_reply_to_our_mail_becomes_no_comment_and_no_mail(sending, mail_account, fake_jira, smtp_sink):
    request = first_mail(sending, mail_account, fake_jira)
    fake_jira.add_agent_comment(request.key, "first answer")
    sending.poll()
    [ours] = [m.message for m in smtp_sink.messages]
    comments_before = len(request.comments)

    mail_account.append(auto_reply_to(ours))
    sending.poll()
    sending.poll()

    assert len(request.comments) == comments_before
    assert len(smtp_sink.messages) == 1
    [row] = [e for e in sending.log() if e.message_id == "oof-1@example.org"]
    assert row.outcome == "ignored"


def test_a_file_over_the_size_cap_is_named_with_a_link(sending, mail_account, fake_jira, smtp_sink):
    sending.relink(max_attachment_bytes=1000)
    request = first_mail(sending, mail_account, fake_jira)
    fake_jira.add_agent_comment(request.key, "Two files.", files=(("small.txt", b"small", "text/plain"),
                                                                  ("big.bin", b"x" * 5000, "application/zip")))

    sending.poll()

    mail = smtp_sink.messages[0].message
    assert [a.get_filename() for a in mail.iter_attachments()] == ["small.txt"]
    text = mail.get_body(("plain",)).get_content()
    assert "big.bin (4 kB, too large to attach): http" in text
    assert "/rest/api/2/attachment/content/" in text


def test_japanese_is_utf8_with_encoded_word_subject_by_default(sending, mail_account, fake_jira, smtp_sink):
    request = first_mail(sending, mail_account, fake_jira, "request_japanese_outlook.eml")
    fake_jira.add_agent_comment(request.key, "ご不便をおかけしております。①の手順で再設定してください。")

    sending.poll()

    raw = smtp_sink.messages[0].data
    assert re.search(rb"Subject: \[SD-1\] =\?utf-8\?b\?", raw)
    mail = smtp_sink.messages[0].message
    assert mail["Subject"] == f"[{request.key}] 経費精算システムにログインできません"
    assert mail.get_body(("plain",)).get_content_charset() == "utf-8"
    assert "①の手順で再設定してください" in mail.get_body(("plain",)).get_content()
    assert sorted(smtp_sink.messages[0].rcpt_tos) == ["hanako.sato@example.jp", "taro.yamada@example.jp"]


def test_iso_2022_jp_option_sends_cp50220_with_nec_characters(sending, mail_account, fake_jira, smtp_sink):
    sending.relink(outbound_charset="iso-2022-jp")
    request = first_mail(sending, mail_account, fake_jira, "request_japanese_outlook.eml")
    fake_jira.add_agent_comment(request.key, "①の手順で㈱の設定を再設定してください。ｶﾀｶﾅ")

    sending.poll()

    raw = smtp_sink.messages[0].data
    assert b"Subject: =?ISO-2022-JP?B?" in raw
    assert raw.isascii()
    mail = smtp_sink.messages[0].message
    assert mail["Subject"] == f"[{request.key}] 経費精算システムにログインできません"
    plain = mail.get_body(("plain",))
    assert plain.get_content_charset() == "iso-2022-jp" and plain["Content-Transfer-Encoding"] == "7bit"
    text = decode_text(plain.get_payload(decode=True), "iso-2022-jp").text
    assert "①の手順で㈱の設定を再設定してください。カタカナ" in text
    assert mail.get_body(("html",)).get_content_charset() == "iso-2022-jp"


def test_reply_subject_style_answers_the_customers_subject(sending, mail_account, fake_jira, smtp_sink):
    sending.relink(subject_style="reply")
    request = first_mail(sending, mail_account, fake_jira)
    fake_jira.add_agent_comment(request.key, "answer")

    sending.poll()

    assert smtp_sink.messages[0].message["Subject"] == f"Re: VPN drops every hour [{request.key}]"


def test_a_copy_goes_to_the_sent_folder(sending, mail_account, fake_jira, smtp_sink):
    with mail_account.client(readonly=False) as client:
        client.create_folder("Sent")
    sending.relink(sent_folder="Sent")
    request = first_mail(sending, mail_account, fake_jira)
    fake_jira.add_agent_comment(request.key, "answer")

    sending.poll()

    [entry] = Outbox(sending.store).entries()
    with mail_account.client() as client:
        client.select_folder("Sent", readonly=True)
        assert len(client.search(["HEADER", "Message-ID", f"<{entry.message_id}>"])) == 1


def test_an_interrupted_send_found_in_the_sent_folder_is_not_sent_again(sending, mail_account, fake_jira,
                                                                         smtp_sink):
    with mail_account.client(readonly=False) as client:
        client.create_folder("Sent")
    sending.relink(sent_folder="Sent")
    request = first_mail(sending, mail_account, fake_jira)
    fake_jira.add_agent_comment(request.key, "answer")
    sending.poll()
    outbox = Outbox(sending.store)
    [entry] = outbox.entries()
    # As if the process died after the server took the mail, before it was marked sent.
    outbox._finish(entry.id, "sending", sending_since=entry.sent_at - timedelta(hours=1))
    smtp_sink.messages.clear()

    sending.poll()

    assert smtp_sink.messages == []
    assert outbox.entries()[0].state == "sent"
    assert "found in the Sent folder" in sending.log()[-1].detail


def test_an_interrupted_send_without_a_sent_folder_is_sent_once_more(sending, mail_account, fake_jira, smtp_sink):
    request = first_mail(sending, mail_account, fake_jira)
    fake_jira.add_agent_comment(request.key, "answer")
    outbox = Outbox(sending.store)
    sending.relink(smtp_port=_free_port())  # down: the comment stays queued
    sending.poll()
    [entry] = outbox.entries()
    # As if the process died while the server took the mail: "sending" since long ago, not marked sent.
    outbox.claim(entry.id)
    outbox._finish(entry.id, "sending", sending_since=entry.queued_at - timedelta(hours=1))
    sending.relink(smtp_port=smtp_sink.port)

    sending.poll()
    sending.poll()

    assert len(smtp_sink.messages) == 1
    assert smtp_sink.messages[0].message["Message-ID"] == f"<{entry.message_id}>"


def test_smtp_login_defaults_to_the_mailbox_account_over_starttls(service, mail_account, fake_jira,
                                                                  smtp_submission):
    smtp_submission.username, smtp_submission.password = mail_account.username, mail_account.password
    service.settings = dataclasses.replace(service.settings, ca_file=smtp_submission.cafile)
    service.relink(smtp_host=smtp_submission.host, smtp_port=smtp_submission.port, smtp_security=Security.STARTTLS)
    request = first_mail(service, mail_account, fake_jira)
    fake_jira.add_agent_comment(request.key, "answer")

    service.poll()

    assert smtp_submission.logins == [mail_account.username]
    assert len(smtp_submission.messages) == 1


def test_a_link_can_log_in_to_smtp_with_its_own_account(service, mail_account, fake_jira, smtp_submission):
    smtp_submission.username, smtp_submission.password = "relay-user", "relay-Pa55"
    service.settings = dataclasses.replace(service.settings, ca_file=smtp_submission.cafile)
    service.relink(smtp_host=smtp_submission.host, smtp_port=smtp_submission.port, smtp_security=Security.STARTTLS,
                   smtp_username="relay-user")
    Outbox(service.store).set_smtp_password(service.link.id, Secret("relay-Pa55"))
    request = first_mail(service, mail_account, fake_jira)
    fake_jira.add_agent_comment(request.key, "answer")

    service.poll()

    assert smtp_submission.logins == ["relay-user"]
    assert len(smtp_submission.messages) == 1


def test_a_comment_made_internal_before_its_turn_is_not_mailed(sending, mail_account, fake_jira, smtp_sink):
    request = first_mail(sending, mail_account, fake_jira)
    comment = fake_jira.add_agent_comment(request.key, "oops, meant for agents")
    sending.relink(smtp_port=_free_port())  # down: the comment waits in the outbox
    sending.poll()
    comment.public = False  # the agent changed its visibility meanwhile
    sending.relink(smtp_port=smtp_sink.port)
    Outbox(sending.store).postpone(Outbox(sending.store).entries()[0].id, "", 0)

    sending.poll()

    assert smtp_sink.messages == []
    assert Outbox(sending.store).entries()[0].state == "failed"


def test_answers_written_before_the_link_could_send_are_never_mailed(service, mail_account, fake_jira, smtp_sink):
    request = first_mail(service, mail_account, fake_jira)  # no SMTP server yet
    fake_jira.add_agent_comment(request.key, "answered while the link could not send")
    service.poll()
    service.relink(smtp_host=smtp_sink.host, smtp_port=smtp_sink.port, smtp_security=Security.NONE)
    fake_jira.add_agent_comment(request.key, "answered once it could")

    service.poll()

    [mail] = [m.message for m in smtp_sink.messages]
    assert "answered once it could" in mail.get_body(("plain",)).get_content()


def test_a_customers_own_portal_comment_goes_to_the_others_not_back_to_them(sending, mail_account, fake_jira,
                                                                          smtp_sink):
    request = fake_jira.add_request("Printer jams", reporter_email="ann@example.org",
                                    participants=("bob@example.org",))
    fake_jira.add_agent_comment(request.key, "Any news?", author_email="ann@example.org")

    sending.poll()

    [delivered] = smtp_sink.messages
    assert delivered.rcpt_tos == ("bob@example.org",)


def test_a_link_without_an_address_to_send_from_says_so(sending, mail_account, fake_jira, smtp_sink):
    sending.relink(address="", username="svc-support", from_address="")
    request = fake_jira.add_request("Printer jams", reporter_email="ann@example.org")
    fake_jira.add_agent_comment(request.key, "answer")

    report = sending.poll()

    assert smtp_sink.messages == []
    assert "no address to send from" in report.outbound.error
    assert any("no address to send from" in e.summary for e in sending.store.error_log())
