"""classify: real bounces and auto-replies from the corpus, and our own samples."""
from __future__ import annotations

import email
import time
from email.header import Header
from pathlib import Path

import pytest

from plugin.classify.detectors import classify
from plugin.domain import InboundMail, MailKind, Verdict
from plugin.parse.mail import parse_bytes
from tests.corpus import CORPUS_DIR, CorpusCase, corpus_cases

MAIL_DIR = Path(__file__).parent / "mail"
SISIMAI_KIND = {"bounce": MailKind.BOUNCE, "auto_reply": MailKind.AUTO_REPLY,
                "feedback_report": MailKind.FEEDBACK_REPORT, "not_bounce": MailKind.MAIL}

# Cases that cannot pass, with the reason; never an edited expectation.
KNOWN_FAILURES = {
    "rfc3464-28.eml": "two mbox messages in one file: the parser sees only the first report",
    "lhost-fml-03.eml": "fml's 'Loop Alert: Duplicated Message-ID' notice carries no bounce signal "
                        "we read (no DSN, no daemon sender, no failure wording)",
    "sendmail_01.txt": "sendmail 'Too many hops' names zzzzz@shaft.coal.nl in the notice; flufl's "
                       "expectation is the address from the Subject only",
}

# zammad parses these like any mail, but they are bounces: RFC 3464 reports from Postfix
# (mail033, mail055, mail063, mail092) and a MAILER-DAEMON notice with a null Return-Path (mail052).
ZAMMAD_BOUNCES = {"mail033-undelivered-mail-returned-to-sender.box", "mail052.box", "mail055.box",
                  "mail063.box", "mail092.box"}


def _classify_file(path: Path, **kwargs: frozenset[str]) -> Verdict:
    return classify(parse_bytes(path.read_bytes()), **kwargs)


def _mail(headers: str, body: str = "Hello.\n") -> InboundMail:
    message = email.message_from_string(headers.strip() + "\n\n" + body)
    message.set_charset("utf-8")
    subject = message["Subject"]
    if subject is not None:
        message.replace_header("Subject", Header(subject, "utf-8").encode())
    return parse_bytes(message.as_bytes())


def _cases(corpus: str) -> list[object]:
    """The corpus' cases, the known failures marked strict xfail so that a fix shows as XPASS and fails."""
    return [pytest.param(case, id=str(case), marks=[pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[case.file])]
                         if case.file in KNOWN_FAILURES else [])
            for case in corpus_cases(corpus)]


@pytest.mark.parametrize("case", _cases("sisimai"))
def test_classifies_sisimai_mail(case: CorpusCase) -> None:
    verdict = _classify_file(case.path)
    assert verdict.kind == SISIMAI_KIND[case.expect["kind"]], verdict.evidence
    if case.expect["kind"] != "bounce":
        assert verdict.bounce is None
        return
    assert verdict.bounce is not None
    expected = case.expect["recipients"]
    assert len(verdict.bounce.recipients) == len(expected)
    if len(expected) == 1 and expected[0]["status"] and not expected[0]["status"].startswith("5.0.9"):
        # sisimai's 5.0.9xx codes are its own reason codes, not a status an MTA wrote.
        assert verdict.bounce.recipients[0].status == expected[0]["status"]


@pytest.mark.parametrize("case", _cases("flufl-bounce"))
def test_finds_flufl_bounce_recipients(case: CorpusCase) -> None:
    verdict = _classify_file(case.path)
    assert verdict.kind is MailKind.BOUNCE
    assert verdict.bounce is not None
    recipients = verdict.bounce.recipients
    assert {r.address.lower() for r in recipients if r.permanent} == \
        {a.lower() for a in case.expect["failed_recipients"]}
    assert {r.address.lower() for r in recipients if not r.permanent} == \
        {a.lower() for a in case.expect["temporary_failures"]}


def test_dsn_bounce_reads_status_and_original_message_id() -> None:
    verdict = _classify_file(CORPUS_DIR / "flufl-bounce" / "dsn_11.txt")
    assert verdict.evidence == "dsn: multipart/report delivery-status"
    assert verdict.bounce is not None
    assert verdict.bounce.original_message_id == "mailman.0.1035637201.19036.mailman-developers@python.org"
    assert [(r.address, r.status, r.permanent) for r in verdict.bounce.recipients] == \
        [("joem@example.com", "5.1.1", True)]


