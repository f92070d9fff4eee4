"""Agent comments to customer mail: find them, queue each once, send within the link's budget, record it."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from plugin.domain import Attachment, Link
from plugin.errors import MailRejected, RetryLater
from plugin.jira.gateway import JiraGateway
from plugin.outbound.compose import compose, new_message_id, sender_of, subject_for
from plugin.outbound.model import (
    JiraAttachment,
    JiraComment,
    Notification,
    OutboundRequest,
    Threading,
)
from plugin.outbound.recipients import AUTHOR, choose_recipients
from plugin.outbound.send import (
    MailRefused,
    can_send,
    deliver,
    finds_sent_copy,
    in_sent_folder,
    keeps_sent_copy,
    save_sent_copy,
    sent_folder_name,
)
from plugin.settings import Settings
from plugin.store.outbox import FAILED, Outbox, OutboxEntry
from plugin.store.store import Store

log = logging.getLogger(__name__)

SENT, SEND_FAILED = "sent", "send-failed"
RETRY = "retry"  # this mail waits for a later round; the others go on
LOOK_OVERLAP = timedelta(minutes=2)  # Jira's search is eventually consistent and clocks differ
MAX_REQUESTS_PER_LOOK = 200  # the rest are looked at next round, from the last one seen
AUTO_REPLY_WINDOW = timedelta(days=1)
FIRST_RETRY_S = 15.0
ATTACHED_WITHIN = timedelta(seconds=60)  # Jira stores a comment's files moments before the comment
# Jira wiki markup: [^file.pdf] links an attachment, !image.png! or !image.png|thumbnail! shows one.
_FILE_MARKUP = re.compile(r"\[\^([^\]]+)\]|!([^!|\s][^!|\n]*)(?:\|[^!\n]*)?!")


@dataclass
class OutboundReport:
    sent: int = 0
    failed: int = 0
    waiting: int = 0
    error: str | None = None

    def __str__(self) -> str:
        counts = f"{self.sent} sent, {self.failed} send-failed, {self.waiting} waiting"
        return counts + (f"; {self.error}" if self.error else "")


class Outbound:
    """One link's outbound side, for one round (poll) or one Forge event."""

    def __init__(self, settings: Settings, store: Store, jira: JiraGateway) -> None:
        self.settings, self.store, self.jira = settings, store, jira
        self.outbox = Outbox(store)

    # Queue ---------------------------------------------------------------------------------
    def consider(self, link: Link, comment: JiraComment, source: str) -> str:
        """Queue the comment's mail when it is one to send; says what became of it."""
        if not comment.public:
            return "internal comment: never mailed"
        if comment.written_by(self.jira.myself_account_id()):
            return "written by jsm-mail: never mailed back"
        queued = self.outbox.queue(link.id, comment.issue_key, comment.id, comment.created,
                                   new_message_id(link, comment.id), source)
        return "queued" if queued else "queued before"

    def look(self, link: Link, project_key: str) -> int:
        """Polling: public comments on requests of the link's desk updated since the last look; how many queued."""
        started = datetime.now(UTC)
        cursor = self.outbox.cursor(link.id)
        since = cursor.looked_at
        floor = max(since - LOOK_OVERLAP, cursor.not_before)  # history is never mailed
        issues = self.jira.updated_requests(project_key, since - LOOK_OVERLAP, MAX_REQUESTS_PER_LOOK)
        queued = 0
        for issue in issues:
            if self.outbox.owner_link(issue.key) not in (None, link.id):
                continue  # came in through another link, which answers it
            for comment in self.jira.comments_since(issue.key, floor):
                queued += self.consider(link, comment, "poll") == "queued"
        full = len(issues) >= MAX_REQUESTS_PER_LOOK
        # A full look goes on next round from its last request, past the overlap: otherwise more than a look's
        # worth of requests updated within LOOK_OVERLAP would be read again and again, and the rest never.
        self.outbox.move_cursor(link.id, max(since, issues[-1].updated + LOOK_OVERLAP if full else started))
        return queued

    # Send ----------------------------------------------------------------------------------
    def drain(self, link: Link) -> OutboundReport:
        """Send what is due, at most the link's mails per minute; a server outage ends the round."""
        report = OutboundReport()
        if not can_send(link):
            return report
        now = datetime.now(UTC)
        self._recover(link, now)
        budget = link.max_mails_per_minute - self.outbox.sent_since(link.id, now - timedelta(minutes=1))
        due = self.outbox.due(link.id, now)
        for entry in due[:max(0, budget)]:
            if not self.outbox.claim(entry.id):
                continue  # another process is sending it
            outcome = self._send(link, entry)
            if outcome is None:
                report.waiting = len(due) - report.sent - report.failed
                report.error = self._last_error(entry)
                return report
            report.sent += outcome == SENT
            report.failed += outcome == SEND_FAILED
        report.waiting = len(due) - report.sent - report.failed
        return report

    def _last_error(self, entry: OutboxEntry) -> str | None:
        now = self.outbox.entry(entry.comment_id)
        return now.last_error if now else None

    def _recover(self, link: Link, now: datetime) -> None:
        """A "sending" row whose process stopped: sent if the Sent folder has it, else sent again."""
        stale_before = now - timedelta(seconds=self.settings.sending_stale_s)  # longer than any SMTP conversation
        for entry in self.outbox.stale_sending(link.id, stale_before):
            found = False
            if finds_sent_copy(link):
                try:
                    found = in_sent_folder(link, entry.message_id, self.settings.ca_file, self.store)
                except RetryLater as later:
                    log.warning("cannot check the Sent folder link=%s: %s", link.name, later.detail)
                    continue
            if not self.outbox.claim(entry.id, stale_before=stale_before):
                continue  # another process took it over
            if found:
                self.outbox.mark_sent(entry, ())
                self.outbox.log_mail(link.id, link.name, outcome=SENT, reason=None, issue_key=entry.issue_key,
                                     message_id=entry.message_id, sender=sender_of(link).address, subject=None,
                                     detail=f"comment {entry.comment_id}: sent before an interruption, "
                                            f"found in the {sent_folder_name(link)} folder",
                                     comment_id=entry.comment_id)
                log.info("sent before an interruption link=%s comment=%s", link.name, entry.comment_id)
            else:
                self._send(link, entry)

    def _send(self, link: Link, entry: OutboxEntry) -> str | None:
        """One mail: sent, send-failed, retry (this mail later), or None when the server is unavailable."""
        try:
            return self._compose_and_send(link, entry)
        except RetryLater as later:
            after_s = min(FIRST_RETRY_S * 2 ** max(0, entry.attempts), float(self.settings.poll_interval_s))
            self.outbox.postpone(entry.id, later.detail, after_s)
            log.warning("send-waiting link=%s issue=%s comment=%s: %s", link.name, entry.issue_key,
                        entry.comment_id, later.detail)
            self.store.log_error(link.name, None, later)  # once per outage: the store drops repeats
            return None
        except MailRejected as refused:  # Jira refused a call (400): asking again gets the same answer
            settled = self.outbox.entry(entry.comment_id)
            if settled and settled.state in (SENT, FAILED):  # only our internal note was refused
                log.warning("jira refused a note link=%s issue=%s: %s", link.name, entry.issue_key, refused.detail)
                return SENT if settled.state == SENT else SEND_FAILED
            return self._failed(link, entry, None, "jira-refused", refused.detail)
        except Exception as bug:
            log.exception("internal error sending link=%s comment=%s", link.name, entry.comment_id)
            self.store.log_error(link.name, entry.message_id, bug)
            if entry.attempts + 1 >= self.settings.max_attempts:
                return self._failed(link, entry, None, "internal-error", f"gave up after {entry.attempts + 1} "
                                    "attempts that hit an internal error; the error log has the details")
            self.outbox.postpone(entry.id, f"internal error: {type(bug).__name__}", self.settings.poll_interval_s)
            return RETRY

    def _compose_and_send(self, link: Link, entry: OutboxEntry) -> str:
        request = self.jira.outbound_request(entry.issue_key)
        comment = self.jira.comment(entry.issue_key, entry.comment_id)
        sender = sender_of(link)
        if request is None or comment is None:
            what = "request" if request is None else "comment"
            return self._failed(link, entry, None, "deleted", f"the {what} was deleted before it was mailed")
        if not comment.public:
            return self._failed(link, entry, None, "internal", "the comment was made internal before it was mailed")
        since = datetime.now(UTC) - AUTO_REPLY_WINDOW
        recipients = choose_recipients(request, own=link.own_addresses, undeliverable=self.store.is_undeliverable,
                                       auto_repliers=self.outbox.auto_repliers(link.id, entry.issue_key, since),
                                       author=comment.author_email)
        if not recipients.all:
            withheld = [x for x in recipients.left_out if not x.endswith(f"({AUTHOR})")]
            if not withheld:  # nobody with an e-mail address but the author: nothing an agent must know
                return self._failed(link, entry, None, "no-recipient",
                                    "; ".join(recipients.left_out) or "nobody on the request has an e-mail address")
            left = "; ".join(withheld)
            self._note(entry.issue_key, f"This comment was not mailed: nobody to mail it to ({left}).")
            return self._failed(link, entry, None, "no-recipient", f"nobody to mail: {left}")
        customer = self.outbox.customer_mail(link.id, entry.issue_key)
        files, too_large = self._files(link, comment, request)
        note = Notification(request, comment, sender, recipients,
                            Threading(entry.message_id, customer.message_id, customer.references, customer.subject),
                            files, too_large)
        msg = compose(note, link)
        subject = subject_for(note, link.subject_style)
        try:
            delivery = deliver(link, msg, sender.address, tuple(a.address for a in recipients.all),
                               smtp_password=self.outbox.smtp_password(link.id), cafile=self.settings.ca_file,
                               links=self.store)
        except MailRefused as refused:
            self._note(entry.issue_key, f"This comment could not be mailed: {refused.detail}")
            return self._failed(link, entry, subject, "refused", refused.detail,
                                tuple(a.address for a in recipients.all))
        if delivery.accepted:  # first of all, so that a crash from here on cannot send it twice
            self.outbox.mark_sent(entry, delivery.accepted)
        for refusal in delivery.refused:
            self.outbox.mark_undeliverable(refusal.address, str(refusal.code), entry.issue_key)
        if delivery.refused:
            refused_text = ", ".join(map(str, delivery.refused))
            self._note(entry.issue_key, f"The mail of this comment was refused for {refused_text}.")
        if not delivery.accepted:
            return self._failed(link, entry, subject, "refused",
                                "every recipient refused: " + ", ".join(map(str, delivery.refused)),
                                tuple(a.address for a in recipients.all))
        if keeps_sent_copy(link):
            try:
                save_sent_copy(link, msg, self.settings.ca_file, self.store)
            except RetryLater as later:
                log.warning("sent, but no copy in the Sent folder link=%s: %s", link.name, later.detail)
        detail = [f"comment {entry.comment_id} to {', '.join(delivery.accepted)}"]
        detail += [f"left out {x}" for x in recipients.left_out]
        detail += [f"refused {r}" for r in delivery.refused]
        if files or too_large:
            detail.append(f"{len(files)} file(s) attached, {len(too_large)} named with a link (over the size cap)")
        self.outbox.log_mail(link.id, link.name, outcome=SENT, reason=None, issue_key=entry.issue_key,
                             message_id=entry.message_id, sender=sender.address, subject=subject,
                             detail="; ".join(detail), comment_id=entry.comment_id)
        log.info("sent link=%s issue=%s comment=%s message_id=%s", link.name, entry.issue_key, entry.comment_id,
                 entry.message_id)
        return SENT

    def _files(self, link: Link, comment: JiraComment,
               request: OutboundRequest) -> tuple[tuple[Attachment, ...], tuple[JiraAttachment, ...]]:
        mine = attachments_of(comment, request.attachments)
        small = [a for a in mine if a.size <= link.max_attachment_bytes]
        files = tuple(Attachment(a.filename, a.mime_type, self.jira.attachment_content(a.id)) for a in small)
        return files, tuple(a for a in mine if a.size > link.max_attachment_bytes)

    def _note(self, issue_key: str, text: str) -> None:
        """An internal comment for agents; jsm-mail's own, so never mailed."""
        self.jira.add_comment(issue_key, text, public=False)

    def _failed(self, link: Link, entry: OutboxEntry, subject: str | None, reason: str, detail: str,
                recipients: tuple[str, ...] = ()) -> str:
        self.outbox.mark_failed(entry.id, f"{reason}: {detail}", ", ".join(recipients))
        self.outbox.log_mail(link.id, link.name, outcome=SEND_FAILED, reason=reason, issue_key=entry.issue_key,
                             message_id=entry.message_id, sender=sender_of(link).address, subject=subject,
                             detail=f"comment {entry.comment_id}: {detail}", comment_id=entry.comment_id)
        log.info("send-failed link=%s issue=%s comment=%s reason=%s", link.name, entry.issue_key,
                 entry.comment_id, reason)
        return SEND_FAILED


