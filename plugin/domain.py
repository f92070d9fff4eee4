"""Typed values that the pipeline stages hand to each other."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import Message
from enum import StrEnum

from plugin.errors import RejectReason


class Secret:
    """A password or token: never shown by repr, str or logging."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    address: str

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


@dataclass(frozen=True, slots=True)
class MailRef:
    """Where a mail lives, so it can be labelled after Jira has it."""

    link_id: int
    uid: str  # IMAP UID, POP3 UIDL, EWS item id
    size_bytes: int | None = None  # as the server reports it, before download


@dataclass(frozen=True, slots=True)
class RawMail:
    ref: MailRef
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)
    inline: bool = False
    content_id: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()


@dataclass(frozen=True, slots=True)
class ThreadHeaders:
    in_reply_to: str | None = None  # Message-ID without angle brackets
    references: tuple[str, ...] = ()  # oldest first, as in the header
    thread_index: str | None = None  # base64 exactly as in the header


@dataclass(frozen=True, slots=True)
class InboundMail:
    """A parsed mail: decoded headers, bodies and attachments, no policy applied."""

    message_id: str | None
    sender: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str  # decoded; "Re:" / "ＲＥ：" prefixes still present
    date: datetime | None
    body_text: str  # whole body as plain text (HTML converted when there is no text part)
    body_html: str | None
    attachments: tuple[Attachment, ...]
    thread: ThreadHeaders
    charset_repaired: bool
    size_bytes: int
    raw_sha256: str
    message: Message = field(repr=False, compare=False)  # the stdlib tree, for detectors
    repairs: tuple[str, ...] = ()  # how damaged headers were read, e.g. "sender: from Reply-To, ..."

    @property
    def ledger_id(self) -> str:
        """Idempotency key within a link: the Message-ID, or a hash of the raw bytes."""
        return self.message_id or f"sha256:{self.raw_sha256}"

    def header(self, name: str) -> str | None:
        value = self.message.get(name)
        return None if value is None else str(value)


class MailKind(StrEnum):
    MAIL = "mail"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    FEEDBACK_REPORT = "feedback_report"
    LOOP = "loop"


@dataclass(frozen=True, slots=True)
class BounceRecipient:
    address: str
    status: str | None  # DSN status such as "5.1.1"
    permanent: bool


@dataclass(frozen=True, slots=True)
class BounceReport:
    recipients: tuple[BounceRecipient, ...]
    original_message_id: str | None


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: MailKind
    evidence: str | None = None  # e.g. "auto-submitted: auto-replied"
    bounce: BounceReport | None = None


CUSTOMER_MAIL = Verdict(MailKind.MAIL)


# Routes: what a mail means for Jira.
@dataclass(frozen=True, slots=True)
class NewRequest:
    mail: InboundMail
    evidence: str = ""  # why no existing request matched
    related_key: str | None = None  # forwarded from / reopened as a follow-up of


@dataclass(frozen=True, slots=True)
class FollowUp:
    mail: InboundMail
    issue_key: str
    evidence: str  # e.g. "In-Reply-To <a@b> = mail that created SD-42"


@dataclass(frozen=True, slots=True)
class BounceOf:
    mail: InboundMail
    report: BounceReport | None  # None when the bounce names nothing we could read
    issue_key: str | None
    evidence: str = ""


@dataclass(frozen=True, slots=True)
class Ignore:
    mail: InboundMail
    reason: str  # evidence from the classifier
    issue_key: str | None = None  # the request an auto-reply answers a mail of, when its headers say


Route = NewRequest | FollowUp | BounceOf | Ignore


class OutcomeState(StrEnum):
    CREATED = "created"
    COMMENTED = "commented"
    BOUNCE_RECORDED = "bounce-recorded"
    IGNORED = "ignored"
    REJECTED = "rejected"
    WAITING_RETRY = "waiting-retry"
    FAILED = "failed"

    @property
    def labels_as_rejected(self) -> bool:
        return self in (OutcomeState.REJECTED, OutcomeState.FAILED)

    @property
    def is_final(self) -> bool:
        """Final outcomes are labelled in the mailbox; the others leave the mail untouched."""
        return self is not OutcomeState.WAITING_RETRY


