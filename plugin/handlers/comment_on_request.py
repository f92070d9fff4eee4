"""A customer's reply as a public comment on the request it belongs to, exactly once."""
from __future__ import annotations

from plugin.context import Context
from plugin.domain import Facts, FollowUp, Outcome, OutcomeState
from plugin.handlers.people import add_participants, people_note
from plugin.handlers.recovery import Attempt, attach_or_say_why, done_parts, missing_files
from plugin.jira.gateway import Mark
from plugin.mapping.comment import comment_draft
from plugin.reply.text import reply_text


class CommentOnRequest:
    name = "comment-on-request"

    def apply(self, route: FollowUp, attempt: Attempt, ctx: Context) -> Outcome:
        mail, link, key = route.mail, ctx.link, route.issue_key
        assert mail.sender is not None, "the pipeline rejects mail without a sender first"
        info = ctx.requests.request(key)
        draft = comment_draft(mail, reply_text(mail.body_text, mail.body_html), attempt.raw.data,
                              known_people=info.people if info else frozenset(),
                              participant_count=len(info.participant_emails) if info else 0,
                              own_addresses=link.own_addresses)
        commented = "comment" in done_parts(ctx, attempt, key)
        if not commented:
            ctx.jira.add_comment(key, draft.body, public=True, mark=Mark(attempt.ledger_key, "comment"))
        # Files go after the comment they belong to, so a retry knows whether to look for them.
        public = missing_files(ctx, attempt, key, draft.attachments, anchor_done=commented)
        refused = attach_or_say_why(ctx, key, public) if public else ""
        if draft.original and missing_files(ctx, attempt, key, (draft.original,), anchor_done=commented):
            # Quoted history may name people the customer did not write to: agents only.
            refused = attach_or_say_why(ctx, key, (draft.original,), public=False) or refused
        added, skipped = add_participants(ctx, key, draft.new_participants)
        detail = [f"comment on {key}" + (" (found after an interrupted attempt)" if commented else "")]
        if draft.attachments or refused:
            detail.append(refused or f"{len(draft.attachments)} attachment(s)")
        if draft.original:
            detail.append("quoted text left out; original attached for agents")
        detail.append(people_note(added, skipped))
        facts = Facts(deliverable=(mail.sender.address,))
        return Outcome(OutcomeState.COMMENTED, key, detail="; ".join(filter(None, detail)), evidence=route.evidence,
                       facts=facts)
