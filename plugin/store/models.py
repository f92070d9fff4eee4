"""Database tables (SQLAlchemy); schema changes go through the Alembic migrations beside them."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class LinkRow(Base):
    __tablename__ = "links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    protocol: Mapped[str] = mapped_column(String(10))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[str] = mapped_column(String(10))
    username: Mapped[str] = mapped_column(String(255))
    password_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    folder: Mapped[str] = mapped_column(String(255), default="INBOX")
    service_desk_id: Mapped[str] = mapped_column(String(50))
    request_type_id: Mapped[str] = mapped_column(String(50))
    # Everything else a Link has (policy, labels, threading options) as one JSON object, so a
    # new option needs no migration; plugin.store.store validates it into the Link dataclass.
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LedgerRow(Base):
    """One row per mail a link has started handling: the idempotency record."""

    __tablename__ = "ledger"
    __table_args__ = (UniqueConstraint("link_id", "ledger_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    ledger_id: Mapped[str] = mapped_column(String(512))  # Message-ID or sha256 of the raw bytes
    state: Mapped[str] = mapped_column(String(20))  # pending, or the final OutcomeState
    issue_key: Mapped[str | None] = mapped_column(String(50), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # handling started, incl. retries
    failures: Mapped[int] = mapped_column(Integer, default=0)  # attempts that ended in a bug
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    mailbox_uid: Mapped[str | None] = mapped_column(String(512), nullable=True)  # the copy that was handled
    waiting_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LeaseRow(Base):
    """Which process works a link, until when: one poller per link, across processes and machines."""

    __tablename__ = "leases"

    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MailIndexRow(Base):
    """A mail that belongs to a request, received or sent: what threading matches against."""

    __tablename__ = "mail_index"
    __table_args__ = (
        Index("ix_mail_index_message", "link_id", "message_id"),
        Index("ix_mail_index_conversation", "link_id", "conversation_id"),
        Index("ix_mail_index_recent", "link_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    issue_key: Mapped[str] = mapped_column(String(50))
    direction: Mapped[str] = mapped_column(String(3))  # "in" or "out"
    role: Mapped[str] = mapped_column(String(20))  # created, commented, notification
    message_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    conversation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    subject_words: Mapped[str] = mapped_column(Text, default="")
    addresses: Mapped[str] = mapped_column(Text, default="")  # space separated, lowercase
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProcessingLogRow(Base):
    __tablename__ = "processing_log"
    __table_args__ = (Index("ix_processing_log_time", "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    link_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    link_name: Mapped[str] = mapped_column(String(100))
    message_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    sender: Mapped[str | None] = mapped_column(String(512), nullable=True)
    subject: Mapped[str | None] = mapped_column(Text, nullable=True)
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(50), nullable=True)
    issue_key: Mapped[str | None] = mapped_column(String(50), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[str | None] = mapped_column(Text, nullable=True)
    raw_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)


class ErrorLogRow(Base):
    __tablename__ = "error_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    link_name: Mapped[str] = mapped_column(String(100))
    message_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    summary: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str] = mapped_column(Text, default="")
    count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # an outage is one row, counted
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SenderEventRow(Base):
    """A new request raised by a sender, counted against the per-sender budget."""

    __tablename__ = "sender_events"
    __table_args__ = (Index("ix_sender_events", "link_id", "sender", "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    sender: Mapped[str] = mapped_column(String(320))
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QuarantineRow(Base):
    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("link_id", "sender"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    sender: Mapped[str] = mapped_column(String(320))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    released: Mapped[bool] = mapped_column(Boolean, default=False)


class UndeliverableRow(Base):
    """An address whose mail bounced permanently; cleared when that person writes to us again."""

    __tablename__ = "undeliverable"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    issue_key: Mapped[str | None] = mapped_column(String(50), nullable=True)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OutboxRow(Base):
    """One agent comment to mail, once: queued -> sending -> sent, or failed with the reason."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_link_state", "link_id", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    comment_id: Mapped[str] = mapped_column(String(50), unique=True)  # Jira's comment id: queued once
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    issue_key: Mapped[str] = mapped_column(String(50))
    message_id: Mapped[str] = mapped_column(String(512))  # ours, minted when queued, same on every attempt
    state: Mapped[str] = mapped_column(String(10))  # queued, sending, sent, failed
    source: Mapped[str] = mapped_column(String(10))  # forge or poll
    comment_created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sending_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    recipients: Mapped[str] = mapped_column(Text, default="")  # comma separated, as sent
    last_error: Mapped[str] = mapped_column(Text, default="")


class OutboundCursorRow(Base):
    """Up to when a link's polling has looked at Jira for new agent comments."""

    __tablename__ = "outbound_cursor"

    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"), primary_key=True)
    looked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Comments older than this are never mailed: the link's creation, or when it last could not send.
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SmtpSecretRow(Base):
    """A link's own SMTP password, encrypted like the mailbox password; none: the mailbox's is used."""

    __tablename__ = "smtp_secrets"

    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"), primary_key=True)
    password_encrypted: Mapped[bytes] = mapped_column(LargeBinary)


class ForgeInstallationRow(Base):
    """A Jira site that installed the Forge app, as its Forge calls show it; its latest system token."""

    __tablename__ = "forge_installations"

    installation_id: Mapped[str] = mapped_column(String(255), primary_key=True)  # the FIT's app.installationId
    cloud_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    site_url: Mapped[str | None] = mapped_column(String(255), nullable=True)
    api_base_url: Mapped[str | None] = mapped_column(String(255), nullable=True)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    system_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    system_token_expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LinkStateRow(Base):
    """How a link's polling goes: the last rounds, the current failure, a backlog's progress, alerts sent."""

    __tablename__ = "link_state"

    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"), primary_key=True)
    last_round_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    failing_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    unread: Mapped[int] = mapped_column(Integer, default=0)  # unhandled in the mailbox after the last round
    unread_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    backlog_total: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: no backlog being worked
    backlog_done: Mapped[int] = mapped_column(Integer, default=0)
    alerted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # "failing" mail