def attachments_of(comment: JiraComment, attachments: tuple[JiraAttachment, ...]) -> tuple[JiraAttachment, ...]:
    """The files an agent attached with this comment: named in it (`[^file]`, `!image!`), or added by
    the same person within a minute of it."""
    text = comment.body + (comment.rendered_html or "")
    named = {name for pair in _FILE_MARKUP.findall(text) for name in pair if name}
    return tuple(a for a in attachments
                 if a.filename in named or (a.author_account_id and a.author_account_id == comment.author_account_id
                                            and a.created and abs(a.created - comment.created) <= ATTACHED_WITHIN))


def run_outbound(link: Link, settings: Settings, store: Store, jira: JiraGateway) -> OutboundReport | None:
    """A poll round's outbound half: look at Jira, then send what is due; None for a link that sends nothing.

    Jira or the mail server in trouble: the error log says so and the next round tries again.
    """
    outbound = Outbound(settings, store, jira)
    if can_send(link) and not sender_of(link).address:
        store.log_error(link.name, None, RetryLater(f"link {link.name} has no address to send from: "
                                                    "set its from-address"))
        outbound.outbox.hold_cursor(link.id, datetime.now(UTC))
        return OutboundReport(error=f"link {link.name} has no address to send from")
    if not can_send(link):
        # Answers written while a link cannot send are never mailed later, when it can.
        outbound.outbox.hold_cursor(link.id, datetime.now(UTC))
        return None
    try:
        outbound.look(link, jira.project_key(link.service_desk_id))
    except RetryLater as later:
        log.warning("outbound look failed link=%s: %s", link.name, later.detail)
        store.log_error(link.name, None, later)
        report = outbound.drain(link)
        report.error = report.error or later.detail
        return report
    return outbound.drain(link)


