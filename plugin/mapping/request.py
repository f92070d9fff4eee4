"""Mail -> RequestDraft: summary, description, reporter, participants, attachments."""
from __future__ import annotations

from plugin.domain import Address, Attachment, InboundMail, RequestDraft
from plugin.mapping.summary import summary_from
from plugin.mapping.wiki import JIRA_TEXT_FIELD_LIMIT, escape_wiki

FULL_BODY_FILENAME = "full-mail-text.txt"
_TRUNCATION_NOTE = "\n\n----\n_(The mail was longer than Jira allows; the full text is attached as {name}.)_"
_REFERENCE_LINE = "\n\n{{color:#97a0af}}Mail reference: {reference}{{color}}"


def description_from(body_text: str, reference: str | None = None) -> tuple[str, Attachment | None]:
    """The body as wiki markup, cut below Jira's field limit (the full text attached when cut),
    ending with the mail's reference when there is one."""
    text = body_text.strip()
    description = escape_wiki(text)
    footer = _REFERENCE_LINE.format(reference=reference) if reference else ""
    room = JIRA_TEXT_FIELD_LIMIT - len(footer)
    if len(description) <= room:
        return description + footer, None
    note = _TRUNCATION_NOTE.format(name=FULL_BODY_FILENAME)
    cut = description[:room - len(note)]
    cut = cut.removesuffix("\\")  # never leave half an escape
    full = Attachment(FULL_BODY_FILENAME, "text/plain; charset=utf-8", text.encode("utf-8"))
    return cut + note + footer, full


def participants_from(mail: InboundMail, own_addresses: frozenset[str]) -> tuple[Address, ...]:
    """Cc'd people, without our own mailbox, the sender, or anyone listed twice."""
    seen = {a.lower() for a in own_addresses}
    if mail.sender:
        seen.add(mail.sender.address.lower())
    people = []
    for person in mail.cc:
        key = person.address.lower()
        if key not in seen:
            seen.add(key)
            people.append(person)
    return tuple(people)


def request_draft(mail: InboundMail, own_addresses: frozenset[str], reference: str | None = None) -> RequestDraft:
    """The request a mail raises; `reference` (the mail's identity in Jira) ends the description."""
    assert mail.sender is not None, "the pipeline rejects mail without a sender first"
    description, full_text = description_from(mail.body_text, reference)
    return RequestDraft(
        summary=summary_from(mail.subject, mail.body_text),
        description=description,
        reporter=mail.sender,
        participants=participants_from(mail, own_addresses),
        attachments=mail.attachments + ((full_text,) if full_text else ()),
    )
