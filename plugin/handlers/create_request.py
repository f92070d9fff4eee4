"""A new customer request from a mail, exactly once even across crashes and retries."""
from __future__ import annotations

from plugin.context import Context
from plugin.domain import Facts, NewRequest, Outcome, OutcomeState
from plugin.errors import RejectReason, RetryLater
from plugin.handlers.people import accounts_of, people_note
from plugin.handlers.recovery import (
    Attempt,
    attach_or_say_why,
    done_parts,
    earlier_request,
    mail_reference,
    missing_files,
)
from plugin.jira.gateway import Mark
from plugin.mapping.request import request_draft


class CreateRequest:
    name = "create-request"

    def apply(self, route: NewRequest, attempt: Attempt, ctx: Context) -> Outcome:
        mail, link = route.mail, ctx.link
        assert mail.sender is not None, "the pipeline rejects mail without a sender first"
        reference = mail_reference(link.id, attempt.ledger_key)
        draft = request_draft(mail, link.own_addresses, reference)
        key = earlier_request(ctx, attempt, reference)
        recovered = key is not None
        added: list[str] = []
        skipped: list[str] = []
        if key is None:
            over = self._over_budget(ctx, mail.sender.address)
            if over:
                return Outcome(OutcomeState.REJECTED, reason=RejectReason.SENDER_QUARANTINED, detail=over,
                               facts=Facts(quarantine=mail.sender.address))
            reporter_id = ctx.customers.reporter(draft.reporter)
            participant_ids, added, skipped = accounts_of(ctx, draft.participants)
            key = ctx.jira.create_request(link.service_desk_id, link.request_type_id, draft.summary,
                                          draft.description, reporter_id, participant_ids).key
        refused = ""
        try:
            files = missing_files(ctx, attempt, key, draft.attachments, anchor_done=recovered)
            if files:
                refused = attach_or_say_why(ctx, key, files)
            if route.related_key:
                self._relate(ctx, attempt, route, key)
        except RetryLater:
            ctx.store.note_issue_key(link.id, attempt.ledger_key, key)  # the retry goes on with this request
            raise
        detail = [f"new request {key}" + (" (found after an interrupted attempt)" if recovered else "")]
        if route.related_key:
            detail.append(f"linked to {route.related_key}")
        if draft.attachments:
            detail.append(refused or f"{len(draft.attachments)} attachment(s)")
        detail.append(people_note(added, skipped))
        # Recorded once, whichever attempt made the request: the record step runs once per mail.
        facts = Facts(new_request_by=mail.sender.address, deliverable=(mail.sender.address,))
        return Outcome(OutcomeState.CREATED, key, detail="; ".join(filter(None, detail)), evidence=route.evidence,
                       facts=facts)

    @staticmethod
    def _over_budget(ctx: Context, sender: str) -> str | None:
        """Stop a storm: past the per-sender budget of new requests, the sender is quarantined."""
        link = ctx.link
        used = ctx.store.count_new_requests(link.id, sender, link.sender_budget_window_s)
        if used < link.sender_budget:
            return None
        hours = link.sender_budget_window_s / 3600
        return (f"{sender} raised {used} requests within {hours:g} h (budget {link.sender_budget}); "
                "quarantined until released in the admin log")

    @staticmethod
    def _relate(ctx: Context, attempt: Attempt, route: NewRequest, key: str) -> None:
        """Link the new request to the one the mail came from, with a note for agents on both."""
        related = route.related_key
        assert related is not None
        if "related-note" not in done_parts(ctx, attempt, related):
            ctx.jira.link_issues(related, key)  # Jira keeps one link of a type between two issues
            ctx.jira.add_comment(related, f"A mail that belongs to this request was raised as {key} "
                                 f"instead of a comment: {route.evidence}", public=False,
                                 mark=Mark(attempt.ledger_key, "related-note"))
        if "follows-note" not in done_parts(ctx, attempt, key):
            ctx.jira.add_comment(key, f"This request follows {related}: {route.evidence}", public=False,
                                 mark=Mark(attempt.ledger_key, "follows-note"))
