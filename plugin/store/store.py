"""Links, the mail ledger, the threading index, and the processing and error logs."""
from __future__ import annotations

import dataclasses
import hashlib
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, delete, event, func, select
from sqlalchemy.engine import Engine, Result
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from plugin.domain import (
    Access,
    FirstImport,
    KnownMail,
    Link,
    MailProtocol,
    Outcome,
    OutcomeState,
    Secret,
    Security,
    SmartMatch,
)
from plugin.errors import RejectReason
from plugin.settings import Settings
from plugin.store.link_options import sealed_options, unsealed_options
from plugin.store.models import (
    ErrorLogRow,
    LeaseRow,
    LedgerRow,
    LinkRow,
    MailIndexRow,
    ProcessingLogRow,
    QuarantineRow,
    SenderEventRow,
    UndeliverableRow,
    utcnow,
)

MIGRATIONS = Path(__file__).with_name("migrations")
PENDING = "pending"
_NUMBERS = re.compile(r"\d+")

_LINK_COLUMNS = {"id", "name", "protocol", "host", "port", "security", "username", "password", "folder",
                 "service_desk_id", "request_type_id"}


class LeaseLost(Exception):
    """Another process took over this link; this one stops before writing anything more."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    state: str  # "pending" until handling finished, then the OutcomeState
    issue_key: str | None
    attempts: int
    failures: int
    started_at: datetime
    mailbox_uid: str | None

    @property
    def finished(self) -> bool:
        return self.state != PENDING


LOG_FIELDS = ("time", "link", "message_id", "from", "subject", "outcome", "reason", "issue_key", "detail",
              "evidence")


def parse_since(value: str) -> datetime:
    """A --since / ?since= date or time; naive values are UTC."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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
        # SQLite: a second process (a cron poll beside serve) waits for the writer instead of failing.
        connect_args = {"timeout": 30} if settings.database_url.startswith("sqlite") else {}
        self.engine = engine or create_engine(settings.database_url, future=True, connect_args=connect_args)
        use_write_ahead_log(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self._fernet = Fernet(settings.secret_key.reveal().encode("ascii"))

    def session(self) -> Session:
        return self._session()

    # Links ---------------------------------------------------------------------------------
    def add_link(self, link: Link) -> Link:
        if link.linked_at is None:  # whole seconds, as IMAP INTERNALDATE (RFC 3501 2.3.3) compares
            link = dataclasses.replace(link, linked_at=utcnow().replace(microsecond=0))
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

    def set_link_enabled(self, name: str, enabled: bool) -> bool:
        """Enable or disable a link by name; a disabled link is not polled. False: no such link."""
        link = self.link(name)
        if link is None:
            return False
        self.update_link(dataclasses.replace(link, enabled=enabled))
        return True

    def delete_link(self, name: str) -> bool:
        with self.session() as s, s.begin():
            return _deleted(s.execute(delete(LinkRow).where(LinkRow.name == name))) > 0

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
        options["linked_at"] = link.linked_at.isoformat() if link.linked_at else None
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
        if "first_import" in options:
            options["first_import"] = FirstImport(options["first_import"])
        if options.get("linked_at"):
            options["linked_at"] = aware(datetime.fromisoformat(options["linked_at"]))
        elif row.created_at:  # a link stored before linked_at was kept: it was linked when created
            options["linked_at"] = aware(row.created_at).replace(microsecond=0)
        return Link(id=row.id, name=row.name, protocol=MailProtocol(row.protocol), host=row.host, port=row.port,
                    security=Security(row.security), username=row.username,
                    password=Secret(self._fernet.decrypt(row.password_encrypted).decode("utf-8")),
                    folder=row.folder, service_desk_id=row.service_desk_id,
                    request_type_id=row.request_type_id, **options)

    # Leases ------------------------------------------------------------------------------
    def acquire_lease(self, link_id: int, holder: str, ttl_s: float,
                      dead: Callable[[str], bool] = lambda holder: False) -> bool:
        """Take or renew the link's lease; False while another process holds it that is not known dead."""
        now = utcnow()
        with self.session() as s, s.begin():
            row = s.get(LeaseRow, link_id, with_for_update=True)
            if row is None:
                s.add(LeaseRow(link_id=link_id, holder=holder, expires_at=now + timedelta(seconds=ttl_s)))
                try:
                    s.flush()
                except IntegrityError:  # another process inserted it first
                    return False
                return True
            if row.holder != holder and aware(row.expires_at) > now and not dead(row.holder):
                return False
            row.holder, row.expires_at = holder, now + timedelta(seconds=ttl_s)
            return True

    def release_lease(self, link_id: int, holder: str) -> None:
        with self.session() as s, s.begin():
            s.execute(delete(LeaseRow).where(LeaseRow.link_id == link_id, LeaseRow.holder == holder))

    @staticmethod
    def check_lease(s: Session, link_id: int, holder: str | None) -> None:
        """Fencing: a writer whose lease another process took must not write."""
        if holder is None:
            return
        # FOR SHARE (ignored by SQLite, whose writers are serial anyway): on PostgreSQL a takeover's
        # SELECT ... FOR UPDATE waits until this transaction has committed, so the new holder sees its writes.
        row = s.get(LeaseRow, link_id, with_for_update={"read": True})
        if row is None or row.holder != holder:
            raise LeaseLost(f"link {link_id} is now worked by {row.holder if row else 'nobody'}")

    # Ledger --------------------------------------------------------------------------------
    @staticmethod
    def ledger_row(s: Session, link_id: int, ledger_id: str) -> LedgerRow:
        """The mail's ledger row, new when the mail was never seen."""
        row = s.scalars(select(LedgerRow).where(LedgerRow.link_id == link_id,
                                                LedgerRow.ledger_id == ledger_id)).first()
        if row is None:
            row = LedgerRow(link_id=link_id, ledger_id=ledger_id, state=PENDING, attempts=0, failures=0)
            s.add(row)
        return row

    def ledger_entry(self, link_id: int, ledger_id: str) -> LedgerEntry | None:
        with self.session() as s:
            row = s.scalars(select(LedgerRow).where(LedgerRow.link_id == link_id,
                                                    LedgerRow.ledger_id == ledger_id)).first()
            return None if row is None else _entry(row)

    def begin(self, link_id: int, ledger_id: str, holder: str | None) -> LedgerEntry | None:
        """Record that an attempt starts, before Jira is touched; returns what earlier attempts left."""
        with self.session() as s, s.begin():
            self.check_lease(s, link_id, holder)
            row = self.ledger_row(s, link_id, ledger_id)
            earlier = _entry(row) if row.attempts else None
            row.attempts = (row.attempts or 0) + 1
            row.started_at = utcnow()
            return earlier

    def note_issue_key(self, link_id: int, ledger_id: str, issue_key: str) -> None:
        """Jira has the request but the rest of the mail's work is interrupted: the retry goes on with it."""
        with self.session() as s, s.begin():
            self.ledger_row(s, link_id, ledger_id).issue_key = issue_key

    def finish(self, link_id: int, ledger_id: str, outcome: Outcome) -> None:
        """A ledger row of its own in a final state: a POP3 mail kept on the server, by its UIDL."""
        with self.session() as s, s.begin():
            row = self.ledger_row(s, link_id, ledger_id)
            row.state, row.issue_key, row.finished_at = outcome.state.value, outcome.issue_key, utcnow()

    def handled_since(self, link_id: int, since: datetime) -> int:
        """Mails of the link that reached a final state since then: the intake budget's use."""
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(LedgerRow).where(
                LedgerRow.link_id == link_id, LedgerRow.finished_at >= since)) or 0

    def note_failure(self, link_id: int, ledger_id: str) -> int:
        """Count an attempt that ended in a bug; returns the failures so far."""
        with self.session() as s, s.begin():
            row = self.ledger_row(s, link_id, ledger_id)
            row.failures = (row.failures or 0) + 1
            return row.failures

    # Threading index -----------------------------------------------------------------------
    def thread_index(self, link_id: int) -> LinkThreadIndex:
        return LinkThreadIndex(self, link_id)

    # Senders -------------------------------------------------------------------------------
    def count_new_requests(self, link_id: int, sender: str, window_s: int) -> int:
        since = utcnow() - timedelta(seconds=window_s)
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(SenderEventRow).where(
                SenderEventRow.link_id == link_id, SenderEventRow.sender == sender.lower(),
                SenderEventRow.time >= since)) or 0

    @staticmethod
    def quarantine(s: Session, link_id: int, sender: str) -> None:
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
        return [(link_id, sender, aware(since)) for link_id, sender, since in rows]

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
        ledger_ids = {message_id or f"sha256:{Path(str(raw_path)).stem}" for message_id, raw_path in held
                      if message_id or raw_path}
        if ledger_ids:
            s.execute(delete(LedgerRow).where(LedgerRow.link_id == link_id, LedgerRow.ledger_id.in_(ledger_ids),
                                              LedgerRow.state == OutcomeState.REJECTED.value))

    @staticmethod
    def mark_undeliverable(s: Session, address: str, status: str | None, issue_key: str | None) -> None:
        s.merge(UndeliverableRow(address=address.lower(), status=status, issue_key=issue_key, since=utcnow()))

    @staticmethod
    def clear_undeliverable(s: Session, address: str) -> None:
        s.execute(delete(UndeliverableRow).where(UndeliverableRow.address == address.lower()))

    def is_undeliverable(self, address: str) -> bool:
        with self.session() as s:
            return s.get(UndeliverableRow, address.lower()) is not None

    # Processing and error logs -------------------------------------------------------------
    def keep_raw(self, raw: bytes) -> str:
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
            return [LogEntry(aware(r.time), r.link_name, r.message_id, r.sender, r.subject, r.outcome, r.reason,
                             r.issue_key, r.detail, r.evidence, r.raw_path) for r in s.scalars(query)]

    def log_error(self, link_name: str, message_id: str | None, exc: BaseException) -> None:
        """Add an error, once per outage: the same error of the same link seen again within an hour
        counts on the existing row (count, last seen), whatever numbers (seconds, mail numbers) it names."""
        summary = f"{type(exc).__name__}: {exc}"
        now = utcnow()
        with self.session() as s, s.begin():
            recent = s.scalars(select(ErrorLogRow).where(
                ErrorLogRow.link_name == link_name,
                ErrorLogRow.message_id.is_(None) if message_id is None else ErrorLogRow.message_id == message_id,
                func.coalesce(ErrorLogRow.last_seen, ErrorLogRow.time) >= now - timedelta(hours=1))
                .order_by(ErrorLogRow.id.desc()))
            repeated = next((row for row in recent if _same_error(row.summary, summary)), None)
            if repeated is None:
                s.add(ErrorLogRow(link_name=link_name, message_id=message_id, summary=summary,
                                  traceback="".join(traceback.format_exception(exc)), count=1, last_seen=now))
            else:
                repeated.count = (repeated.count or 1) + 1
                repeated.last_seen = now

    def error_log(self, limit: int = 200) -> list[ErrorLogRow]:
        with self.session() as s:
            return list(s.scalars(select(ErrorLogRow).order_by(ErrorLogRow.id.desc()).limit(limit)))

    def purge_logs(self, older_than_days: int) -> int:
        cutoff = utcnow() - timedelta(days=older_than_days)
        with self.session() as s, s.begin():
            removed = _deleted(s.execute(delete(ProcessingLogRow).where(ProcessingLogRow.time < cutoff)))
            removed += _deleted(s.execute(delete(ErrorLogRow).where(ErrorLogRow.time < cutoff)))
        return removed