def take_comment_event(settings: Settings, store: Store, jira: JiraGateway, issue_key: str, comment_id: str) -> str:
    """A Forge comment event: queue the comment on the link that answers the request, and send it now."""
    link = link_for_issue(store, jira, issue_key)
    if link is None:
        return f"{issue_key} is not a request of a service desk linked to a mailbox that sends mail"
    comment = jira.comment(issue_key, comment_id)
    if comment is None:
        return f"comment {comment_id} of {issue_key} no longer exists"
    outbound = Outbound(settings, store, jira)
    result = outbound.consider(link, comment, "forge")
    if result in ("queued", "queued before"):
        report = outbound.drain(link)
        entry = outbound.outbox.entry(comment_id)
        return f"{result}; {entry.state if entry else 'unknown'}" + (f" ({report.error})" if report.error else "")
    return result


def link_for_issue(store: Store, jira: JiraGateway, issue_key: str) -> Link | None:
    """The link a request came in through, else the first sending link of its project's service desk."""
    candidates = [link for link in store.links() if link.enabled and can_send(link)]
    owner = Outbox(store).owner_link(issue_key)
    for link in candidates:
        if link.id == owner:
            return link
    project = issue_key.rsplit("-", 1)[0]
    return next((link for link in candidates if jira.project_key(link.service_desk_id) == project), None)
