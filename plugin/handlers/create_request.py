"""A new customer request from a mail, exactly once even across crashes and retries."""
from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta

from plugin.context import Context
from plugin.domain import Access, NewRequest, Outcome, OutcomeState, RawMail
from plugin.errors import MailRejected, RejectReason
from plugin.handlers.people import add_participants, people_note
from plugin.mapping.request import request_draft
from plugin.policy import spend_new_request_budget
from plugin.route.rules import remember_for_threading

log = logging.getLogger(__name__)
FAULT_EXIT_AFTER_CREATE = "exit-after-jira-create"


class CreateRequest:
    name = "create-request"

    def apply(self, route: NewRequest, raw: RawMail, ctx: Context) -> Outcome:
        mail, link = route.mail, ctx.link
        entry = ctx.store.ledger_entry(link.id, mail.ledger_id)
        draft = request_draft(mail, link.own_addresses)
        reporter_id = ctx.jira.customer_account_id(link.service_desk_id, draft.reporter,
                                                   create=link.access is Access.OPEN)
        if reporter_id is None:
            raise MailRejected(RejectReason.SENDER_NOT_CUSTOMER,
                               f"{draft.reporter.address} is not a customer of this service desk, "
                               f"and link {link.name} accepts mail from customers only")
        key = entry.issue_key if entry else None
        recovered = key is not None
        if key is None and entry and entry.attempts > 1:
            key = self._find_earlier_attempt(ctx, mail.ledger_id, reporter_id, draft.summary, entry.started_at)
            recovered = key is not None
        if key is None:
            spend_new_request_budget(mail, ctx)
            key = ctx.jira.create_request(link.service_desk_id, link.request_type_id, draft.summary,
                                          draft.description, reporter_id, mail.ledger_id).key
            if ctx.settings.fault == FAULT_EXIT_AFTER_CREATE:
                os._exit(70)
            ctx.store.note_new_request(link.id, draft.reporter.address)
        ctx.store.note_progress(link.id, mail.ledger_id, key)
        ctx.store.clear_undeliverable(draft.reporter.address)

        added, skipped = add_participants(ctx, key, draft.participants)
        if draft.attachments:
            ctx.jira.attach(link.service_desk_id, key, draft.attachments)
        if route.related_key and not recovered:
            self._relate(ctx, route, key)
        remember_for_threading(ctx, mail, key, "created")
        detail = [f"new request {key}" + (" (found after an interrupted attempt)" if recovered else "")]
        if route.related_key:
            detail.append(f"linked to {route.related_key}")
        if draft.attachments:
            detail.append(f"{len(draft.attachments)} attachment(s)")
        detail.append(people_note(added, skipped))
        return Outcome(OutcomeState.CREATED, key, detail="; ".join(filter(None, detail)), evidence=route.evidence)

    @staticmethod
    def _relate(ctx: Context, route: NewRequest, key: str) -> None:
        """Link the new request to the one the mail came from, with a note for agents on both."""
        ctx.jira.link_issues(route.related_key, key)
        ctx.jira.add_comment(route.related_key, f"A mail that belongs to this request was raised as {key} "
                             f"instead of a comment: {route.evidence}", public=False)
        ctx.jira.add_comment(key, f"This request follows {route.related_key}: {route.evidence}", public=False)

    @staticmethod
    def _find_earlier_attempt(ctx: Context, ledger_id: str, reporter_id: str, summary: str,
                              started_at: datetime) -> str | None:
        """The request an interrupted attempt created: by its ledger tag, else by reporter and summary."""
        found = ctx.jira.find_by_ledger_key(ctx.project_key, ledger_id)
        if found:
            return found.key
        since = started_at - timedelta(minutes=1)
        for issue, issue_summary in ctx.jira.requests_by_reporter_since(ctx.project_key, reporter_id, since):
            if issue_summary == summary:
                log.warning("request %s matched an interrupted attempt by reporter and summary", issue.key)
                return issue.key
        return None
