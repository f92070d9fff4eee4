"""Parsing real and hand-written mail: headers, charsets, bodies, attachments, never a crash."""
from __future__ import annotations

import base64
import difflib
import hashlib
import html
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from plugin.domain import Address, InboundMail
from plugin.errors import MailRejected, RejectReason
from plugin.parse import parse_bytes
from tests.corpus import CORPUS_DIR, CorpusCase, corpus_cases

MAIL_DIR = Path(__file__).parent / "mail"
ZAMMAD_FIELDS = ("from_email", "from_display_name", "subject", "to", "cc", "body", "attachments")
# zammad's own results we do not copy, each for a reason a user would agree with.
ZAMMAD_DIFFERENCES = {
    ("mail035.box", "from_email"): 'From: "a@b" (one quoted string): zammad keeps the quotes in the '
                                   "address; we return a@b, an address one can write to",
    ("mail076.box", "from_email"): 'From: "Millions Lottery Spain transfer"@example.com> is broken; '
                                   "zammad returns the raw text with the stray '>', we the addr-spec",
    ("mail076.box", "from_display_name"): "zammad uses the raw broken header as display name; "
                                          "the mailbox has no display name",
    ("mail087.box", "from_email"): "From: Test test@example.com (no angle brackets): zammad keeps "
                                   "the raw text as address, we read name 'Test' + test@example.com",
    ("mail087.box", "from_display_name"): "same header: zammad's name is the raw text, ours is 'Test'",
    ("mail087.box", "body"): "a part without Content-Type is text/plain (RFC 2045 section 5.2), so its "
                             "fax notice is the body; zammad shows no body and files it as 'file'",
    ("mail087.box", "attachments"): "same part: zammad lists it as an attachment, for us it is the body",
    ("mail043.box", "body"): "the HTML newsletter has 16 long tracking links; our text keeps them as "
                             "'text <url>' and '- ' list items, zammad's tag-stripped text drops both "
                             "(word similarity 0.889 < 0.9)",
}


def parse_file(path: Path) -> InboundMail:
    return parse_bytes(path.read_bytes())


def mail(name: str) -> InboundMail:
    return parse_file(MAIL_DIR / name)


# --- zammad corpus, judged as shared/tools/score_inspect.py judges it -------------------------

def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def _tag_stripped(markup: str) -> str:
    markup = re.sub(r"(?is)<(script|style).*?</\1>", " ", markup)
    markup = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>|</tr>", "\n", markup)
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def _undo_utf7(text: str) -> str:
    """zammad leaves UTF-7 runs (+APw-) undecoded; the score script forgives that, so do we."""
    def decode(match: re.Match[str]) -> str:
        try:
            return match.group().encode("ascii").decode("utf-7")
        except UnicodeError:
            return match.group()
    return re.sub(r"\+[A-Za-z0-9+/]+-", decode, text or "")


