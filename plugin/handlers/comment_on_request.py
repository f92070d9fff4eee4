"""A customer's reply as a public comment on the request it belongs to."""
from __future__ import annotations

from plugin.context import Context
from plugin.domain import FollowUp, Outcome, OutcomeState, RawMail
from plugin.handlers.people import add_participants, people_note
from plugin.mapping.comment import comment_draft
from plugin.reply.text import reply_text
from plugin.handlers.recovery import already_on_issue
from plugin.route.rules import remember_for_threading


class CommentOnRequest:
    name = "comment-on-request"

    def apply(self, route: FollowUp, raw: RawMail, ctx: Context) -> Outcome:
        mail, link, key = route.mail, ctx.link, route.issue_key
        if already_on_issue(ctx, mail, key):
            return Outcome(OutcomeState.COMMENTED, key, detail=f"comment on {key} (found after an interrupted attempt)",
                           evidence=route.evidence)
        info = ctx.request(key)
        known = frozenset(info.participant_emails | {(info.reporter_email or "").lower()}) if info else frozenset()
        draft = comment_draft(mail, reply_text(mail.body_text, mail.body_html), raw.data, known_people=known,
                              participant_count=len(info.participant_emails) if info else 0,
                              own_addresses=link.own_addresses)
        if draft.attachments:
            ctx.jira.attach(link.service_desk_id, key, draft.attachments)
        if draft.original:
            # Quoted history may name people the customer did not write to: agents only.
            ctx.jira.attach(link.service_desk_id, key, (draft.original,), public=False)
        ctx.jira.add_comment(key, draft.body, public=True, ledger_key=mail.ledger_id)
        added, skipped = add_participants(ctx, key, draft.new_participants)
        ctx.store.clear_undeliverable(mail.sender.address)
        remember_for_threading(ctx, mail, key, "commented")
        detail = [f"comment on {key}"]
        if draft.attachments:
            detail.append(f"{len(draft.attachments)} attachment(s)")
        if draft.original:
            detail.append("quoted text left out; original attached for agents")
        detail.append(people_note(added, skipped))
        return Outcome(OutcomeState.COMMENTED, key, detail="; ".join(filter(None, detail)), evidence=route.evidence)