# Our own samples of each MTA's bounce format: (address, status, permanent) per failed recipient, in order.
MTA_BOUNCES = {
    "bounce_qmail_two_recipients.eml": [("kijitora@example.jp", "5.1.1", True),
                                        ("mikeneko@example.jp", "5.1.1", True)],
    "bounce_exchange2003.eml": [("kijitora@example.co.jp", "5.1.1", True)],
    "bounce_lotus_notes.eml": [("kijitora@notes.example.jp", "5.1.1", True)],
    "bounce_domino.eml": [("kijitora@domino.example.net", "5.1.1", True)],
    "bounce_unknown_mta_x1.eml": [("kijitora@example.co.jp", "5.1.1", True),
                                  ("mikeneko@example.co.jp", "5.1.1", True)],
    "bounce_unknown_mta_x3.eml": [("kijitora@example.com", "5.3.0", True)],
    "bounce_unknown_mta_x5_inline_fields.eml": [("kijitora@example.jp", "5.1.1", True)],
    "bounce_imail_server.eml": [("kijitora@example.com", "5.1.1", True)],
    "bounce_kddi_au.eml": [("kijitora@au.example.jp", "5.2.2", True)],
    "bounce_ezweb.eml": [("kijitora@ezweb.example.jp", "5.0.0", True)],
    "bounce_exim_two_recipients.eml": [("kijitora@example.org", "5.1.1", True),
                                       ("mikeneko@example.net", "5.2.2", True)],
    "bounce_exim_delay_warning.eml": [("kijitora@example.org", "4.2.2", False)],
    "bounce_v5sendmail.eml": [("kijitora@example.com", "5.0.0", True)],
    "bounce_postfix_without_dsn_expanded_alias.eml": [("kijitora@example.net", "5.1.1", True),
                                                      ("mikeneko@example.net", "5.2.2", True)],
    "bounce_gmail_delayed.eml": [("mailboxfull@example.jp", "4.2.2", False)],
    "bounce_dsn_delayed.eml": [("kijitora@example.com", "4.4.1", False)],
    "bounce_dsn_failed_and_delayed_rfc822_headers.eml": [("kijitora@example.com", "5.1.1", True),
                                                         ("mikeneko@example.com", "4.2.2", False)],
    "bounce_plain_could_not_be_delivered_two_blocks.eml": [("sato@partner.example", "5.1.1", True),
                                                           ("kim@partner.example", "5.2.2", True)],
    "bounce_non_delivery_report_blocks.eml": [("lee@partner.example", "5.1.1", True),
                                              ("park@partner.example", "4.2.2", False)],
    "bounce_postponed_full_mailbox.eml": [("ana.souza@partner.example", "4.2.2", False)],
    "bounce_delay_warning_delivery_continues.eml": [("omar@partner.example", None, False),
                                                    ("fatima@partner.example", None, False)],
    "bounce_failed_and_delayed_blocks.eml": [("ines@partner.example", "5.1.1", True),
                                             ("jonas@other.example", None, False)],
    "bounce_japanese_iso2022jp_two_recipients.eml": [("kijitora@example.jp", "5.1.1", True),
                                                     ("mikeneko@example.jp", "5.2.2", True)],
}


@pytest.mark.parametrize("name", sorted(MTA_BOUNCES))
def test_mta_bounce_names_each_failed_recipient_once(name: str) -> None:
    verdict = _classify_file(MAIL_DIR / name)
    assert verdict.kind is MailKind.BOUNCE, verdict.evidence
    assert verdict.bounce is not None
    assert [(r.address, r.status, r.permanent) for r in verdict.bounce.recipients] == MTA_BOUNCES[name]


@pytest.mark.parametrize("name, evidence", [
    ("autoreply_outlook_oof_en.eml", "auto-submitted: auto-generated"),
    ("autoreply_outlook_oof_ja.eml", "x-auto-response-suppress: all"),
    ("autoreply_rfc3834_vacation.eml", "auto-submitted: auto-replied"),
    ("autoreply_apple_vacation.eml", "x-apple-action: vacation"),
    ("autoreply_french_reponse_automatique.eml", "auto-submitted: auto-replied"),
    ("autoreply_german_abwesenheit.eml", "out-of-office subject, return-path <>"),
    ("autoreply_spanish_respuesta_automatica.eml", "out-of-office subject, return-path <>"),
])
def test_auto_replies_are_recognised(name: str, evidence: str) -> None:
    assert _classify_file(MAIL_DIR / name) == Verdict(MailKind.AUTO_REPLY, evidence)


@pytest.mark.parametrize("name", [
    "classify_auto_forwarded_is_mail.eml",
    "classify_precedence_list_is_mail.eml",
    "classify_out_of_office_subject_alone_is_mail.eml",
    "classify_human_writes_about_delivery_failure_is_mail.eml",
    "classify_system_notice_from_root_is_mail.eml",
])
def test_customer_mail_stays_mail(name: str) -> None:
    assert _classify_file(MAIL_DIR / name).kind is MailKind.MAIL


def test_junk_mail_complaint_with_attached_original_is_a_feedback_report() -> None:
    verdict = _classify_file(MAIL_DIR / "classify_hotmail_jmrp_complaint_is_feedback_report.eml")
    assert verdict.kind is MailKind.FEEDBACK_REPORT


def test_loop_header_is_a_loop() -> None:
    assert _classify_file(MAIL_DIR / "classify_loop_jsm_header.eml") == \
        Verdict(MailKind.LOOP, "loop: X-JSM-Mail-Loop")


