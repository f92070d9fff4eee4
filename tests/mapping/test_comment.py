from plugin.domain import Address
from plugin.mapping.comment import ORIGINAL_FILENAME, comment_draft
from plugin.parse.mail import parse_bytes

RAW = (b"From: Kim Park <kim@example.com>\r\nTo: support@example.test\r\n"
       b"Cc: a@example.com, b@example.com, support@example.test, dana@example.com\r\n"
       b"Subject: Re: x\r\n\r\nNew *text*\r\n\r\n> quoted\r\n")


def test_comment_says_who_wrote_it_and_escapes_the_text():
    mail = parse_bytes(RAW)
    draft = comment_draft(mail, "New *text*", RAW, known_people=frozenset({"dana@example.com"}),
                          participant_count=1, own_addresses=frozenset({"support@example.test"}))
    assert draft.body == "*Kim Park* (kim@example.com) wrote:\n\nNew \\*text\\*"
    assert [p.address for p in draft.new_participants] == ["kim@example.com", "a@example.com", "b@example.com"]
    assert draft.attachments == () and draft.original.filename == ORIGINAL_FILENAME
    assert draft.author == Address("Kim Park", "kim@example.com")


def test_participants_stop_at_fifty_and_the_rest_are_named():
    mail = parse_bytes(RAW)
    draft = comment_draft(mail, "New *text*", RAW, known_people=frozenset({"dana@example.com"}),
                          participant_count=49, own_addresses=frozenset({"support@example.test"}))
    assert [p.address for p in draft.new_participants] == ["kim@example.com"]
    assert "not added: the request has reached 50 participants" in draft.body
    assert draft.body.endswith("a@example.com, b@example.com")


def test_unstripped_reply_attaches_nothing_extra():
    raw = b"From: kim@example.com\r\nTo: support@example.test\r\nSubject: x\r\n\r\nJust text\r\n"
    mail = parse_bytes(raw)
    draft = comment_draft(mail, "Just text", raw, known_people=frozenset(), participant_count=0,
                          own_addresses=frozenset())
    assert draft.original is None and draft.body == "*kim@example.com* wrote:\n\nJust text"
