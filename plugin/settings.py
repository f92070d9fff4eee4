"""The one settings object, built from JSM_MAIL_* environment variables (and an optional .env)."""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from cryptography.fernet import Fernet

from plugin.domain import Secret, check_label

PREFIX = "JSM_MAIL_"
MB = 1024 * 1024
FORGE_APP_ID = "ari:cloud:ecosystem::app/6f1c2a7e-3b0d-4c59-9a1e-5d2b7c8e4f10"  # app.id in manifest.yml
# Forge remote invocation contract: the keys that sign Forge Invocation Tokens.
FORGE_JWKS_URL = "https://forge.cdn.prod.atlassian-dev.net/.well-known/jwks.json"
# Owner-only modes for everything in the data dir: the database, kept mails and generated keys.
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600


class SettingsError(ValueError):
    """A JSM_MAIL_* value that cannot be used; the message names the variable."""


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def _persisted_secret(path: Path, make: Callable[[], str]) -> str:
    """A value generated once into a file readable only by its owner."""
    if path.is_file():
        return path.read_text(encoding="ascii").strip()
    path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(value)
    return value


# What jsm-mail keeps in the data dir; only these are touched, whatever else the folder holds.
OWN_FILES = ("jsm-mail.db*", "secret.key", "admin.password", "dry-run-jira.json", "mail", "mail/*.eml")


def make_private(data_dir: Path) -> None:
    """Create the data dir; make it and jsm-mail's files in it owner-only (0700 folders, 0600 files)."""
    data_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    data_dir.chmod(PRIVATE_DIR)
    for pattern in OWN_FILES:
        for path in data_dir.glob(pattern):
            if not path.is_symlink():
                path.chmod(PRIVATE_DIR if path.is_dir() else PRIVATE_FILE)


