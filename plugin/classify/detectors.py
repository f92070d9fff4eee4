"""Customer mail, auto-reply, bounce, feedback report or loop: a verdict with its evidence."""
from __future__ import annotations

import re
from collections.abc import Callable
from email.message import Message

from plugin.classify.bounce import (
    dsn_parts,
    looks_like_notice,
    looks_machine_written,
    read_dsn,
    read_mta_bounce,
    read_ses_notification,
    report_of,
)
from plugin.domain import CUSTOMER_MAIL, InboundMail, MailKind, Verdict
from plugin.mapping.summary import strip_reply_prefix
from plugin.route.jira_ids import jira_issue_id

Detector = Callable[[InboundMail, frozenset[str]], Verdict | None]

LOOP_HEADERS = ("X-JSM-Mail-Loop", "X-JIRA-FingerPrint")
# De-facto auto-responder headers (vacation programs, hosted mail, ticket systems).
AUTORESPONDER_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Mail-Autoreply")
_DAEMON_SENDER = re.compile(r"^(?:mailer[-_]?daemon|mail[-_]?daemon|mdaemon|double-bounce)(?:@|$)", re.IGNORECASE)
_DAEMON_NAME = re.compile(r"mail delivery (?:system|subsystem|service)|mailer[-_ ]?daemon|"
                          r"mail administrator|postmaster", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|non[- ]?deliver|not (?:be )?delivered|delivery (?:status notification|failure|"
    r"failed|has failed|notification|problem|report)|returned mail|return(?:ed)? to sender|failure notice|"
    r"mail delivery failed|delivery error|could not (?:be )?(?:sent|delivered)|error sending your mail|"
    r"mail system error|delivery status|message not delivered|warning: could not send|"
    r"delivery (?:delayed|postponed|deferred)|delayed (?:mail|delivery)|(?:mail|message) delivery postponed|"
    r"不達|配信(?:不能|エラー|失敗|できません)|送信(?:エラー|できません)|エラーメール|届きません",
    re.IGNORECASE)
_BARE_DAEMON = re.compile(r"^\W*(?:mailer[-_ ]?daemon|mail delivery (?:system|subsystem))\W*(?:<>)?$", re.IGNORECASE)
_SENDER_LIKE_POSTMASTER = re.compile(r"^(?:postmaster|mailer|mail-?daemon|bounces?|mdaemon)[@+]",
                                     re.IGNORECASE)
_OUT_OF_OFFICE_SUBJECT = re.compile(
    r"out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response)|^\s*auto:|"
    r"away from (?:my|the) (?:mail|office)|on vacation|abwesenheit|absence|自動(?:応答|返信)|不在|"
    r"r[ée]ponse automatique|respuesta autom[áa]tica|risposta automatica|resposta autom[áa]tica|"
    r"automatische antwort|automatisch antwoord|autosvar|automaattinen vastaus|automatyczna odpowied[źz]|"
    r"автоответ|自动回复|자동 ?응답", re.IGNORECASE)
# sisimai's RFC 3834 reader leaves these alone: cron and sudo mail from root is a system notice.
_SYSTEM_SENDER = re.compile(r"^root@", re.IGNORECASE)
_SYSTEM_SUBJECT = re.compile(r"security information for", re.IGNORECASE)
# Microsoft's Junk Mail Reporting Program and Amazon SES mail complaints as multipart/mixed, not ARF.
_COMPLAINT_SUBJECT = re.compile(r"^complaint about message from ", re.IGNORECASE)
_EXCHANGE_AUTO_SOURCE = re.compile(r"auto ?respon|oof|out of office", re.IGNORECASE)


def _header(mail: InboundMail, name: str) -> str | None:
    value = mail.header(name)
    return None if value is None else " ".join(value.split())


def _report_type(msg: Message) -> str:
    """The report-type parameter of a multipart/report (RFC 6522), lower-cased."""
    value = msg.get_param("report-type")
    return value.lower() if isinstance(value, str) else ""


def detect_loop_header(mail: InboundMail, own_domains: frozenset[str]) -> Verdict | None:
    """Our own notification or Jira's, come back to the mailbox it was sent from."""
    for name in LOOP_HEADERS:
        if mail.header(name) is not None:
            return Verdict(MailKind.LOOP, f"loop: {name}")
    return None


def detect_own_message_id(mail: InboundMail, own_domains: frozenset[str]) -> Verdict | None:
    """A Message-ID minted in one of our domains: mail we sent, whatever else it says."""
    domain = (mail.message_id or "").rpartition("@")[2].lower()
    if domain and domain in {d.lower() for d in own_domains}:
        return Verdict(MailKind.LOOP, f"loop: message-id @{domain}")
    return None


def detect_jira_message_id(mail: InboundMail, own_domains: frozenset[str]) -> Verdict | None:
    """Jira's own notification (Message-ID JIRA.{issue-id}.{created-millis}...@host) in the mailbox."""
    if jira_issue_id(mail.message_id):
        return Verdict(MailKind.LOOP, f"loop: Jira notification <{mail.message_id}>")
    return None


def detect_feedback_report(mail: InboundMail, own_domains: frozenset[str]) -> Verdict | None:
    """RFC 5965 Abuse Reporting Format: a complaint about our mail, not a request."""
    msg = mail.message
    if msg.get_content_type() == "multipart/report" and _report_type(msg) == "feedback-report":
        return Verdict(MailKind.FEEDBACK_REPORT, "arf: multipart/report feedback-report")
    if any(part.get_content_type() == "message/feedback-report" for part in msg.walk()):
        return Verdict(MailKind.FEEDBACK_REPORT, "arf: message/feedback-report")
    if _COMPLAINT_SUBJECT.match(mail.subject) and \
            any(part.get_content_type() == "message/rfc822" for part in msg.walk()):
        return Verdict(MailKind.FEEDBACK_REPORT, "complaint: junk mail report with the original attached")
    return None


def detect_delivery_status(mail: InboundMail, own_domains: frozenset[str]) -> Verdict | None:
    """RFC 3464 delivery status notification, whatever Auto-Submitted says (RFC 3834 section 5)."""
    msg = mail.message
    is_report = msg.get_content_type() == "multipart/report" and _report_type(msg) == "delivery-status"
    if not dsn_parts(msg):
        return None if not is_report else _mta_bounce(mail, "dsn: multipart/report without status part")
    recipients = read_dsn(msg)
    if not recipients:
        return _mta_bounce(mail, "dsn: delivery-status without recipients")
    # RFC 3464 section 2.3.3: a report whose every recipient was delivered is a success notice; it
    # is still machine mail about our message, recorded with the bounces and never a request.
    if all(r.status and r.status.startswith("2") for r in recipients):
        evidence = "dsn: success report, no failed recipient"
    else:
        evidence = "dsn: multipart/report delivery-status" if is_report else "dsn: message/delivery-status"
    return Verdict(MailKind.BOUNCE, evidence, report_of(msg, recipients))


def detect_ses_notification(mail: InboundMail, own_domains: frozenset[str]) -> Verdict | None:
    """Amazon SES bounce, delivery and complaint notices, JSON mailed by Amazon SNS."""
    notice = read_ses_notification(mail.message)
    if notice is None:
        return None
    kind, report = notice
    if kind == "Complaint":
        return Verdict(MailKind.FEEDBACK_REPORT, "ses: complaint notification")
    return Verdict(MailKind.BOUNCE, f"ses: {kind.lower()} notification", report)


def _mta_bounce(mail: InboundMail, evidence: str) -> Verdict:
    return Verdict(MailKind.BOUNCE, evidence, report_of(mail.message, read_mta_bounce(mail.message)))


def detect_mta_bounce(mail: InboundMail, own_domains: frozenset[str]) -> Verdict | None:
    """A bounce in an MTA's own words (qmail, Exim, sendmail, Exchange, carriers' gateways)."""
    sender = mail.sender.address if mail.sender else ""
    raw_from = " ".join((mail.header("From") or "").split())
    if _DAEMON_SENDER.match(sender) or _BARE_DAEMON.match(raw_from):
        # A mailer daemon never writes customer mail, even when its notice names nobody we can read.
        return _mta_bounce(mail, f"bounce: from {sender or raw_from}")
    # RFC 5321 section 4.5.5: notifications are sent with a null reverse-path.
    return_path = (mail.header("Return-Path") or "x").strip().strip("<>")
    machine_sender = bool(_DAEMON_NAME.search(raw_from) or _SENDER_LIKE_POSTMASTER.match(sender)
                          or not return_path or _DAEMON_SENDER.match(return_path))
    subject = mail.subject.strip()
    # A person replying to or forwarding a bounce writes "Re:"/"Fwd:" before its subject.
    bounce_subject = bool(_BOUNCE_SUBJECT.search(subject)) and strip_reply_prefix(subject) == subject
    if not (machine_sender or bounce_subject):
        return None  # reading the notice text could not make it a bounce
    notice = looks_like_notice(mail.message)
    # A person may write that their mail was not delivered; only an MTA adds status codes or the original.
    if not ((machine_sender and (bounce_subject or notice))
            or (bounce_subject and notice and looks_machine_written(mail.message))):
        return None
    signal = "subject" if bounce_subject else "notice"
    verdict = _mta_bounce(mail, f"bounce: {signal} from {sender or raw_from}")
    return verdict if verdict.bounce and verdict.bounce.recipients else None


def detect_system_notice(mail: InboundMail, own_domains: frozenset[str]) -> Verdict | None:
    """Mail from root (cron, sudo's security notice): a system's report for people, never an auto-reply."""
    sender = mail.sender.address if mail.sender else ""
    if _SYSTEM_SENDER.match(sender) or _SYSTEM_SUBJECT.search(mail.subject):
        return Verdict(MailKind.MAIL, f"system notice from {sender or 'a system'}, not an auto-reply")
    return None


def detect_auto_submitted(mail: InboundMail, own_domains: frozenset[str]) -> Verdict | None:
    """RFC 3834 section 5: Auto-Submitted other than "no"; "auto-forwarded" is a person's own rule."""
    value = _header(mail, "Auto-Submitted")
    keyword = (value or "").split(";")[0].strip().lower()
    if keyword and keyword not in ("no", "auto-forwarded"):
        return Verdict(MailKind.AUTO_REPLY, f"auto-submitted: {keyword}")
    return None


def detect_autoresponder_header(mail: InboundMail, own_domains: frozenset[str]) -> Verdict | None:
    """X-Autoreply and its kin, set by vacation programs and hosted auto-responders."""
    for name in AUTORESPONDER_HEADERS:
        value = _header(mail, name)
        if value is not None and value.lower() not in ("no", "false", "0"):
            return Verdict(MailKind.AUTO_REPLY, f"{name.lower()}: {value.lower() or 'present'}")
    if (_header(mail, "X-Autogenerated") or "").lower() == "reply":
        return Verdict(MailKind.AUTO_REPLY, "x-autogenerated: reply")
    # Apple Mail's vacation rule.
    if (_header(mail, "X-Apple-Action") or "").lower() == "vacation":
        return Verdict(MailKind.AUTO_REPLY, "x-apple-action: vacation")
    return None


def detect_precedence(mail: InboundMail, own_domains: frozenset[str]) -> Verdict | None:
    """Precedence: junk/bulk/auto_reply, as vacation programs send (RFC 3834 section 2)."""
    value = (_header(mail, "Precedence") or "").lower()
    # "list", and "bulk" with RFC 2369 list headers, is a mailing list or newsletter a person
    # subscribed to: mail someone chose to send us, not a robot answering ours.
    if value == "bulk" and (mail.header("List-Id") or mail.header("List-Unsubscribe")):
        return None
    if value in ("bulk", "junk", "auto_reply", "auto-reply"):
        return Verdict(MailKind.AUTO_REPLY, f"precedence: {value}")
    return None


def detect_exchange_auto_response(mail: InboundMail, own_domains: frozenset[str]) -> Verdict | None:
    """Exchange marks what its rules and out-of-office assistant send."""
    suppress = (_header(mail, "X-Auto-Response-Suppress") or "").lower()
    # [MS-OXCMAIL] 2.2.3.2.20: an OOF or auto-reply asks not to be answered automatically in turn.
    if any(flag in suppress.replace(",", " ").split() for flag in ("all", "oof", "autoreply")):
        return Verdict(MailKind.AUTO_REPLY, f"x-auto-response-suppress: {suppress}")
    if mail.header("X-MS-Exchange-Inbox-Rules-Loop") is not None:
        return Verdict(MailKind.AUTO_REPLY, "x-ms-exchange-inbox-rules-loop")
    source = _header(mail, "X-MS-Exchange-Generated-Message-Source") or ""
    if _EXCHANGE_AUTO_SOURCE.search(source):
        return Verdict(MailKind.AUTO_REPLY, f"x-ms-exchange-generated-message-source: {source}")
    return None


def detect_out_of_office_subject(mail: InboundMail, own_domains: frozenset[str]) -> Verdict | None:
    """An out-of-office subject, trusted only with a sign of machine mail: a null Return-Path
    (RFC 3834 section 3.3) or an Exchange auto-response header."""
    if not _OUT_OF_OFFICE_SUBJECT.search(mail.subject):
        return None
    if (mail.header("Return-Path") or "").strip() == "<>":
        return Verdict(MailKind.AUTO_REPLY, "out-of-office subject, return-path <>")
    if mail.header("X-Auto-Response-Suppress") is not None:
        return Verdict(MailKind.AUTO_REPLY, "out-of-office subject, x-auto-response-suppress")
    return None


# First hit wins. Our own mail first, then delivery reports (a DSN may also say
# Auto-Submitted: auto-replied, RFC 3834 section 5), then system notices, then auto-replies.
DETECTORS: tuple[Detector, ...] = (
    detect_loop_header,
    detect_own_message_id,
    detect_jira_message_id,
    detect_feedback_report,
    detect_delivery_status,
    detect_ses_notification,
    detect_mta_bounce,
    detect_system_notice,
    detect_auto_submitted,
    detect_autoresponder_header,
    detect_precedence,
    detect_exchange_auto_response,
    detect_out_of_office_subject,
)


def classify(mail: InboundMail, *, own_domains: frozenset[str] = frozenset()) -> Verdict:
    """The first detector that recognises the mail decides; otherwise it is customer mail."""
    for detect in DETECTORS:
        if verdict := detect(mail, own_domains):
            return verdict
    # A repaired header section or a sender read from another field is evidence worth keeping.
    return Verdict(MailKind.MAIL, "; ".join(mail.repairs)) if mail.repairs else CUSTOMER_MAIL