@dataclass(frozen=True, slots=True)
class ThreadEntry:
    """A mail of a request, indexed by what later replies can match: ids, conversation, subject, people."""

    issue_key: str
    role: str  # created | commented
    message_id: str | None
    conversation_id: str | None
    subject_words: tuple[str, ...]
    addresses: frozenset[str]


@dataclass(frozen=True, slots=True)
class Facts:
    """What a handler learned besides its outcome; the record step writes it with the log row."""

    thread: ThreadEntry | None = None
    new_request_by: str | None = None  # counts against the sender's new-request budget
    quarantine: str | None = None  # a sender who went over the budget
    undeliverable: tuple[BounceRecipient, ...] = ()  # permanently failing addresses, from a bounce
    deliverable: tuple[str, ...] = ()  # people who wrote to us: their undeliverable mark goes


@dataclass(frozen=True, slots=True)
class Outcome:
    state: OutcomeState
    issue_key: str | None = None
    reason: RejectReason | None = None
    detail: str = ""
    evidence: str | None = None
    facts: Facts = field(default_factory=Facts, compare=False)


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """A request as Jira has it, as much as threading and comments need."""

    key: str
    id: str
    reporter_email: str | None
    participant_emails: frozenset[str]
    resolved_at: datetime | None  # None while the request is open

    @property
    def project_key(self) -> str:
        return self.key.rpartition("-")[0]

    @property
    def people(self) -> frozenset[str]:
        """Reporter and participants, lower-cased."""
        return self.participant_emails | ({self.reporter_email.lower()} if self.reporter_email else set())


@dataclass(frozen=True, slots=True)
class KnownMail:
    """A mail of a request that threading matched, with what it was."""

    issue_key: str
    direction: str  # in | out
    role: str

    def describe(self) -> str:
        if self.direction == "out":
            return f"our mail about {self.issue_key}"
        return f"mail that {'created' if self.role == 'created' else 'commented on'} {self.issue_key}"


# Drafts: what the mappers build for the handlers, with no I/O.
@dataclass(frozen=True, slots=True)
class RequestDraft:
    summary: str
    description: str
    reporter: Address
    participants: tuple[Address, ...]
    attachments: tuple[Attachment, ...]


@dataclass(frozen=True, slots=True)
class CommentDraft:
    body: str
    author: Address
    new_participants: tuple[Address, ...]
    attachments: tuple[Attachment, ...]  # the mail's own attachments, public like the comment
    original: Attachment | None = None  # the whole mail, for agents, when the comment leaves text out


# RFC 3501 section 9: a flag keyword is an atom; these characters (and controls, space, non-ASCII) end one.
_ATOM_SPECIALS = frozenset('(){ %*"\\]')


def check_label(label: str) -> None:
    """Raise ValueError unless `label` is an IMAP keyword (and so an Exchange category too)."""
    bad = sorted({ch for ch in label if not 0x20 < ord(ch) < 0x7F or ch in _ATOM_SPECIALS})
    if not label or bad:
        shown = ", ".join(repr(ch) for ch in bad) or "it is empty"
        raise ValueError(f"mailbox label {label!r} cannot be an IMAP keyword: {shown}; "
                         "use ASCII letters, digits and - _ . only")


class MailProtocol(StrEnum):
    IMAP = "imap"
    POP3 = "pop3"
    EWS = "ews"
    GRAPH = "graph"
    MAILDIR = "maildir"  # a local folder: demo mode and uploaded mail


class Security(StrEnum):
    SSL = "ssl"
    STARTTLS = "starttls"
    NONE = "none"


class Access(StrEnum):
    OPEN = "open"  # anyone may raise requests; unknown senders become customers
    CUSTOMERS_ONLY = "customers-only"


@dataclass(frozen=True)
class SmartMatch:
    """Subject + recipients matching (rule 4), per link; off by default."""

    enabled: bool = False
    keyword_filter: str = r"^[\s]*([\w]+\s?:[\s]*)+"
    hash_max_count: int = 20
    hash_delta_subject_count: int = 0
    hash_min_address_count: int = 2
    window_days: int = 90


class FirstImport(StrEnum):
    """Which mail already in the mailbox a new link takes; mail arriving later is always taken."""

    NEW = "new"  # only mail arriving after linking
    RECENT = "recent"  # unread mail of the last N days before linking, too
    ALL = "all"  # every unread mail, however old


