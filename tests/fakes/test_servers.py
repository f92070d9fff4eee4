"""The test servers themselves: Dovecot accounts are fresh and reachable, the SMTP sink keeps mail."""
from __future__ import annotations

import smtplib
import ssl
from pathlib import Path

from imapclient import IMAPClient


def test_each_account_starts_empty_and_keeps_what_is_appended(mail_account):
    assert mail_account.messages() == []

    uid = mail_account.append(b"Subject: hi\r\n\r\nbody\r\n", flags=("\\Flagged", "custom"))

    assert mail_account.messages() == [(uid, {"\\Flagged", "custom"}, b"Subject: hi\r\n\r\nbody\r\n")]
    assert mail_account.flags(uid) == {"\\Flagged", "custom"}


def test_accounts_are_distinct_users(dovecot, mail_account):
    assert mail_account.address.endswith("@example.test")
    assert mail_account.password == dovecot.password_for(mail_account.username)
    assert len({dovecot.imap_port, dovecot.imaps_port, dovecot.pop3_port, dovecot.pop3s_port}) == 4


def test_imaps_presents_the_fixture_certificate(mail_account):
    context = ssl.create_default_context(cafile=mail_account.cafile)
    with IMAPClient(mail_account.host, port=mail_account.imaps_port, ssl_context=context) as client:
        presented = client.socket().getpeercert(binary_form=True)
        client.login(mail_account.username, mail_account.password)
        folders = [name for _flags, _delimiter, name in client.list_folders()]

    assert presented == ssl.PEM_cert_to_DER_cert(Path(mail_account.cafile).read_text("ascii"))
    assert "INBOX" in folders


def test_link_points_at_the_account(mail_account):
    link = mail_account.link(protocol="pop3", security="ssl", name="other")

    assert (link.host, link.port, link.username, link.password.reveal()) == (
        mail_account.host, mail_account.pop3s_port, mail_account.username, mail_account.password)
    assert (link.id, link.name, link.folder, link.service_desk_id, link.request_type_id) == (
        1, "other", "INBOX", "1", "10")


def test_smtp_sink_keeps_envelope_and_bytes(smtp_sink):
    data = b"From: a@example.org\r\nTo: b@example.test\r\nSubject: x\r\n\r\nbody\r\n"
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port) as smtp:
        smtp.sendmail("a@example.org", ["b@example.test", "c@example.test"], data)

    [received] = smtp_sink.messages
    assert received.mail_from == "a@example.org"
    assert received.rcpt_tos == ("b@example.test", "c@example.test")
    assert received.data == data
