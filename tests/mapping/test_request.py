from plugin.domain import Address
from plugin.mapping.request import FULL_BODY_FILENAME, description_from, participants_from, request_draft
from plugin.mapping.wiki import JIRA_TEXT_FIELD_LIMIT
from plugin.parse.mail import parse_bytes


def test_long_body_is_cut_with_a_note_and_attached_in_full():
    body = "line of text\n" * 5000
    description, full = description_from(body)
    assert len(description) <= JIRA_TEXT_FIELD_LIMIT
    assert FULL_BODY_FILENAME in description
    assert full is not None and full.data.decode("utf-8") == body.strip()


def test_short_body_is_not_attached():
    description, full = description_from("Hello *world*")
    assert description == r"Hello \*world\*" and full is None


def test_participants_are_ccd_people_without_us_or_the_sender():
    mail = parse_bytes(b"From: Ann <ann@example.org>\r\nTo: support@example.com\r\n"
                       b"Cc: Bob <bob@example.org>, support@example.com, ANN@example.org, bob@example.org\r\n"
                       b"Subject: x\r\n\r\nbody\r\n")
    assert participants_from(mail, frozenset({"support@example.com"})) == (Address("Bob", "bob@example.org"),)


def test_request_draft_takes_summary_description_and_attachments():
    mail = parse_bytes(b"From: Ann <ann@example.org>\r\nTo: support@example.com\r\nSubject: Re: VPN [down]\r\n"
                       b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
                       b"--b\r\nContent-Type: text/plain\r\n\r\nIt is {down}.\r\n"
                       b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=log.pdf\r\n"
                       b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n")
    draft = request_draft(mail, frozenset({"support@example.com"}))
    assert draft.summary == "VPN [down]"
    assert draft.description == r"It is \{down\}."
    assert [(a.filename, a.data) for a in draft.attachments] == [("log.pdf", b"%PDF-")]
    assert draft.reporter == Address("Ann", "ann@example.org")
