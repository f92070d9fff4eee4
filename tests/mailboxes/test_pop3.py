"""Pop3Mailbox against a real Dovecot: exact bytes, deletion only at QUIT, rejected mail kept, nothing lost
on a drop."""
from __future__ import annotations

import dataclasses

import pytest

from plugin.domain import Outcome, OutcomeState, Secret
from plugin.errors import RejectReason, RetryLater
from plugin.mailboxes import open_mailbox

CREATED = Outcome(OutcomeState.CREATED, issue_key="SD-1")
COMMENTED = Outcome(OutcomeState.COMMENTED, issue_key="SD-1")
BOUNCE = Outcome(OutcomeState.BOUNCE_RECORDED, issue_key="SD-1")
IGNORED = Outcome(OutcomeState.IGNORED, detail="auto-reply")
FAILED = Outcome(OutcomeState.FAILED, reason=RejectReason.INTERNAL_ERROR, detail="gave up")
REJECTED = Outcome(OutcomeState.REJECTED, reason=RejectReason.MALFORMED, detail="no From")
WAITING = Outcome(OutcomeState.WAITING_RETRY, detail="Jira answered 503")


def eml(subject: str) -> bytes:
    # The dot line checks that RETR's dot-stuffing is undone (RFC 1939 3).
    return (
        f"From: customer@example.org\r\nTo: support@example.test\r\nSubject: {subject}\r\n"
        f"\r\nHello,\r\n.\r\n..two dots\r\nbye\r\n"
    ).encode()


@pytest.fixture
def pop3_link(mail_account):
    return mail_account.link(protocol="pop3")


def subjects(mail_account) -> list[bytes]:
    return [raw.split(b"Subject: ")[1].split(b"\r\n")[0] for _, _, raw in mail_account.messages()]


def test_unhandled_lists_every_message_with_its_size(mail_account, pop3_link):
    mail_account.append(eml("one"), flags=("\\Seen",))
    mail_account.append(eml("two"))

    with open_mailbox(pop3_link) as mailbox:
        refs = mailbox.unhandled()

    assert [ref.size_bytes for ref in refs] == [len(eml("one")), len(eml("two"))]
    assert len({ref.uid for ref in refs}) == 2
    assert {ref.link_id for ref in refs} == {1}


def test_uids_are_stable_across_sessions(mail_account, pop3_link):
    mail_account.append(eml("one"))
    with open_mailbox(pop3_link) as mailbox:
        first = mailbox.unhandled()
    with open_mailbox(pop3_link) as mailbox:
        assert mailbox.unhandled() == first


def test_fetch_returns_the_exact_bytes(mail_account, pop3_link):
    mail_account.append(eml("one"))
    mail_account.append(eml("two"))

    with open_mailbox(pop3_link) as mailbox:
        second = mailbox.unhandled()[1]
        raw = mailbox.fetch(second)

    assert raw.data == eml("two")
    assert raw.ref == second


@pytest.mark.parametrize("outcome", [CREATED, COMMENTED, BOUNCE, IGNORED],
                         ids=["created", "commented", "bounce-recorded", "ignored"])
def test_final_outcome_deletes_the_mail_at_close(mail_account, pop3_link, outcome):
    mail_account.append(eml("one"))
    mail_account.append(eml("two"))

    with open_mailbox(pop3_link) as mailbox:
        first = mailbox.unhandled()[0]
        mailbox.label(first, outcome)
        assert first not in mailbox.unhandled()
        assert len(mail_account.messages()) == 2  # not before QUIT

    assert subjects(mail_account) == [b"two"]


@pytest.mark.parametrize("outcome", [REJECTED, FAILED], ids=["rejected", "failed"])
def test_rejected_mail_stays_on_the_server_and_is_skipped_by_its_uidl(mail_account, pop3_link, store, outcome,
                                                                     caplog):
    mail_account.append(eml("bad"))
    mail_account.append(eml("good"))

    with caplog.at_level("INFO", logger="plugin.mailboxes.pop3"):
        with open_mailbox(pop3_link, store=store) as mailbox:
            bad, good = mailbox.unhandled()
            mailbox.label(bad, outcome)
            mailbox.label(bad, outcome)  # handled again within the session: still one log line
            assert mailbox.unhandled() == [good]
        with open_mailbox(pop3_link, store=store) as mailbox:
            assert mailbox.unhandled() == [good]  # a later session skips it too

    assert subjects(mail_account) == [b"bad", b"good"]
    kept = [r for r in caplog.records if r.getMessage().startswith("kept on the server")]
    assert len(kept) == 1 and bad.uid in kept[0].getMessage()