class AuthMethod(StrEnum):
    """How a link signs in to its mailbox."""

    PASSWORD = "password"  # IMAP/POP3 LOGIN, EWS Basic
    NTLM = "ntlm"  # EWS on on-premises Exchange
    OAUTH2_APP = "oauth2-app"  # app-only token by the client credentials flow (Graph, EWS)
    OAUTH2_DELEGATED = "oauth2-delegated"  # a user's token from a stored refresh token (IMAP/POP3 XOAUTH2, EWS)


def _no_secret() -> Secret:
    return Secret("")


@dataclass(frozen=True)
class OAuthSettings:
    """An app registration and what it holds; the secrets are encrypted at rest like the password."""

    tenant_id: str = ""
    client_id: str = ""
    client_secret: Secret = field(default_factory=_no_secret)
    certificate_path: str = ""  # PEM with the private key and the certificate, instead of a secret
    authority: str = "https://login.microsoftonline.com"
    client_secret_expires: date | None = None
    refresh_token: Secret = field(default_factory=_no_secret)
    refresh_token_expires: date | None = None
    provider: str = "microsoft"  # whose identity platform issued the refresh token: "microsoft" or "google"


@dataclass(frozen=True)
class Link:
    """A mailbox linked to a service desk and request type."""

    id: int
    name: str
    protocol: MailProtocol
    host: str
    port: int
    security: Security
    username: str
    password: Secret
    folder: str
    service_desk_id: str
    request_type_id: str
    access: Access = Access.OPEN
    address: str = ""  # the mailbox's own address: never a participant, From of our replies
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: Security = Security.STARTTLS
    processed_label: str = "jsm-processed"
    rejected_label: str = "jsm-rejected"
    max_size_bytes: int = 50 * 1024 * 1024
    require_to: bool = True
    anyone_may_comment: bool = False
    tracking_token: str | None = None  # e.g. "CRM" for subjects tagged [CRM:0001234]
    reopen_window_days: int = 14  # replies to requests resolved longer ago open a new request
    smart_match: SmartMatch = field(default_factory=SmartMatch)
    autoreply_allow_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()
    sender_budget: int = 20  # new requests per sender ...
    sender_budget_window_s: int = 7200  # ... within this window
    enabled: bool = True
    intake_per_minute: int = 25  # mails handled per minute; the rest wait for later rounds, oldest first
    # Outbound: agents' public comments mailed to customers (DESIGN.md section 8).
    send_replies: bool = True
    from_address: str = ""  # From of our mail; default: the mailbox's address
    from_name: str = ""  # its display name, e.g. "Example Support"
    aliases: tuple[str, ...] = ()  # more addresses of this mailbox: never a recipient or participant
    smtp_username: str = ""  # default: the mailbox's username (and its password, unless one is stored)
    sent_folder: str = ""  # IMAP folder that keeps a copy of each mail sent; "" keeps none
    subject_style: str = "key"  # "key": "[SD-42] summary"; "reply": "Re: <customer's subject> [SD-42]"
    outbound_charset: str = "utf-8"  # or "iso-2022-jp" (CP50220) for old clients and gateways
    max_attachment_bytes: int = 10 * 1024 * 1024  # per file; larger ones are named with a link
    max_mails_per_minute: int = 10
    auth: AuthMethod = AuthMethod.PASSWORD
    oauth: OAuthSettings = field(default_factory=OAuthSettings)
    first_import: FirstImport = FirstImport.ALL  # links stored before the choice existed took all unread mail
    first_import_days: int = 7  # for FirstImport.RECENT
    linked_at: datetime | None = None  # set by the store when the link is added

    @property
    def import_since(self) -> datetime | None:
        """Mail received before this time is left alone; None: every unread mail is taken."""
        if self.linked_at is None or self.first_import is FirstImport.ALL:
            return None
        days = self.first_import_days if self.first_import is FirstImport.RECENT else 0
        return self.linked_at - timedelta(days=days)

    @property
    def own_addresses(self) -> frozenset[str]:
        mine = (self.address, self.username, self.from_address, *tuple(self.aliases))
        return frozenset(a.lower() for a in mine if "@" in a)