def test_message_id_of_own_domain_is_a_loop() -> None:
    mail = _mail("From: a@customer.example\nMessage-ID: <x1@Desk.Example>\nSubject: hi")
    assert classify(mail, own_domains=frozenset({"desk.example"})).kind is MailKind.LOOP
    assert classify(mail).kind is MailKind.MAIL


@pytest.mark.parametrize("headers, evidence", [
    ("X-Autoreply: yes", "x-autoreply: yes"),
    ("X-Autorespond: Out of office", "x-autorespond: out of office"),
    ("Precedence: bulk", "precedence: bulk"),
    ("X-MS-Exchange-Generated-Message-Source: Auto Responder",
     "x-ms-exchange-generated-message-source: Auto Responder"),
])
def test_autoresponder_headers(headers: str, evidence: str) -> None:
    mail = _mail(f"From: a@customer.example\nSubject: Thanks\n{headers}")
    assert classify(mail) == Verdict(MailKind.AUTO_REPLY, evidence)


@pytest.mark.parametrize("subject", ["Out of Office: Printer", "Auto: Printer", "不在: プリンタ"])
def test_out_of_office_subject_needs_null_return_path(subject: str) -> None:
    headers = f"From: a@customer.example\nSubject: {subject}"
    assert classify(_mail("Return-Path: <>\n" + headers)).kind is MailKind.AUTO_REPLY
    assert classify(_mail("Return-Path: <a@customer.example>\n" + headers)).kind is MailKind.MAIL


def test_newsletter_with_precedence_bulk_is_mail() -> None:
    mail = _mail("From: news@shop.example\nSubject: Offers\nPrecedence: bulk\n"
                 "List-Unsubscribe: <mailto:unsubscribe@shop.example>")
    assert classify(mail).kind is MailKind.MAIL


def test_dsn_with_auto_submitted_is_a_bounce_not_an_auto_reply() -> None:
    path = CORPUS_DIR / "sisimai" / "rfc3464-28.eml"
    assert b"Auto-Submitted: auto-replied" in path.read_bytes()
    assert _classify_file(path).kind is MailKind.BOUNCE


def test_bare_mailer_daemon_is_never_customer_mail() -> None:
    mail = _mail("From: MAILER-DAEMON\nSubject: hello", "nothing to read here\n")
    assert classify(mail).kind is MailKind.BOUNCE


@pytest.mark.parametrize("case", corpus_cases("zammad"), ids=str)
def test_zammad_customer_mail_is_not_mistaken_for_machine_mail(case: CorpusCase) -> None:
    verdict = _classify_file(case.path)
    expected = MailKind.BOUNCE if case.file in ZAMMAD_BOUNCES else MailKind.MAIL
    assert verdict.kind is expected, verdict.evidence


@pytest.mark.parametrize("notice", [
    "Your message could not be delivered to" + " " * 50_000 + "x@example.org\n" + " " * 50_000 + "\n",
    "-" * 50_000 + "\n" + "Your message could not be delivered to x@example.org.\n",
    "Your message could not be delivered.\n" + "".join(f"  user{i}@example.org\n" for i in range(2_000)),
    "\n" * 50_000 + "Your message could not be delivered to x@example.org.\n",
])
def test_bounce_notice_is_read_in_linear_time(notice: str) -> None:
    data = ("From: MAILER-DAEMON@mx.example.org\nTo: support@desk.example\nSubject: Undelivered Mail\n"
            "Content-Type: text/plain\n\n" + notice).encode()
    started = time.perf_counter()
    verdict = classify(parse_bytes(data))
    assert time.perf_counter() - started < 3.0
    assert verdict.kind is MailKind.BOUNCE and verdict.bounce is not None and verdict.bounce.recipients


def test_html_bounce_notice_is_read_with_the_body_html_reader() -> None:
    data = (b"From: MAILER-DAEMON@mx.example.org\nTo: support@desk.example\nSubject: Undelivered Mail\n"
            b"Content-Type: text/html\n\n<div><p>Your message could not be delivered to</p>"
            b"<p>&lt;lena@partner.example&gt;: 550 5.1.1 user unknown</p></div>")
    verdict = classify(parse_bytes(data))
    assert verdict.bounce is not None
    assert [(r.address, r.status, r.permanent) for r in verdict.bounce.recipients] == [
        ("lena@partner.example", "5.1.1", True)]


@pytest.mark.parametrize("name, evidence", [
    ("sender_empty_angle_from_reply_to.eml", "sender: from Reply-To, the From has no usable address"),
    ("headers_after_forwarding_banner.eml", "headers: 1 line(s) before the header section skipped"),
])
def test_customer_mail_read_after_a_repair_carries_it_as_evidence(name: str, evidence: str) -> None:
    verdict = _classify_file(MAIL_DIR / name)
    assert verdict == Verdict(MailKind.MAIL, evidence)
