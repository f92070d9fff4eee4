"""Links, the mail ledger, the threading index, and the processing and error logs."""
from __future__ import annotations

import dataclasses
import hashlib
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

from alembic import command
from alembic.config import Config
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, delete, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from plugin.domain import Access, Link, MailProtocol, Outcome, OutcomeState, Secret, Security, SmartMatch
from plugin.errors import RejectReason
from plugin.mailboxes.oauth import sealed_options, unsealed_options
from plugin.store.models import (ErrorLogRow, LedgerRow, LinkRow, MailIndexRow, ProcessingLogRow, QuarantineRow,
                           SenderEventRow, UndeliverableRow, utcnow)
from plugin.settings import Settings

MIGRATIONS = Path(__file__).with_name("migrations")
PENDING = "pending"

_LINK_COLUMNS = {"id", "name", "protocol", "host", "port", "security", "username", "password", "folder",
                 "service_desk_id", "request_type_id"}


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    state: str  # "pending" until handling finished, then the OutcomeState
    issue_key: str | None
    attempts: int
    failures: int
    started_at: datetime

    @property
    def finished(self) -> bool:
        return self.state != PENDING


@dataclass(frozen=True, slots=True)
class KnownMail:
    """A mail of a request that threading matched, with what it was."""

    issue_key: str
    direction: str
    role: str
    message_id: str | None

    def describe(self) -> str:
        if self.direction == "out":
            return f"our mail about {self.issue_key}"
        return f"mail that {'created' if self.role == 'created' else 'commented on'} {self.issue_key}"


LOG_FIELDS = ("time", "link", "message_id", "from", "subject", "outcome", "reason", "issue_key", "detail",
              "evidence")


def parse_since(value: str) -> datetime:
    """A --since / ?since= date or time; naive values are UTC."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class LogEntry:
    time: datetime
    link: str
    message_id: str | None
    sender: str | None
    subject: str | None
    outcome: str
    reason: str | None
    issue_key: str | None
    detail: str
    evidence: str | None
    raw_path: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"time": self.time.isoformat(), "link": self.link, "message_id": self.message_id,
                "from": self.sender, "subject": self.subject, "outcome": self.outcome, "reason": self.reason,
                "issue_key": self.issue_key, "detail": self.detail, "evidence": self.evidence}


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def use_write_ahead_log(engine: Engine) -> None:
    """SQLite in WAL mode: one fsync per commit instead of three, and readers never block the poller."""
    if engine.dialect.name != "sqlite":
        return

    # Three commits per mail made the rollback journal's fsyncs most of a polling round; WAL with
    # synchronous=FULL (SQLite's default) is as durable and several times faster.
    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


def migrate(database_url: str) -> None:
    """Bring the schema to the newest Alembic revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, "head")


