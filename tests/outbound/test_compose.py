"""The notification mail built from a comment, without servers: subjects, bodies, threading, charsets."""
from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from plugin.classify.detectors import classify
from plugin.domain import (
    Access,
    Address,
    Attachment,
    Link,
    MailProtocol,
    Secret,
    Security,
)
from plugin.outbound.compose import compose, message_id_domain, new_message_id
from plugin.outbound.iso2022jp import encode, encoded_words
from plugin.outbound.model import (
    JiraComment,
    Notification,
    OutboundRequest,
    Recipients,
    Threading,
)
from plugin.parse.charsets import decode_text, decode_words
from plugin.parse.mail import parse_bytes
from plugin.settings import FORGE_APP_ID

NOW = datetime(2026, 1, 6, 10, 0, tzinfo=UTC)
LINK = Link(id=1, name="support", protocol=MailProtocol.IMAP, host="imap.example.com", port=993,
            security=Security.SSL, username="support@example.com", password=Secret("pw"), folder="INBOX",
            service_desk_id="1", request_type_id="10", access=Access.OPEN, address="support@example.com",
            from_name="Example Support")


def note(body: str = "Try again.", rendered: str | None = None, subject: str | None = None,
         files: tuple[Attachment, ...] = ()) -> Notification:
    comment = JiraComment("10100", "SD-42", "agent-1", "Agent", "agent@example.com", NOW, body, rendered, True,
                          frozenset())
    request = OutboundRequest("SD-42", "Printer jams on floor 3", "SD", Address("Ann", "ann@example.org"), (), ())
    return Notification(request, comment, Address("Example Support", "support@example.com"),
                        Recipients((Address("Ann", "ann@example.org"),), (Address("Bob", "bob@example.org"),), ()),
                        Threading(new_message_id(LINK, "10100"), "first@example.org",
                                  ("first@example.org", "second@example.org"), subject), files, ())


def read(msg) -> email.message.EmailMessage:
    return email.message_from_bytes(msg.as_bytes(policy=msg.policy.clone(linesep="\n")), policy=email.policy.default)


def test_subject_carries_the_issue_key_and_headers_mark_automatic_mail():
    mail = read(compose(note(), LINK, now=NOW))

    assert mail["Subject"] == "[SD-42] Printer jams on floor 3"
    assert mail["From"] == "Example Support <support@example.com>"
    assert (mail["To"], mail["Cc"]) == ("Ann <ann@example.org>", "Bob <bob@example.org>")
    assert mail["In-Reply-To"] == "<first@example.org>"
    assert mail["References"] == "<first@example.org> <second@example.org>"
    assert mail["Auto-Submitted"] == "auto-generated" and mail["X-Auto-Response-Suppress"] == "All"


def test_our_own_mail_coming_back_is_recognised_as_a_loop():
    """The loop marker and Message-ID domain are those the classifier knows as ours."""
    raw = compose(note(), LINK, now=NOW).as_bytes()

    verdict = classify(parse_bytes(raw), own_domains=frozenset({message_id_domain(LINK)}))

    assert verdict.kind.value == "loop"


@pytest.mark.parametrize(("rendered", "text"), [
    ("<p>Please <b>restart</b> it:</p><ul><li>one</li><li>two</li></ul>", "Please restart it:\n\n- one\n- two"),
    (None, "Please *restart* it."),
])
def test_text_part_is_made_from_the_rendered_comment_or_its_markup(rendered, text):
    mail = read(compose(note("Please *restart* it.", rendered), LINK, now=NOW))

    assert mail.get_body(("plain",)).get_content().startswith(text)
    assert "keep [SD-42] in the subject" in mail.get_body(("plain",)).get_content()
    assert mail.get_body(("html",)) is not None


def test_reply_style_subject_answers_the_customer_once():
    link = Link(**{**LINK.__dict__, "subject_style": "reply"})

    assert read(compose(note(subject="Re: Printer jams"), link))["Subject"] == "Re: Printer jams [SD-42]"
    assert read(compose(note(subject="Printer jams [SD-42]"), link))["Subject"] == "Re: Printer jams [SD-42]"
    assert read(compose(note(subject=None), link))["Subject"] == "[SD-42] Printer jams on floor 3"


def test_attachments_keep_their_names_and_bytes():
    files = (Attachment("請求書.pdf", "application/pdf", b"%PDF-1.4\n"),)

    [attached] = list(read(compose(note(files=files), LINK)).iter_attachments())

    assert (attached.get_filename(), attached.get_content()) == ("請求書.pdf", b"%PDF-1.4\n")


@pytest.mark.parametrize("text", ["①②③ ㈱ Ⅲ 髙橋 ⅰⅱ", "経費精算システム", "ｶﾀｶﾅ", "plain ascii"])
def test_cp50220_round_trips_through_the_inbound_decoder(text):
    expected = text.replace("ｶﾀｶﾅ", "カタカナ")

    assert decode_text(encode(text), "iso-2022-jp").text == expected
    assert decode_words(encoded_words(text)).text == expected


def test_characters_outside_cp50220_fall_back_to_utf8_in_the_iso_2022_jp_option():
    link = Link(**{**LINK.__dict__, "outbound_charset": "iso-2022-jp"})

    mail = read(compose(note("絵文字 😀 です"), link))

    assert mail.get_body(("plain",)).get_content_charset() == "utf-8"
    assert "😀" in mail.get_body(("plain",)).get_content()
    assert mail.get_body(("html",)).get_content_charset() == "iso-2022-jp"


def test_forge_audience_is_the_app_id_in_the_manifest():
    manifest = yaml.safe_load((Path(__file__).parents[2] / "manifest.yml").read_text())

    assert manifest["app"]["id"] == FORGE_APP_ID
    [trigger] = manifest["modules"]["trigger"]
    assert trigger["events"] == ["avi:jira:commented:issue"]
    [endpoint] = [e for e in manifest["modules"]["endpoint"] if e["key"] == trigger["endpoint"]]
    assert endpoint["route"]["path"] == "/forge/events/comment-created"
