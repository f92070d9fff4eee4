"""The whole conversation: customer mail -> request -> agent's public comment -> mail -> reply -> comment."""
from __future__ import annotations

from plugin.store.outbox import Outbox
from tests.conftest import mail_file

PDF = b"%PDF-1.4\n%steps\n"


def reply_to(mail, body: str) -> bytes:
    """The customer's answer as a mail client writes it: Re: subject, In-Reply-To and References, quote."""
    references = f"{mail['References']} {mail['Message-ID']}".strip()
    quoted = "\n".join("> " + line for line in mail.get_body(("plain",)).get_content().splitlines())
    return (f"From: Ann Customer <ann@example.org>\r\nTo: {mail['From']}\r\nSubject: Re: {mail['Subject']}\r\n"
            f"Date: Tue, 06 Jan 2026 11:00:00 +0000\r\nMessage-ID: <vpn-reply-1@example.org>\r\n"
            f"In-Reply-To: {mail['Message-ID']}\r\nReferences: {references}\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\r\nOn Tuesday Support wrote:\r\n"
            f"{quoted}\r\n").encode()


def test_agent_answer_is_mailed_and_the_customer_reply_comes_back_as_comment(sending, mail_account, fake_jira,
                                                                             smtp_sink):
    mail_account.append(mail_file("request_plain.eml"))
    sending.poll()
    [request] = fake_jira.requests
    comment = fake_jira.add_agent_comment(request.key, "Please restart the *VPN client* and try again.",
                                          files=(("steps.pdf", PDF, "application/pdf"),))

    report = sending.poll()

    assert report.outbound.sent == 1
    [delivered] = smtp_sink.messages
    mail = delivered.message
    assert delivered.rcpt_tos == ("ann@example.org",)
    assert delivered.mail_from == "support@example.test"
    assert mail["From"] == "Example Support <support@example.test>"
    assert mail["To"] == "Ann Customer <ann@example.org>"
    assert mail["Subject"] == f"[{request.key}] VPN drops every hour"
    assert mail["In-Reply-To"] == "<vpn-drops-1@example.org>"
    assert mail["References"] == "<vpn-drops-1@example.org>"
    assert mail["Message-ID"].endswith("@jsm-mail.example.test>")
    assert (mail["Auto-Submitted"], mail["X-Auto-Response-Suppress"]) == ("auto-generated", "All")
    assert mail["X-JSM-Mail-Loop"]
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Please restart the *VPN client* and try again." in text
    assert "Please restart the *VPN client* and try again." in html
    assert f"keep [{request.key}] in the subject" in text
    [attached] = list(mail.iter_attachments())
    assert (attached.get_filename(), attached.get_content()) == ("steps.pdf", PDF)
    [entry] = Outbox(sending.store).entries()
    assert (entry.state, entry.comment_id, f"<{entry.message_id}>") == ("sent", comment.id, mail["Message-ID"])
    sent_row = sending.log()[-1]
    assert (sent_row.outcome, sent_row.issue_key, sent_row.message_id) == ("sent", request.key, entry.message_id)
    assert "ann@example.org" in sent_row.detail

    mail_account.append(reply_to(mail, "Thanks, it works now."))
    sending.poll()
    sending.poll()

    assert len(request.public_comments) == 2
    answer = request.public_comments[-1].body
    assert "Thanks, it works now." in answer and "Please restart" not in answer
    replied = [e for e in sending.log() if e.message_id == "vpn-reply-1@example.org"]
    assert [(e.outcome, e.issue_key) for e in replied] == [("commented", request.key)]
    assert replied[0].evidence.startswith(f"In-Reply-To {mail['Message-ID']}")
    assert len(smtp_sink.messages) == 1  # the reply jsm-mail wrote into Jira is never mailed back