class _Env:
    """Typed reads of JSM_MAIL_* values; a bad value raises SettingsError naming the variable."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def text(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(PREFIX + name) or default

    def number(self, name: str, default: float, *, minimum: float, maximum: float | None = None,
               whole: bool = True) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw) if whole else float(raw)
        except ValueError:
            kind = "a whole number" if whole else "a number"
            raise SettingsError(f"{PREFIX}{name} must be {kind}, not {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            limits = f"at least {minimum:g}" if maximum is None else f"between {minimum:g} and {maximum:g}"
            raise SettingsError(f"{PREFIX}{name} must be {limits}, not {raw!r}")
        return value

    def label(self, name: str, default: str) -> str:
        value = self.text(name, default) or default
        try:
            check_label(value)
        except ValueError as exc:
            raise SettingsError(f"{PREFIX}{name}: {exc}") from None
        return value

    def timezone(self, name: str, default: str) -> str:
        value = self.text(name, default) or default
        if value not in available_timezones():
            raise SettingsError(f"{PREFIX}{name} must be an IANA time zone such as Asia/Tokyo, not {value!r}")
        return value

    def url(self, name: str) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise SettingsError(f"{PREFIX}{name} must be a web address such as https://your-site.atlassian.net, "
                                f"not {value!r}")
        return value.rstrip("/")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    jira_url: str | None
    jira_email: str | None
    jira_api_token: Secret
    secret_key: Secret
    admin_user: str
    admin_password: Secret  # empty when only a hash is configured
    admin_password_hash: str | None = None  # werkzeug hash; preferred over admin_password in production
    secret_key_file: Path | None = None  # where secret_key was read from; None when it came from the environment
    host: str = "127.0.0.1"
    port: int = 8080
    poll_interval_s: int = 60
    max_size_bytes: int = 50 * MB
    processed_label: str = "jsm-processed"
    rejected_label: str = "jsm-rejected"
    log_retention_days: int = 365
    max_attempts: int = 5
    jira_timeout_s: float = 30.0
    ca_file: str | None = None  # extra CA bundle for mailbox TLS (a company CA, a test server)
    # Seconds Jira's search index may trail a create; a retried mail looks for its request after that.
    jira_index_lag_s: float = 30.0
    link_failing_alert_s: int = 900  # /health answers 503 once a link has failed this long
    # A worker that stops renewing its link's lease (a dead machine) loses the link after this long.
    lease_ttl_s: float = 300.0
    # A mail marked "sending" this long ago belongs to a process that stopped mid-send: check it, send it again.
    sending_stale_s: float = 600.0
    # Fault point for crash tests (plugin.faults): "kill-at:POINT[:N]".
    fault: str | None = None
    forge_app_id: str = FORGE_APP_ID  # the audience every Forge Invocation Token must name
    forge_jwks_url: str = FORGE_JWKS_URL
    timezone: str = "UTC"  # admin pages show times in this zone unless the admin picks another
    # Kept IMAP connections that wait for new mail (IDLE, RFC 2177); links beyond them are polled on schedule only.
    idle_max_connections: int = 20
    public_url: str | None = None  # where browsers reach the service, for OAuth redirect URLs; else the request's host
    google_client_id: str = ""  # the Google Cloud OAuth client of "Sign in with Google"
    google_client_secret: Secret = field(default_factory=lambda: Secret(""))
    google_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"
    log_format: str = "text"  # or "json": one JSON object a line
    # /metrics answers a request carrying "Authorization: Bearer <this>"; without one, only loopback callers.
    metrics_token: Secret = field(default_factory=lambda: Secret(""))
    alert_to: tuple[str, ...] = ()  # admins mailed when a link starts failing and when it recovers
    # A mail server of the service's own for alert mail; without it each link's own way of sending is used.
    alert_smtp_host: str | None = None
    alert_smtp_port: int | None = None
    alert_smtp_security: str = "starttls"
    alert_smtp_username: str = ""
    alert_smtp_password: Secret = field(default_factory=lambda: Secret(""))
    alert_from: str = ""  # From of alert mail; default: the link's own From
    # Processor seconds one mail may take to read (parse, classify, route); past it: rejected as malformed.
    mail_time_budget_s: float = 10.0

    @property
    def demo(self) -> bool:
        """No Jira configured: a dry-run Jira records what would happen."""
        return not self.jira_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment; raises SettingsError naming the first unusable variable."""
        env = dict(os.environ if environ is None else environ)
        env = {**_read_dotenv(Path(env.get("JSM_MAIL_ENV_FILE", ".env"))), **env}
        read = _Env(env)

        data_dir = Path(read.text("DATA_DIR", "./var") or "./var").resolve()
        make_private(data_dir)
        key_file = None if read.text("SECRET_KEY") else Path(read.text("SECRET_KEY_FILE") or data_dir / "secret.key")
        secret_key = read.text("SECRET_KEY") or _persisted_secret(
            key_file or data_dir / "secret.key", lambda: Fernet.generate_key().decode("ascii"))
        try:
            Fernet(secret_key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise SettingsError(f"{key_file or 'JSM_MAIL_SECRET_KEY'} does not hold a Fernet key "
                                "(32 url-safe base64-encoded bytes)") from None
        password_hash = read.text("ADMIN_PASSWORD_HASH")
        admin_password = read.text("ADMIN_PASSWORD") or ("" if password_hash else _persisted_secret(
            data_dir / "admin.password", lambda: secrets.token_urlsafe(12)))
        return cls(
            data_dir=data_dir,
            database_url=read.text("DATABASE_URL") or f"sqlite:///{data_dir / 'jsm-mail.db'}",
            jira_url=read.url("JIRA_URL"),
            jira_email=read.text("JIRA_EMAIL"),
            jira_api_token=Secret(read.text("JIRA_API_TOKEN", "") or ""),
            secret_key=Secret(secret_key),
            admin_user=read.text("ADMIN_USER", "admin") or "admin",
            admin_password=Secret(admin_password),
            admin_password_hash=password_hash,
            secret_key_file=key_file,
            host=read.text("HOST", "127.0.0.1") or "127.0.0.1",
            port=int(read.number("PORT", 8080, minimum=1, maximum=65535)),
            poll_interval_s=int(read.number("POLL_INTERVAL_S", 60, minimum=1)),
            max_size_bytes=int(read.number("MAX_SIZE_BYTES", 50 * MB, minimum=1)),
            processed_label=read.label("PROCESSED_LABEL", "jsm-processed"),
            rejected_label=read.label("REJECTED_LABEL", "jsm-rejected"),
            log_retention_days=int(read.number("LOG_RETENTION_DAYS", 365, minimum=1)),
            max_attempts=int(read.number("MAX_ATTEMPTS", 5, minimum=1)),
            jira_timeout_s=read.number("JIRA_TIMEOUT_S", 30, minimum=0.1, whole=False),
            jira_index_lag_s=read.number("JIRA_INDEX_LAG_S", 30, minimum=0, whole=False),
            ca_file=read.text("CA_FILE"),
            link_failing_alert_s=int(read.number("LINK_FAILING_ALERT_S", 900, minimum=1)),
            lease_ttl_s=read.number("LEASE_TTL_S", 300, minimum=1, whole=False),
            sending_stale_s=read.number("SENDING_STALE_S", 600, minimum=1, whole=False),
            fault=read.text("FAULT"),
            forge_app_id=read.text("FORGE_APP_ID", FORGE_APP_ID) or FORGE_APP_ID,
            forge_jwks_url=read.text("FORGE_JWKS_URL", FORGE_JWKS_URL) or FORGE_JWKS_URL,
            timezone=read.timezone("TIMEZONE", "UTC"),
            idle_max_connections=int(read.number("IDLE_MAX_CONNECTIONS", 20, minimum=0)),
            public_url=read.url("PUBLIC_URL"),
            google_client_id=read.text("GOOGLE_CLIENT_ID", "") or "",
            google_client_secret=Secret(read.text("GOOGLE_CLIENT_SECRET", "") or ""),
            google_authorize_url=read.url("GOOGLE_AUTHORIZE_URL") or "https://accounts.google.com/o/oauth2/v2/auth",
            google_token_url=read.url("GOOGLE_TOKEN_URL") or "https://oauth2.googleapis.com/token",
            **_watch_settings(read),
            mail_time_budget_s=read.number("MAIL_TIME_BUDGET_S", 10.0, minimum=0.01, whole=False),
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _watch_settings(read: _Env) -> dict[str, Any]:
    """Logging, /metrics and alert mail: how an admin watches the service."""
    log_format = (read.text("LOG_FORMAT", "text") or "text").lower()
    if log_format not in ("text", "json"):
        raise SettingsError(f"{PREFIX}LOG_FORMAT must be text or json, not {log_format!r}")
    alert_to = tuple(a.strip() for a in (read.text("ALERT_TO", "") or "").split(",") if a.strip())
    bad = [a for a in alert_to if "@" not in a]
    if bad:
        raise SettingsError(f"{PREFIX}ALERT_TO must be mail addresses separated by commas, not {bad[0]!r}")
    security = (read.text("ALERT_SMTP_SECURITY", "starttls") or "starttls").lower()
    if security not in ("ssl", "starttls", "none"):
        raise SettingsError(f"{PREFIX}ALERT_SMTP_SECURITY must be ssl, starttls or none, not {security!r}")
    port = read.number("ALERT_SMTP_PORT", 0, minimum=0, maximum=65535)
    return {"log_format": log_format, "metrics_token": Secret(read.text("METRICS_TOKEN", "") or ""),
            "alert_to": alert_to, "alert_smtp_host": read.text("ALERT_SMTP_HOST"),
            "alert_smtp_port": int(port) or None, "alert_smtp_security": security,
            "alert_smtp_username": read.text("ALERT_SMTP_USERNAME", "") or "",
            "alert_smtp_password": Secret(read.text("ALERT_SMTP_PASSWORD", "") or ""),
            "alert_from": read.text("ALERT_FROM", "") or ""}