def _same_error(logged: str, summary: str) -> bool:
    """One error whatever numbers it names: "37 s to go" and "12 s to go", mail 5 and mail 7."""
    return _NUMBERS.sub("#", logged) == _NUMBERS.sub("#", summary)


def _deleted(result: Result[Any]) -> int:
    """Rows a DELETE removed (SQLAlchemy types execute() as Result; a DML statement gives a CursorResult)."""
    return int(getattr(result, "rowcount", 0) or 0)


def _entry(row: LedgerRow) -> LedgerEntry:
    return LedgerEntry(row.state, row.issue_key, row.attempts or 0, row.failures or 0, aware(row.started_at),
                       row.mailbox_uid)


class LinkThreadIndex:
    """The threading index of one link, as route.lookups.ThreadIndex."""

    def __init__(self, store: Store, link_id: int) -> None:
        self._store, self._link_id = store, link_id

    def known_mail(self, message_id: str) -> KnownMail | None:
        with self._store.session() as s:
            row = s.scalars(select(MailIndexRow).where(MailIndexRow.link_id == self._link_id,
                                                       MailIndexRow.message_id == message_id)
                            .order_by(MailIndexRow.id.desc())).first()
            return KnownMail(row.issue_key, row.direction, row.role) if row else None

    def conversation_issue(self, conversation_id: str) -> str | None:
        with self._store.session() as s:
            return s.scalars(select(MailIndexRow.issue_key).where(
                MailIndexRow.link_id == self._link_id, MailIndexRow.conversation_id == conversation_id)
                .order_by(MailIndexRow.id.desc())).first()

    def recent_subjects(self, since: datetime) -> list[tuple[str, list[str], set[str]]]:
        """(issue key, subject words, addresses) of mails since a time, newest first."""
        with self._store.session() as s:
            rows = s.execute(select(MailIndexRow.issue_key, MailIndexRow.subject_words, MailIndexRow.addresses)
                             .where(MailIndexRow.link_id == self._link_id, MailIndexRow.created_at >= since,
                                    MailIndexRow.subject_words != "")
                             .order_by(MailIndexRow.id.desc())).all()
        return [(key, words.split(), set(addrs.split())) for key, words, addrs in rows]
