"""ImapMailbox against a real Dovecot: what is listed, that fetching changes nothing, what labels do."""
from __future__ import annotations

import pytest

from plugin.domain import Outcome, OutcomeState, Secret
from plugin.errors import RejectReason, RetryLater
from plugin.mailboxes import imap, open_mailbox
from plugin.mailboxes.imap import ImapMailbox


def eml(subject: str) -> bytes:
    return (
        f"From: Customer <customer@example.org>\r\nTo: support@example.test\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '-')}@example.org>\r\n"
        f"\r\nHello,\r\n.a line that starts with a dot\r\n"
    ).encode()


CREATED = Outcome(OutcomeState.CREATED, issue_key="SD-1")
REJECTED = Outcome(OutcomeState.REJECTED, reason=RejectReason.TOO_LARGE, detail="too big")
WAITING = Outcome(OutcomeState.WAITING_RETRY, detail="Jira answered 503")


@pytest.fixture
def unread(mail_account):
    """One unread mail in INBOX; returns its UID."""
    return mail_account.append(eml("unread"))


def test_unhandled_lists_only_unread_undeleted_mail_with_its_size(mail_account):
    mail_account.append(eml("already read"), flags=("\\Seen",))
    unread = mail_account.append(eml("unread"))
    mail_account.append(eml("deleted"), flags=("\\Deleted",))

    with open_mailbox(mail_account.link()) as mailbox:
        refs = mailbox.unhandled()

    assert [(ref.link_id, ref.uid, ref.size_bytes) for ref in refs] == [(1, str(unread), len(eml("unread")))]


def test_unhandled_is_in_uid_order(mail_account):
    uids = [mail_account.append(eml(f"mail {n}")) for n in range(3)]

    with open_mailbox(mail_account.link()) as mailbox:
        assert [ref.uid for ref in mailbox.unhandled()] == [str(uid) for uid in uids]


def test_fetch_returns_the_exact_bytes_and_leaves_the_mail_unread(mail_account, unread):
    with open_mailbox(mail_account.link()) as mailbox:
        [ref] = mailbox.unhandled()
        raw = mailbox.fetch(ref)

    assert raw.data == eml("unread")
    assert raw.ref == ref
    assert mail_account.flags(unread) == set()


@pytest.mark.parametrize(
    ("outcome", "keyword"),
    [
        (CREATED, "jsm-processed"),
        (Outcome(OutcomeState.IGNORED), "jsm-processed"),
        (REJECTED, "jsm-rejected"),
        (Outcome(OutcomeState.FAILED, reason=RejectReason.INTERNAL_ERROR), "jsm-rejected"),
    ],
    ids=["created", "ignored", "rejected", "failed"],
)
def test_final_outcome_marks_read_with_its_keyword(mail_account, unread, outcome, keyword):
    with open_mailbox(mail_account.link()) as mailbox:
        [ref] = mailbox.unhandled()
        mailbox.label(ref, outcome)
        assert mailbox.unhandled() == []

    assert mail_account.flags(unread) == {"\\Seen", keyword}


def test_labels_can_be_configured_per_link(mail_account, unread):
    link = mail_account.link(processed_label="Jira_Done")
    with open_mailbox(link) as mailbox:
        mailbox.label(mailbox.unhandled()[0], CREATED)

    assert mail_account.flags(unread) == {"\\Seen", "Jira_Done"}


def test_waiting_retry_leaves_the_mail_unread_and_unlabelled(mail_account, unread):
    with open_mailbox(mail_account.link()) as mailbox:
        [ref] = mailbox.unhandled()
        mailbox.label(ref, WAITING)

    assert mail_account.flags(unread) == set()
    with open_mailbox(mail_account.link()) as mailbox:
        assert mailbox.unhandled() == [ref]


def test_unread_mail_with_our_keyword_is_not_unhandled(mail_account):
    """A mail whose \\Seen another client removed again is not handled twice."""
    mail_account.append(eml("processed"), flags=("jsm-processed",))
    mail_account.append(eml("rejected"), flags=("jsm-rejected",))

    with open_mailbox(mail_account.link()) as mailbox:
        assert mailbox.unhandled() == []


def test_mail_expunged_meanwhile_is_skipped_by_label_and_retried_by_fetch(mail_account, unread):
    with open_mailbox(mail_account.link()) as mailbox:
        [ref] = mailbox.unhandled()
        with mail_account.client(readonly=False) as other_client:
            other_client.delete_messages([unread])
            other_client.expunge()

        mailbox.label(ref, CREATED)
        with pytest.raises(RetryLater, match="no longer in INBOX"):
            mailbox.fetch(ref)

    assert mail_account.messages() == []


def test_close_does_not_expunge_mail_marked_deleted(mail_account):
    mail_account.append(eml("deleted"), flags=("\\Deleted",))

    with open_mailbox(mail_account.link()) as mailbox:
        mailbox.unhandled()

    assert len(mail_account.messages()) == 1


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_with_the_server_certificate_works(mail_account, unread, security):
    with open_mailbox(mail_account.link(security=security), cafile=mail_account.cafile) as mailbox:
        assert [ref.uid for ref in mailbox.unhandled()] == [str(unread)]


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_with_an_untrusted_certificate_is_retry_later(mail_account, untrusted_cafile, security):
    with pytest.raises(RetryLater, match="not trusted") as caught:
        open_mailbox(mail_account.link(security=security), cafile=untrusted_cafile)

    assert caught.value.after_s > 60


def test_wrong_password_is_retry_later_without_the_password(mail_account):
    wrong = "Wr0ng-Passw0rd"
    with pytest.raises(RetryLater, match="refused the login") as caught:
        open_mailbox(mail_account.link(password=Secret(wrong)))

    assert wrong not in caught.value.detail
    assert mail_account.password not in caught.value.detail


def test_refused_connection_is_retry_later(mail_account):
    with pytest.raises(RetryLater, match="refused the connection"):
        open_mailbox(mail_account.link(port=1))


def test_missing_folder_is_retry_later(mail_account):
    with pytest.raises(RetryLater, match="answered with an error"):
        open_mailbox(mail_account.link(folder="No such folder"))


@pytest.mark.parametrize("label", ["Rejected By Jira", "jira(x)", "verarbeitet-ü", "", "100%", "a]b", '"q"'])
def test_label_that_is_not_an_imap_atom_is_refused_before_connecting(mail_account, label):
    link = mail_account.link(rejected_label=label, port=1)
    with pytest.raises(ValueError, match="cannot be an IMAP keyword"):
        ImapMailbox.connect(link)


def test_test_connection_summarises_server_folder_and_unhandled_count(mail_account, unread):
    mail_account.append(eml("already read"), flags=("\\Seen",))

    summary = imap.test_connection(mail_account.link(security="starttls"), cafile=mail_account.cafile)

    assert "Dovecot" in summary
    assert "IMAP4REV1" in summary
    assert "folder INBOX: 2 mails, 1 unhandled" in summary


def test_test_connection_failure_is_retry_later(mail_account):
    with pytest.raises(RetryLater, match="refused the login"):
        imap.test_connection(mail_account.link(password=Secret("nope")))
