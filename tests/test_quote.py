"""reply_text: what the person wrote, without quoted history and signature."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from plugin.parse import parse_bytes
from plugin.quote import reply_text
from tests.corpus import CorpusCase, corpus_cases

MAIL_DIR = Path(__file__).parent / "mail"

SAMPLES = {
    "reply_outlook_from_sent.eml": "The printer is back online, you can close the ticket.\n\nDana",
    "reply_outlook_japanese.eml": "承知しました。本日中に対応します。\n\n山田",
    "reply_outlook_japanese_fullwidth.eml": "ありがとうございます。解決しました。",
    "reply_gmail_wrapped_attribution.eml": "Thanks, that worked.",
    "reply_gmail_japanese.eml": "確認しました。問題ありません。",
    "reply_thunderbird_japanese.eml": "了解です。明日伺います。",
    "reply_apple_mail_japanese.eml": "了解しました。",
    "reply_apple_mail.eml": "Works for me, thanks.",
    "reply_signature_dash.eml": "The invoice is attached.",
    "reply_only_quote.eml": "",
    "reply_html_gmail_blockquote.eml": "Access works now.\n\nSam",
    "reply_html_outlook_divrplyfwdmsg.eml": "Picked up the laptop, thank you!",
}


def _mail_reply(path: Path) -> str:
    mail = parse_bytes(path.read_bytes())
    return reply_text(mail.body_text, mail.body_html)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_reply_keeps_only_what_the_person_wrote(name: str) -> None:
    assert _mail_reply(MAIL_DIR / name) == SAMPLES[name]


@pytest.mark.parametrize("text, reply", [
    ("Danke!\n\nAm Fr., 5. Jan. 2024 um 10:00 Uhr schrieb Max <max@example.de>:\n> Hallo\n", "Danke!"),
    ("Merci\n\nLe ven. 5 janv. 2024 à 10:00, Jean <jean@example.fr> a écrit :\n> Bonjour\n", "Merci"),
    ("Gracias\n\nEl vie, 5 ene 2024 a las 10:00, Juan (<juan@example.es>) escribió:\n> Hola\n", "Gracias"),
    ("Danke\n\nVon: Max\nGesendet: Freitag, 5. Januar 2024 10:00\nAn: Support\nBetreff: Test\n\nalt", "Danke"),
    ("Merci\n\nDe : Jean\nEnvoyé : vendredi 5 janvier 2024\nÀ : Support\nObjet : Test\n\nancien", "Merci"),
    ("承知しました。\n\nFrom: 山田 <taro@example.jp>\nSent: Friday, January 5, 2024 10:00 AM\nTo: support\n"
     "Subject: RE: 件名\n\n本文", "承知しました。"),
    ("確認しました。\n\n山田 太郎 さんは書きました:\n> 明日の件です。\n", "確認しました。"),
    ("了解\n\n2024年1月5日(金) 10:00 山田 太郎 <\ntaro@example.jp>:\n\n> 本文\n", "了解"),
    ("Hello\n\n\n----- Original Message -----\nFrom: bob@example.com\nSent: Monday\n\nHi\n", "Hello"),
    ("Ok\n\nFrom: A <a@example.com> Sent: Friday, Jan 5 To: x Subject: y\nold", "Ok"),
    ("Reply\n\n ------------------------------\n\n*From:* Team [mailto:t@example.com]\n*Sent:* Thursday\n"
     "*To:* me@example.com\n*Subject:* Update\n\nDear user", "Reply"),
    ("This is my reply.\n\nOn Nov 26, 2013 you wrote:\n\nThis is my quote.", "This is my reply."),
    ("Hello\n> On 22 Aug 2015, at 19:21, Bob <bob@example.com> wrote:\n>\n> Hi there!\n", "Hello"),
])
def test_quoted_history_is_removed_in_every_client_format(text: str, reply: str) -> None:
    assert reply_text(text) == reply


@pytest.mark.parametrize("text, reply", [
    ("Fine by me.\n\nGet Outlook for iOS<https://aka.ms/o0ukef>", "Fine by me."),
    ("Fine.\n\nSent from Mail<https://go.microsoft.com/fwlink/?LinkId=550986> for Windows", "Fine."),
    ("了解です。\n\niPhoneから送信", "了解です。"),
    ("Thanks\n-- \nJohn\nACME", "Thanks"),
    ("Oh thanks.\n\nHaving it would be great.\n\n-Ann Kim\n\nOn 01/03/11 7:07 PM, Bob wrote:\n> Hi\n\n"
     "_______________________________________________\nusers mailing list\nusers@lists.example.com",
     "Oh thanks.\n\nHaving it would be great."),
])
def test_signatures_at_the_end_of_the_reply_are_removed(text: str, reply: str) -> None:
    assert reply_text(text) == reply


@pytest.mark.parametrize("text", [
    "Here is another email\n\nSent from my desk, is much easier then my mobile phone.",
    "Here is what I wrote:\n\nThe server is down since 10am.",
    "This tests that\n\nOn friday when I tried it didn't work.\n\nThis line is not a header.",
    "Todo:\n\n-one\n-two",
    "One outstanding question\r\n\r\nis left.",
    "FYI\n\n---------- Forwarded message ---------\nFrom: Jane <jane@example.org>\n"
    "Date: Tue, Mar 5, 2024 at 9:00 AM\nSubject: Invoice\nTo: John <john@example.com>\n\nHi John",
])
def test_text_without_quote_or_signature_comes_back_stripped_only(text: str) -> None:
    assert reply_text(f"\n{text}\n\n") == text


def test_bottom_posted_answer_drops_the_quote_and_its_attribution() -> None:
    text = "On 04/02/2012 06:26 PM, Megan wrote:\n> Hi\nHello\n"
    assert reply_text(text) == "Hello"


def test_answers_between_quoted_passages_keep_their_quotes() -> None:
    text = ("On Tue, Apr 29, 2014 at 4:22 PM, Dev <dev@example.com> wrote:\n\n> first question?\n\n"
            "first answer\n\n> second question?\n\nsecond answer\n\n> rest of the mail\n")
    assert reply_text(text) == ("On Tue, Apr 29, 2014 at 4:22 PM, Dev <dev@example.com> wrote:\n\n"
                                "> first question?\n\nfirst answer\n\n> second question?\n\nsecond answer")


def test_empty_body_gives_empty_reply() -> None:
    assert reply_text("  \n") == ""


def test_html_structure_cuts_history_the_text_part_does_not_mark() -> None:
    text = "Thanks!\n\nBob\n\nSupport team said\nPlease try again."
    html = ('<div>Thanks!<br><br>Bob</div><div class="gmail_quote">Support team said'
            '<blockquote>Please try again.</blockquote></div>')
    assert reply_text(text, html) == "Thanks!\n\nBob"


def test_gmail_signature_block_is_left_out_of_the_text_reply() -> None:
    text = ("Works now, thanks!\n\nJohn Smith\nACME\n\nOn Fri, Jan 5, 2024 at 10:00 AM Support "
            "<support@example.com> wrote:\n\n> Please try again.\n")
    html = ('<div dir="ltr">Works now, thanks!<div><br></div><div class="gmail_signature">John Smith<br>'
            'ACME</div></div><div class="gmail_quote">On Fri, Jan 5, 2024 at 10:00 AM Support wrote:'
            '<blockquote class="gmail_quote">Please try again.</blockquote></div>')
    assert reply_text(text, html) == "Works now, thanks!"


def test_gmail_forward_container_is_not_history() -> None:
    html = ('<div>FYI</div><div class="gmail_quote"><div class="gmail_attr">---------- Forwarded message '
            '---------<br>From: Jane &lt;jane@example.org&gt;</div><div>Invoice attached</div></div>')
    assert reply_text("", html).endswith("Invoice attached")


def test_one_megabyte_body_is_fast() -> None:
    body = "On a line: " + ("word " * 40 + "\n> quoted: text\n") * 4000
    started = time.perf_counter()
    reply_text(body, "<div>" + "<p>text</p>" * 20000 + "</div>")
    assert time.perf_counter() - started < 2


# talon keeps "Sent from my iPhone" in its reply; the product removes mobile signatures.
_KNOWN_DIFFERENCES = {"iphone.eml"}


def _corpus_reply(case: CorpusCase) -> str:
    fmt = case.expect.get("format")
    if fmt == "rfc822":
        return _mail_reply(case.path)
    body = case.path.read_text(encoding="utf-8")
    return reply_text("", body) if fmt == "html_body" else reply_text(body)


def _talon_params() -> list:
    return [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason="talon keeps mobile signatures"))
            if c.file in _KNOWN_DIFFERENCES else c for c in corpus_cases("talon")]


@pytest.mark.parametrize("case", _talon_params(), ids=str)
def test_talon_corpus_reply(case: CorpusCase) -> None:
    reply, want = _corpus_reply(case), case.expect["reply_text"]
    if case.expect["format"] == "html_body":
        assert re.sub(r"\s+", "", reply) == re.sub(r"\s+", "", want)
    else:
        assert reply.strip() in (want.strip(), want.split("\n-- \n")[0].strip())


@pytest.mark.parametrize("case", corpus_cases("email-reply-parser"), ids=str)
def test_email_reply_parser_corpus_reply(case: CorpusCase) -> None:
    started = time.perf_counter()
    reply = _corpus_reply(case)
    expect = case.expect
    assert time.perf_counter() - started < expect.get("max_seconds", 5)
    if "visible_text" in expect:
        assert reply == expect["visible_text"].strip()
    if expect.get("fragment_count") == 1:
        assert reply == case.path.read_text(encoding="utf-8").strip()
    hidden = expect.get("fragments_hidden") or []
    for pattern in expect.get("fragment_patterns", []):
        found = re.search(pattern["regex"], reply, re.M) is not None
        if pattern["index"] == 0:
            assert found
        elif pattern["index"] < len(hidden) and hidden[pattern["index"]]:
            assert not found
