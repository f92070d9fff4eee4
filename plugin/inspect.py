"""What the product understands of one .eml, as the stable JSON of `jsm-mail inspect`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from plugin.classify.detectors import classify
from plugin.domain import Address, InboundMail, MailKind, MailRef, Verdict
from plugin.errors import MailRejected
from plugin.mapping.request import description_from
from plugin.mapping.summary import summary_from
from plugin.parse import budget
from plugin.parse.budget import TookTooLong
from plugin.parse.mail import parse_bytes
from plugin.reply.text import reply_text
from plugin.route.rules import issue_keys_in

# A loop is our own mail coming back; the inspect JSON reports it as an automatic reply.
_INSPECT_KIND = {MailKind.LOOP: "auto_reply"}


def _address(a: Address | None) -> dict[str, str] | None:
    return None if a is None else {"name": a.name, "address": a.address}


def _mail_json(file: str, mail: InboundMail, verdict: Verdict) -> dict[str, Any]:
    bounce = verdict.bounce
    return {
        "file": file,
        "message_id": mail.message_id,
        "from": _address(mail.sender),
        "reply_to": [_address(a) for a in mail.reply_to],
        "to": [_address(a) for a in mail.to],
        "cc": [_address(a) for a in mail.cc],
        "subject": mail.subject,
        "date": mail.date.isoformat() if mail.date else None,
        "kind": _INSPECT_KIND.get(verdict.kind, verdict.kind.value),
        "reason": verdict.evidence,
        "summary": summary_from(mail.subject, mail.body_text),
        "description": description_from(mail.body_text)[0],
        "body_text": mail.body_text,
        "reply_text": reply_text(mail.body_text, mail.body_html),
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size,
                         "md5": a.md5, "inline": a.inline, "content_id": a.content_id}
                        for a in mail.attachments],
        "bounce": None if bounce is None else {
            "recipients": [{"address": r.address, "status": r.status, "permanent": r.permanent}
                           for r in bounce.recipients],
            "original_message_id": bounce.original_message_id},
        "thread": {"in_reply_to": mail.thread.in_reply_to, "references": list(mail.thread.references),
                   "issue_keys": issue_keys_in(mail.subject),
                   "thread_index": mail.thread.thread_index},
        "charset_repaired": mail.charset_repaired,
    }


def _invalid_json(file: str, reason: str) -> dict[str, Any]:
    return {"file": file, "message_id": None, "from": None, "reply_to": [], "to": [], "cc": [],
            "subject": "", "date": None, "kind": "invalid", "reason": reason, "summary": "",
            "description": "", "body_text": "", "reply_text": "", "attachments": [], "bounce": None,
            "thread": {"in_reply_to": None, "references": [], "issue_keys": [], "thread_index": None},
            "charset_repaired": False}


def inspect_file(path: Path, time_budget_s: float | None = budget.DEFAULT_SECONDS) -> dict[str, Any]:
    """Parse and classify one file; never raises for a bad mail (its kind is then `invalid`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _invalid_json(str(path), f"unreadable: {exc.strerror}")
    try:
        with budget.reading(time_budget_s):
            return _inspect(path, data)
    except TookTooLong as slow:
        return _invalid_json(str(path), f"{slow.reason.value}: {slow.detail}")


def _inspect(path: Path, data: bytes) -> dict[str, Any]:
    try:
        mail = parse_bytes(data, MailRef(link_id=0, uid=path.name, size_bytes=len(data)))
    except TookTooLong:
        raise
    except MailRejected as rejected:
        return _invalid_json(str(path), rejected.reason.value)
    verdict = classify(mail)
    if verdict.kind is MailKind.MAIL and (mail.sender is None or "@" not in mail.sender.address):
        return _mail_json(str(path), mail, verdict) | {"kind": "invalid", "reason": "missing-from"}
    return _mail_json(str(path), mail, verdict)