def test_kept_mail_of_one_link_is_not_skipped_on_another(mail_account, pop3_link, store):
    mail_account.append(eml("bad"))
    other = dataclasses.replace(pop3_link, id=pop3_link.id + 1)

    with open_mailbox(pop3_link, store=store) as mailbox:
        [bad] = mailbox.unhandled()
        mailbox.label(bad, REJECTED)

    with open_mailbox(other, store=store) as mailbox:
        assert [ref.uid for ref in mailbox.unhandled()] == [bad.uid]


def test_dropped_connection_deletes_nothing(mail_account, pop3_link):
    mail_account.append(eml("one"))

    mailbox = open_mailbox(pop3_link)
    [ref] = mailbox.unhandled()
    mailbox.label(ref, CREATED)
    mailbox._conn.close()  # the socket goes away without QUIT, as when the process dies

    assert subjects(mail_account) == [b"one"]
    with open_mailbox(pop3_link) as again:
        assert again.unhandled() == [ref]


def test_waiting_retry_keeps_the_mail(mail_account, pop3_link):
    mail_account.append(eml("one"))

    with open_mailbox(pop3_link) as mailbox:
        [ref] = mailbox.unhandled()
        mailbox.label(ref, WAITING)

    assert subjects(mail_account) == [b"one"]


def test_labelling_twice_or_a_vanished_mail_is_not_an_error(mail_account, pop3_link):
    mail_account.append(eml("one"))

    with open_mailbox(pop3_link) as mailbox:
        [ref] = mailbox.unhandled()
        mailbox.label(ref, CREATED)
        mailbox.label(ref, CREATED)
        gone = type(ref)(ref.link_id, "no-such-uidl", 1)
        mailbox.label(gone, CREATED)
        with pytest.raises(RetryLater, match="no longer on the server"):
            mailbox.fetch(gone)

    assert mail_account.messages() == []


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_with_the_server_certificate_works(mail_account, security):
    mail_account.append(eml("one"))
    link = mail_account.link(protocol="pop3", security=security)

    with open_mailbox(link, cafile=mail_account.cafile) as mailbox:
        assert mailbox.fetch(mailbox.unhandled()[0]).data == eml("one")


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_with_an_untrusted_certificate_is_retry_later(mail_account, untrusted_cafile, security):
    link = mail_account.link(protocol="pop3", security=security)
    with pytest.raises(RetryLater, match="not trusted"):
        open_mailbox(link, cafile=untrusted_cafile)


def test_wrong_password_is_retry_later_without_the_password(mail_account, pop3_link):
    wrong = "Wr0ng-Passw0rd"
    with pytest.raises(RetryLater, match="refused the login") as caught:
        open_mailbox(mail_account.link(protocol="pop3", password=Secret(wrong)))

    assert wrong not in caught.value.detail
    assert mail_account.password not in caught.value.detail


def test_refused_connection_is_retry_later(mail_account):
    with pytest.raises(RetryLater, match="refused the connection"):
        open_mailbox(mail_account.link(protocol="pop3", port=1))


def test_polling_keeps_a_rejected_mail_logs_it_once_and_deletes_the_request(service, mail_account, fake_jira):
    from plugin.domain import MailProtocol, Security
    from tests.conftest import mail_file
    service.relink(protocol=MailProtocol.POP3, port=mail_account.pop3_port, security=Security.NONE)
    mail_account.append(mail_file("invalid_no_from.eml"))
    mail_account.append(mail_file("request_plain.eml"))

    service.poll()
    service.poll()

    assert len(fake_jira.requests) == 1
    [(_, _, kept)] = mail_account.messages()
    assert kept == mail_file("invalid_no_from.eml")
    assert [entry.outcome for entry in service.log()] == ["rejected", "created"]