def _addresses(value: str) -> set[str]:
    return {a.lower() for a in re.findall(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*", value or "")}


def _zammad_check(case: CorpusCase, field: str, got: InboundMail) -> bool:
    """Whether our parse passes this field the way the score script decides."""
    expect = case.expect
    address = lambda a: (a or "").lower().rstrip(".")
    sender = got.sender or Address("", "")
    if field == "from_email":
        return address(sender.address) == address(expect.get("from_email"))
    if field == "from_display_name":
        return _norm(sender.name) == _norm(expect.get("from_display_name"))
    if field == "subject":
        return _norm(got.subject) in {_norm(expect.get("subject")), _norm(_undo_utf7(expect.get("subject")))}
    if field in ("to", "cc"):
        return {a.address.lower() for a in getattr(got, field)} == _addresses(expect[field])
    if field == "body":
        body = expect["body"] if expect.get("content_type") != "text/html" else _tag_stripped(expect["body"])
        body = "" if _norm(body) == "no visible content" else _undo_utf7(body)
        ours, theirs = _norm(got.body_text).split(), _norm(body).split()
        return not (ours or theirs) or difflib.SequenceMatcher(None, ours, theirs, autojunk=False).ratio() >= 0.9
    want = {a["md5"] for a in expect.get("attachments", []) if a.get("md5") and not a.get("content_alternative")}
    return want <= {a.md5 for a in got.attachments}


def _judged(expect: dict, field: str) -> bool:
    if field in ("to", "cc"):
        return field in expect
    if field == "body":
        return bool(expect.get("body"))
    if field == "attachments":
        return any(a.get("md5") and not a.get("content_alternative") for a in expect.get("attachments", []))
    return True


def _zammad_params() -> list:
    params = []
    for case in corpus_cases("zammad"):
        for field in (f for f in ZAMMAD_FIELDS if _judged(case.expect, f)):
            reason = ZAMMAD_DIFFERENCES.get((case.file, field))
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            params.append(pytest.param(case, field, marks=marks, id=f"{case.file}-{field}"))
    return params


@pytest.mark.parametrize("case, field", _zammad_params())
def test_zammad_corpus_field_matches(case: CorpusCase, field: str) -> None:
    assert _zammad_check(case, field, parse_file(case.path))


# --- never raises ----------------------------------------------------------------------------

def _corpus_files() -> list[Path]:
    skip = {".yml", ".jsonl"}
    return sorted(p for p in CORPUS_DIR.rglob("*")
                  if p.is_file() and p.suffix not in skip and not p.name.startswith(("LICENSE", "COPYING")))


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_parse_never_raises_on_corpus_file(path: Path) -> None:
    try:
        parse_file(path)
    except MailRejected as rejected:
        assert rejected.reason is RejectReason.MALFORMED


@pytest.mark.parametrize("data", [b"", b"\n\n", b"\x00\x01\x02\xff" * 64, b"just some words\n"])
def test_bytes_that_are_no_mail_are_malformed(data: bytes) -> None:
    with pytest.raises(MailRejected) as rejected:
        parse_bytes(data)
    assert rejected.value.reason is RejectReason.MALFORMED


def test_mail_without_from_parses_with_no_sender() -> None:
    parsed = parse_bytes(b"To: a@example.com\nSubject: hi\n\nbody\n")
    assert parsed.sender is None and parsed.body_text == "body"


def test_damaged_mail_never_raises() -> None:
    source = (MAIL_DIR / "rfc2231_japanese_filename.eml").read_bytes()
    for cut in range(0, len(source), 7):
        parse_or_malformed(source[:cut] + b'=?"(<\x1b$B;*0*=\r' + source[cut + 3:])


def parse_or_malformed(data: bytes) -> None:
    try:
        parse_bytes(data)
    except MailRejected as rejected:
        assert rejected.reason is RejectReason.MALFORMED


# --- Japanese and other charsets ---------------------------------------------------------------

def test_iso2022jp_with_nec_extension_characters() -> None:
    parsed = mail("iso2022jp_nec_extensions.eml")
    assert parsed.sender == Address("髙橋 一郎", "Takahashi@Example.co.jp")
    assert parsed.subject == "①会議室の予約について（㈱テスト）"
    assert parsed.body_text == "山田様\n\nお世話になっております。\n①第Ⅲ期の見積書を送付します。\n株式会社テスト　髙橋"
    assert parsed.charset_repaired is False


def test_shift_jis_body_decodes_cp932_characters() -> None:
    parsed = mail("shift_jis_cp932_body.eml")
    assert parsed.sender == Address("山﨑 花子", "h.yamasaki@example.jp")
    assert parsed.subject == "ＲＥ：請求書について"
    assert parsed.body_text == "山﨑様\n\n①請求書を添付いたしました。\n髙島屋の件もご確認ください。"
    assert parsed.charset_repaired is False


def test_euc_jp_body_with_nec_character() -> None:
    parsed = mail("euc_jp_body.eml")
    assert parsed.subject == "ログイン障害"
    assert parsed.body_text == "お問い合わせありがとうございます。\n①ログインできません。"


def test_subject_split_across_encoded_words_and_lines() -> None:
    parsed = mail("encoded_word_subject_split.eml")
    assert parsed.subject == "ＲＥ：【至急】サーバー停止のお知らせ"
    assert parsed.sender == Address("Suzuki 太郎", "suzuki@example.jp")


def test_seven_bit_jis_without_charset_is_repaired() -> None:
    parsed = mail("jis_without_charset.eml")
    assert parsed.body_text == "パスワードを忘れました。\nよろしくお願いします。"
    assert parsed.charset_repaired is True


def test_wrong_charset_declaration_is_repaired() -> None:
    parsed = mail("wrong_charset_declaration.eml")
    assert parsed.body_text == "印刷ができなくなりました。至急対応をお願いします。"
    assert parsed.charset_repaired is True


def test_utf8_declared_as_ascii_and_latin_encoded_words() -> None:
    parsed = mail("utf8_declared_as_ascii.eml")
    assert parsed.sender == Address("Jürgen Müller", "j.mueller@example.de")
    assert parsed.subject == "Grüße – Drucker"
    assert parsed.body_text == "Der Drucker im Büro druckt nur noch Streifen. Grüße"
    assert parsed.charset_repaired is True


def test_raw_8bit_headers_are_decoded() -> None:
    parsed = mail("raw_8bit_headers.eml")
    assert parsed.sender == Address("中村 優", "nakamura@example.jp")
    assert parsed.subject == "プリンタが動きません"
    assert parsed.charset_repaired is True  # the Shift_JIS subject was sent undeclared


# --- bodies ------------------------------------------------------------------------------------

def test_html_only_mail_keeps_paragraphs_lists_and_links() -> None:
    parsed = mail("html_only_list_and_link.eml")
    assert parsed.body_text == (
        "Hello support,\n\nThe portal fails on these pages:\n\n- Login\n- Reports & exports\n\n"
        "1. Open the report page <https://portal.example.com/reports>\n2. Click Export\n\n"
        "Log: https://logs.example.com/x1\nMail me at kim@example.org\n\nThanks,\nKim")
    assert "<ol>" in parsed.body_html


def test_alternative_prefers_plain_text_and_keeps_html() -> None:
    parsed = parse_bytes(_multipart("alternative", [
        ("text/plain; charset=utf-8", b"Plain words here"),
        ("text/html; charset=utf-8", b"<p>Rich <b>words</b> here</p>")]))
    assert parsed.body_text == "Plain words here"
    assert parsed.body_html == "<p>Rich <b>words</b> here</p>"
    assert parsed.attachments == ()


def test_alternative_with_empty_plain_part_uses_html() -> None:
    parsed = parse_bytes(_multipart("alternative", [
        ("text/plain; charset=utf-8", b""), ("text/html; charset=utf-8", b"<b>some html text</b>")]))
    assert parsed.body_text == "some html text"


def test_mixed_text_parts_are_joined_in_order() -> None:
    parsed = parse_bytes(_multipart("mixed", [
        ("text/plain", b"Enjoy!"), ("image/png", b"\x89PNG"), ("text/plain", b"-Martin")]))
    assert parsed.body_text == "Enjoy!\n\n-Martin"
    assert [a.filename for a in parsed.attachments] == ["attachment-1.png"]


def test_format_flowed_lines_are_joined() -> None:
    data = (b"From: a@example.com\nContent-Type: text/plain; format=flowed\n\n"
            b"This is one long \nparagraph.\n> quoted and \n> continued\n")
    assert parse_bytes(data).body_text == "This is one long paragraph.\n> quoted and continued"


# --- attachments --------------------------------------------------------------------------------

def test_rfc2231_and_rfc2047_japanese_filenames_and_inline_image() -> None:
    parsed = mail("rfc2231_japanese_filename.eml")
    assert parsed.body_text == "添付をご確認ください。"
    assert [(a.filename, a.content_type, a.inline, a.content_id) for a in parsed.attachments] == [
        ("見積書_2024年1月.pdf", "application/pdf", False, None),
        ("一覧表.xls", "application/vnd.ms-excel", False, None),
        ("attachment-3.png", "image/png", True, "logo@example.jp"),
    ]
    assert parsed.attachments[0].data == b"%PDF-1.4\n% sample\n"


def test_attached_mail_is_one_attachment_named_after_its_subject() -> None:
    inner = b"From: x@example.com\nSubject: Original question\n\nHello inside\n"
    parsed = parse_bytes(_multipart("mixed", [("text/plain", b"See attached."), ("message/rfc822", inner)]))
    assert parsed.body_text == "See attached."
    assert [(a.filename, a.content_type, a.data) for a in parsed.attachments] == [
        ("Original question.eml", "message/rfc822", inner)]


def test_header_fields() -> None:
    parsed = mail("html_only_list_and_link.eml")
    assert parsed.message_id == "html-only@example.org"
    assert parsed.sender == Address("Kim Lee", "Kim.Lee@Example.org")
    assert parsed.to == (Address("Support Team", "support@example.com"), Address("Doe, Jane", "jane@example.com"))
    assert parsed.cc == (Address("Operations", "ops@example.com"),)
    assert parsed.date == datetime(2024, 1, 5, 9, 0, tzinfo=timezone(timedelta(hours=-5)))


@pytest.mark.parametrize("header, expected", [
    ("MAILER-DAEMON (Mail Delivery System) <postmaster@example.com>", Address("MAILER-DAEMON", "postmaster@example.com")),
    ("MAILER-DAEMON@example.com (Mail Delivery System)", Address("Mail Delivery System", "MAILER-DAEMON@example.com")),
    ("'Jane Roe' <Jane.Roe@Example.com>", Address("Jane Roe", "Jane.Roe@Example.com")),
    ("=?utf-8?B?5bGx55Sw?= =?utf-8?B?5aSq6YOO?= <taro@example.jp>", Address("山田太郎", "taro@example.jp")),
])
def test_from_display_names(header: str, expected: Address) -> None:
    assert parse_bytes(f"From: {header}\n\nx\n".encode()).sender == expected


def test_recipient_placeholders_and_groups_are_not_addresses() -> None:
    parsed = parse_bytes(b"From: a@example.com\nTo: Recipients\nCc: undisclosed-recipients:;\n\nx\n")
    assert parsed.to == () and parsed.cc == ()


def test_bad_date_is_none_and_minus_zero_zone_is_utc() -> None:
    assert parse_bytes(b"From: a@example.com\nDate: yesterday-ish\n\nx").date is None
    assert parse_bytes(b"From: a@example.com\nDate: Fri, 5 Jan 2024 10:00:00 -0000\n\nx").date == \
        datetime(2024, 1, 5, 10, 0, tzinfo=timezone.utc)


def test_thirty_megabyte_mail_parses_quickly() -> None:
    blob = bytes(range(256)) * (22 * 1024 * 1024 // 256)
    data = _multipart("mixed", [("text/plain", b"big"), ("application/octet-stream", blob)], base64_parts=True)
    started = time.perf_counter()
    parsed = parse_bytes(data)
    assert time.perf_counter() - started < 2.0
    assert hashlib.md5(parsed.attachments[0].data).digest() == hashlib.md5(blob).digest()


def _multipart(subtype: str, parts: list[tuple[str, bytes]], base64_parts: bool = False) -> bytes:
    chunks = [f"From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/{subtype}; boundary=BB\n\n".encode()]
    for ctype, body in parts:
        if base64_parts and not ctype.startswith("text/"):
            chunks.append(f"--BB\nContent-Type: {ctype}\nContent-Transfer-Encoding: base64\n\n".encode()
                          + base64.encodebytes(body))
        else:
            chunks.append(f"--BB\nContent-Type: {ctype}\n\n".encode() + body + b"\n")
    return b"".join(chunks) + b"--BB--\n"
