"""Mail -> CommentDraft: who wrote it, what they wrote, who joins the request."""
from __future__ import annotations

from plugin.domain import Address, Attachment, CommentDraft, InboundMail
from plugin.mapping.wiki import JIRA_TEXT_FIELD_LIMIT, escape_wiki

MAX_PARTICIPANTS = 50  # JSM refuses more participants on one request
ORIGINAL_FILENAME = "original-mail.eml"


def author_line(sender: Address) -> str:
    """Comments are authored by the add-on's account, so the text says who wrote the mail."""
    name = escape_wiki(sender.name) if sender.name else ""
    return f"*{name}* ({sender.address}) wrote:" if name else f"*{sender.address}* wrote:"


def comment_draft(mail: InboundMail, reply: str, raw: bytes, *, known_people: frozenset[str],
                  participant_count: int, own_addresses: frozenset[str]) -> CommentDraft:
    """The comment for a reply; the whole mail is attached when quote stripping removed text."""
    assert mail.sender is not None, "the pipeline rejects mail without a sender first"
    stripped = reply.strip() != mail.body_text.strip()
    body = (escape_wiki(reply.strip()) if reply.strip()
            else "_(No new text in this mail; the original is attached for agents.)_")
    newcomers = _newcomers(mail, known_people | own_addresses)
    room = max(MAX_PARTICIPANTS - participant_count, 0)
    added, left_out = newcomers[:room], newcomers[room:]
    lines = [author_line(mail.sender), "", body]
    if left_out:
        lines += ["", "_Also in Cc (not added: the request has reached 50 participants):_ "
                  + ", ".join(p.address for p in left_out)]
    text = "\n".join(lines)
    if len(text) > JIRA_TEXT_FIELD_LIMIT:
        text = text[:JIRA_TEXT_FIELD_LIMIT - 80].rstrip("\\") + "\n\n_(Cut to fit Jira; see the attached original.)_"
        stripped = True
    original = Attachment(ORIGINAL_FILENAME, "message/rfc822", raw) if stripped or not reply.strip() else None
    return CommentDraft(body=text, author=mail.sender, new_participants=tuple(added), attachments=mail.attachments,
                        original=original)


def _newcomers(mail: InboundMail, known: frozenset[str]) -> list[Address]:
    """The sender and Cc'd people who are not yet on the request, each once."""
    seen = {a.lower() for a in known}
    people = []
    for person in (*((mail.sender,) if mail.sender else ()), *mail.cc):
        key = person.address.lower()
        if key not in seen:
            seen.add(key)
            people.append(person)
    return people