class Store:
    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        migrate(settings.database_url)
        self.engine = engine or create_engine(settings.database_url, future=True)
        use_write_ahead_log(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self._fernet = Fernet(settings.secret_key.reveal().encode("ascii"))

    def session(self) -> Session:
        return self._session()

    # Links ---------------------------------------------------------------------------------
    def add_link(self, link: Link) -> Link:
        row = LinkRow(**self._link_columns(link))
        with self.session() as s, s.begin():
            s.add(row)
            s.flush()
            link_id = row.id
        return dataclasses.replace(link, id=link_id)

    def update_link(self, link: Link) -> None:
        with self.session() as s, s.begin():
            row = s.get(LinkRow, link.id)
            for key, value in self._link_columns(link).items():
                setattr(row, key, value)

    def delete_link(self, name: str) -> bool:
        with self.session() as s, s.begin():
            return s.execute(delete(LinkRow).where(LinkRow.name == name)).rowcount > 0

    def links(self) -> list[Link]:
        with self.session() as s:
            return [self._link(row) for row in s.scalars(select(LinkRow).order_by(LinkRow.id))]

    def link(self, name_or_id: str | int) -> Link | None:
        with self.session() as s:
            column = LinkRow.id if isinstance(name_or_id, int) else LinkRow.name
            row = s.scalars(select(LinkRow).where(column == name_or_id)).first()
            return self._link(row) if row else None

    def _link_columns(self, link: Link) -> dict[str, Any]:
        fields = {f.name: getattr(link, f.name) for f in dataclasses.fields(link)}
        options = {k: v for k, v in fields.items() if k not in _LINK_COLUMNS}
        options["smart_match"] = dataclasses.asdict(link.smart_match)
        for key in ("autoreply_allow_domains", "blocked_domains"):
            options[key] = list(options[key])
        columns = {k: v for k, v in fields.items() if k in _LINK_COLUMNS - {"id", "password"}}
        columns["password_encrypted"] = self._fernet.encrypt(link.password.reveal().encode("utf-8"))
        options.update(sealed_options(link, self._fernet))
        return columns | {"options": {k: (v.value if hasattr(v, "value") else v) for k, v in options.items()}}

    def _link(self, row: LinkRow) -> Link:
        options = dict(row.options or {})
        known = {f.name for f in dataclasses.fields(Link)}
        options = {k: v for k, v in options.items() if k in known} | unsealed_options(options, self._fernet)
        if "smart_match" in options:
            options["smart_match"] = SmartMatch(**options["smart_match"])
        for key in ("autoreply_allow_domains", "blocked_domains"):
            if key in options:
                options[key] = tuple(options[key])
        if "access" in options:
            options["access"] = Access(options["access"])
        if "smtp_security" in options:
            options["smtp_security"] = Security(options["smtp_security"])
        return Link(id=row.id, name=row.name, protocol=MailProtocol(row.protocol), host=row.host, port=row.port,
                    security=Security(row.security), username=row.username,
                    password=Secret(self._fernet.decrypt(row.password_encrypted).decode("utf-8")),
                    folder=row.folder, service_desk_id=row.service_desk_id,
                    request_type_id=row.request_type_id, **options)

    # Ledger --------------------------------------------------------------------------------
    def _ledger_row(self, s: Session, link_id: int, ledger_id: str) -> LedgerRow | None:
        return s.scalars(select(LedgerRow).where(LedgerRow.link_id == link_id,
                                                 LedgerRow.ledger_id == ledger_id)).first()

    def _ledger_row_to_write(self, s: Session, link_id: int, ledger_id: str) -> LedgerRow:
        row = self._ledger_row(s, link_id, ledger_id)
        if row is None:
            row = LedgerRow(link_id=link_id, ledger_id=ledger_id, state=PENDING, attempts=0, failures=0)
            s.add(row)
        return row

    def ledger_entry(self, link_id: int, ledger_id: str) -> LedgerEntry | None:
        with self.session() as s:
            row = self._ledger_row(s, link_id, ledger_id)
            return None if row is None else LedgerEntry(row.state, row.issue_key, row.attempts, row.failures,
                                                        _aware(row.started_at))

    def begin(self, link_id: int, ledger_id: str) -> LedgerEntry:
        """Record that handling starts, before Jira is touched; a second start means a retry."""
        with self.session() as s, s.begin():
            row = self._ledger_row_to_write(s, link_id, ledger_id)
            row.attempts += 1
            s.flush()
            return LedgerEntry(row.state, row.issue_key, row.attempts, row.failures, _aware(row.started_at))

    def note_progress(self, link_id: int, ledger_id: str, issue_key: str) -> None:
        """Jira has the request; later steps (attachments, participants) resume from here."""
        with self.session() as s, s.begin():
            self._ledger_row(s, link_id, ledger_id).issue_key = issue_key

    def note_failure(self, link_id: int, ledger_id: str) -> int:
        """Count an attempt that ended in a bug; returns the failures so far."""
        with self.session() as s, s.begin():
            row = self._ledger_row_to_write(s, link_id, ledger_id)
            row.failures += 1
            return row.failures

    def finish(self, link_id: int, ledger_id: str, outcome: Outcome) -> None:
        with self.session() as s, s.begin():
            row = self._ledger_row_to_write(s, link_id, ledger_id)
            row.state = outcome.state.value
            row.issue_key = outcome.issue_key
            row.finished_at = utcnow()

    # Threading index -----------------------------------------------------------------------
    def remember_mail(self, link_id: int, issue_key: str, *, direction: str, role: str,
                      message_id: str | None, conversation_id: str | None = None,
                      subject_words: Iterable[str] = (), addresses: Iterable[str] = ()) -> None:
        words = " ".join(subject_words)
        with self.session() as s, s.begin():
            s.add(MailIndexRow(link_id=link_id, issue_key=issue_key, direction=direction, role=role,
                               message_id=message_id, conversation_id=conversation_id,
                               subject_hash=hashlib.sha256(words.encode()).hexdigest() if words else None,
                               subject_words=words, addresses=" ".join(sorted({a.lower() for a in addresses}))))

    def known_mail(self, link_id: int, message_id: str) -> KnownMail | None:
        with self.session() as s:
            row = s.scalars(select(MailIndexRow).where(MailIndexRow.link_id == link_id,
                                                       MailIndexRow.message_id == message_id)
                            .order_by(MailIndexRow.id.desc())).first()
            return KnownMail(row.issue_key, row.direction, row.role, row.message_id) if row else None

    def conversation_issue(self, link_id: int, conversation_id: str) -> str | None:
        with self.session() as s:
            return s.scalars(select(MailIndexRow.issue_key).where(
                MailIndexRow.link_id == link_id, MailIndexRow.conversation_id == conversation_id)
                .order_by(MailIndexRow.id.desc())).first()

    def recent_subjects(self, link_id: int, since: datetime) -> list[tuple[str, list[str], set[str]]]:
        """(issue key, subject words, addresses) of mails since a time, newest first."""
        with self.session() as s:
            rows = s.execute(select(MailIndexRow.issue_key, MailIndexRow.subject_words, MailIndexRow.addresses)
                             .where(MailIndexRow.link_id == link_id, MailIndexRow.created_at >= since,
                                    MailIndexRow.subject_words != "")
                             .order_by(MailIndexRow.id.desc())).all()
        return [(key, words.split(), set(addrs.split())) for key, words, addrs in rows]

    # Senders -------------------------------------------------------------------------------
    def count_new_requests(self, link_id: int, sender: str, window_s: int) -> int:
        since = utcnow() - timedelta(seconds=window_s)
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(SenderEventRow).where(
                SenderEventRow.link_id == link_id, SenderEventRow.sender == sender.lower(),
                SenderEventRow.time >= since)) or 0

    def note_new_request(self, link_id: int, sender: str) -> None:
        with self.session() as s, s.begin():
            s.add(SenderEventRow(link_id=link_id, sender=sender.lower()))

    def quarantine(self, link_id: int, sender: str) -> None:
        with self.session() as s, s.begin():
            row = s.scalars(select(QuarantineRow).where(QuarantineRow.link_id == link_id,
                                                        QuarantineRow.sender == sender.lower())).first()
            if row is None:
                s.add(QuarantineRow(link_id=link_id, sender=sender.lower()))
            elif row.released:
                row.released, row.since = False, utcnow()

    def is_quarantined(self, link_id: int, sender: str) -> bool:
        with self.session() as s:
            return s.scalars(select(QuarantineRow).where(
                QuarantineRow.link_id == link_id, QuarantineRow.sender == sender.lower(),
                QuarantineRow.released.is_(False))).first() is not None

    def quarantined(self) -> list[tuple[int, str, datetime]]:
        with self.session() as s:
            rows = s.execute(select(QuarantineRow.link_id, QuarantineRow.sender, QuarantineRow.since)
                             .where(QuarantineRow.released.is_(False))).all()
        return [(link_id, sender, _aware(since)) for link_id, sender, since in rows]

    def release(self, link_id: int, sender: str) -> bool:
        """Lift a quarantine; the sender's budget starts afresh and the mails it held may be handled again."""
        with self.session() as s, s.begin():
            row = s.scalars(select(QuarantineRow).where(QuarantineRow.link_id == link_id,
                                                        QuarantineRow.sender == sender.lower())).first()
            if row is None or row.released:
                return False
            row.released = True
            s.execute(delete(SenderEventRow).where(SenderEventRow.link_id == link_id,
                                                   SenderEventRow.sender == sender.lower()))
            self._forget_held_mails(s, link_id, sender)
            return True

    @staticmethod
    def _forget_held_mails(s: Session, link_id: int, sender: str) -> None:
        """Drop the ledger's "rejected" for mails the quarantine held, so a replay or a mail put back
        into the mailbox unlabelled is handled, not answered with "handled before"."""
        held = s.execute(select(ProcessingLogRow.message_id, ProcessingLogRow.raw_path).where(
            ProcessingLogRow.link_id == link_id, func.lower(ProcessingLogRow.sender) == sender.lower(),
            ProcessingLogRow.reason == RejectReason.SENDER_QUARANTINED.value)).all()
        # The ledger key is the Message-ID, or the raw bytes' hash, which names the kept file.
        ledger_ids = {message_id or f"sha256:{Path(raw_path).stem}" for message_id, raw_path in held
                      if message_id or raw_path}
        if ledger_ids:
            s.execute(delete(LedgerRow).where(LedgerRow.link_id == link_id, LedgerRow.ledger_id.in_(ledger_ids),
                                              LedgerRow.state == OutcomeState.REJECTED.value))

    def mark_undeliverable(self, address: str, status: str | None, issue_key: str | None) -> None:
        with self.session() as s, s.begin():
            s.merge(UndeliverableRow(address=address.lower(), status=status, issue_key=issue_key, since=utcnow()))

    def clear_undeliverable(self, address: str) -> None:
        with self.session() as s, s.begin():
            s.execute(delete(UndeliverableRow).where(UndeliverableRow.address == address.lower()))

    def is_undeliverable(self, address: str) -> bool:
        with self.session() as s:
            return s.get(UndeliverableRow, address.lower()) is not None

    # Processing and error logs -------------------------------------------------------------
    def log_outcome(self, link: Link, outcome: Outcome, *, message_id: str | None, sender: str | None,
                    subject: str | None, raw: bytes | None = None) -> None:
        raw_path = self._keep_raw(raw) if raw is not None else None
        with self.session() as s, s.begin():
            s.add(ProcessingLogRow(link_id=link.id, link_name=link.name, message_id=message_id, sender=sender,
                                   subject=subject, outcome=outcome.state.value,
                                   reason=outcome.reason.value if outcome.reason else None,
                                   issue_key=outcome.issue_key, detail=outcome.detail,
                                   evidence=outcome.evidence, raw_path=raw_path))

    def _keep_raw(self, raw: bytes) -> str:
        """Keep a mail we did not turn into Jira content, so an admin can download it."""
        folder = self.settings.data_dir / "mail"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(raw).hexdigest()}.eml"
        if not path.exists():
            path.write_bytes(raw)
        return str(path)

    def processing_log(self, *, link: str | None = None, since: datetime | None = None,
                       limit: int | None = None) -> list[LogEntry]:
        query = select(ProcessingLogRow).order_by(ProcessingLogRow.id.desc())
        if link:
            query = query.where(ProcessingLogRow.link_name == link)
        if since:
            query = query.where(ProcessingLogRow.time >= since)
        if limit:
            query = query.limit(limit)
        with self.session() as s:
            return [LogEntry(_aware(r.time), r.link_name, r.message_id, r.sender, r.subject, r.outcome, r.reason,
                             r.issue_key, r.detail, r.evidence, r.raw_path) for r in s.scalars(query)]

    def log_error(self, link_name: str, message_id: str | None, exc: BaseException) -> None:
        """Add an error, once per outage: the same error of the same link within an hour is not repeated."""
        summary = f"{type(exc).__name__}: {exc}"
        with self.session() as s, s.begin():
            repeated = s.scalars(select(ErrorLogRow.id).where(
                ErrorLogRow.link_name == link_name, ErrorLogRow.summary == summary,
                ErrorLogRow.message_id.is_(None) if message_id is None else ErrorLogRow.message_id == message_id,
                ErrorLogRow.time >= utcnow() - timedelta(hours=1))).first()
            if repeated is None:
                s.add(ErrorLogRow(link_name=link_name, message_id=message_id, summary=summary,
                                  traceback="".join(traceback.format_exception(exc))))

    def error_log(self, limit: int = 200) -> list[ErrorLogRow]:
        with self.session() as s:
            return list(s.scalars(select(ErrorLogRow).order_by(ErrorLogRow.id.desc()).limit(limit)))

    def purge_logs(self, older_than_days: int) -> int:
        cutoff = utcnow() - timedelta(days=older_than_days)
        with self.session() as s, s.begin():
            removed = s.execute(delete(ProcessingLogRow).where(ProcessingLogRow.time < cutoff)).rowcount
            removed += s.execute(delete(ErrorLogRow).where(ErrorLogRow.time < cutoff)).rowcount
        return removed
