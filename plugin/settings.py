"""The one settings object, built from JSM_MAIL_* environment variables (and an optional .env)."""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from plugin.domain import Secret

PREFIX = "JSM_MAIL_"
MB = 1024 * 1024


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
    """A value generated once into the data dir, readable only by its owner."""
    if path.is_file():
        return path.read_text(encoding="ascii").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(value)
    return value


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    jira_url: str | None
    jira_email: str | None
    jira_api_token: Secret
    secret_key: Secret
    admin_user: str
    admin_password: Secret
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
    # Fault point for crash tests (plugin.faults): "kill-at:POINT[:N]".
    fault: str | None = None

    @property
    def demo(self) -> bool:
        """No Jira configured: a dry-run Jira records what would happen."""
        return not self.jira_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        env = {**_read_dotenv(Path(env.get("JSM_MAIL_ENV_FILE", ".env"))), **env}

        def optional(name: str) -> str | None:
            return env.get(PREFIX + name) or None  # set but empty counts as unset

        def get(name: str, default: str) -> str:
            return optional(name) or default

        data_dir = Path(get("DATA_DIR", "./var")).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        secret_key = optional("SECRET_KEY") or _persisted_secret(
            data_dir / "secret.key", lambda: Fernet.generate_key().decode("ascii"))
        admin_password = optional("ADMIN_PASSWORD") or _persisted_secret(
            data_dir / "admin.password", lambda: secrets.token_urlsafe(12))
        return cls(
            data_dir=data_dir,
            database_url=get("DATABASE_URL", f"sqlite:///{data_dir / 'jsm-mail.db'}"),
            jira_url=optional("JIRA_URL"),
            jira_email=optional("JIRA_EMAIL"),
            jira_api_token=Secret(get("JIRA_API_TOKEN", "")),
            secret_key=Secret(secret_key),
            admin_user=get("ADMIN_USER", "admin"),
            admin_password=Secret(admin_password),
            host=get("HOST", "127.0.0.1"),
            port=int(get("PORT", "8080")),
            poll_interval_s=int(get("POLL_INTERVAL_S", "60")),
            max_size_bytes=int(get("MAX_SIZE_BYTES", str(50 * MB))),
            processed_label=get("PROCESSED_LABEL", "jsm-processed"),
            rejected_label=get("REJECTED_LABEL", "jsm-rejected"),
            log_retention_days=int(get("LOG_RETENTION_DAYS", "365")),
            max_attempts=int(get("MAX_ATTEMPTS", "5")),
            jira_timeout_s=float(get("JIRA_TIMEOUT_S", "30")),
            jira_index_lag_s=float(get("JIRA_INDEX_LAG_S", "30")),
            ca_file=optional("CA_FILE"),
            fault=optional("FAULT"),
        )

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)
