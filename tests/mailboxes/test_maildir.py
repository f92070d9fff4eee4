"""A local Maildir mailbox: unhandled mail with its size, labels as Dovecot keywords."""
from __future__ import annotations

import mailbox
from pathlib import Path

from plugin.domain import Link, MailProtocol, Outcome, OutcomeState, Secret, Security
from plugin.mailboxes import open_mailbox

MAIL = b"From: a@example.com\r\nSubject: hello\r\n\r\nbody\r\n"


def maildir_with_one_mail(tmp_path: Path) -> tuple[Path, Link]:
    root = tmp_path / "Maildir"
    mailbox.Maildir(root, create=True).add(MAIL)
    link = Link(id=1, name="local", protocol=MailProtocol.MAILDIR, host=str(root), port=0,
                security=Security.NONE, username="", password=Secret(""), folder="INBOX",
                service_desk_id="1", request_type_id="10")
    return root, link


def test_unhandled_mail_carries_its_size_for_the_too_large_check(tmp_path):
    _, link = maildir_with_one_mail(tmp_path)

    with open_mailbox(link) as box:
        refs = box.unhandled()

    assert [ref.size_bytes for ref in refs] == [len(MAIL)]


def test_labelled_mail_is_no_longer_unhandled_and_keeps_a_dovecot_keyword(tmp_path):
    root, link = maildir_with_one_mail(tmp_path)

    with open_mailbox(link) as box:
        [ref] = box.unhandled()
        assert box.fetch(ref).data == MAIL
        box.label(ref, Outcome(OutcomeState.CREATED, issue_key="SD-1"))
        assert box.unhandled() == []

    assert "jsm-processed" in (root / "dovecot-keywords").read_text("ascii")
