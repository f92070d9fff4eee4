"""The one settings object, built from JSM_MAIL_* environment variables (and an optional .env)."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from cryptography.fernet import Fernet

from plugin.domain import Secret

PREFIX = "JSM_MAIL_"
MB = 1024 * 1024
FORGE_APP_ID = "ari:cloud:ecosystem::app/6f1c2a7e-3b0d-4c59-9a1e-5d2b7c8e4f10"  # app.id in manifest.yml
# Forge remote invocation contract: the keys that sign Forge Invocation Tokens.
FORGE_JWKS_URL = "https://forge.cdn.prod.atlassian-dev.net/.well-known/jwks.json"


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


def _persisted_secret(path: Path, make: callable) -> str:
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
    # Test-only fault injection: "exit-after-jira-create" kills the poll process right after
    # Jira created a request, before the ledger row and mailbox label, to prove recovery.
    fault: str | None = None
    forge_app_id: str = FORGE_APP_ID  # the audience every Forge Invocation Token must name
    forge_jwks_url: str = FORGE_JWKS_URL

    @property
    def demo(self) -> bool:
        """No Jira configured: a dry-run Jira records what would happen."""
        return not self.jira_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = dict(os.environ if environ is None else environ)
        env = {**_read_dotenv(Path(env.get("JSM_MAIL_ENV_FILE", ".env"))), **env}
        get = lambda name, default=None: env.get(PREFIX + name) or default  # noqa: E731

        data_dir = Path(get("DATA_DIR", "./var")).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        secret_key = get("SECRET_KEY") or _persisted_secret(
            data_dir / "secret.key", lambda: Fernet.generate_key().decode("ascii"))
        admin_password = get("ADMIN_PASSWORD") or _persisted_secret(
            data_dir / "admin.password", lambda: secrets.token_urlsafe(12))
        return cls(
            data_dir=data_dir,
            database_url=get("DATABASE_URL", f"sqlite:///{data_dir / 'jsm-mail.db'}"),
            jira_url=get("JIRA_URL"),
            jira_email=get("JIRA_EMAIL"),
            jira_api_token=Secret(get("JIRA_API_TOKEN", "")),
            secret_key=Secret(secret_key),
            admin_user=get("ADMIN_USER", "admin"),
            admin_password=Secret(admin_password),
            host=get("HOST", "127.0.0.1"),
            port=int(get("PORT", 8080)),
            poll_interval_s=int(get("POLL_INTERVAL_S", 60)),
            max_size_bytes=int(get("MAX_SIZE_BYTES", 50 * MB)),
            processed_label=get("PROCESSED_LABEL", "jsm-processed"),
            rejected_label=get("REJECTED_LABEL", "jsm-rejected"),
            log_retention_days=int(get("LOG_RETENTION_DAYS", 365)),
            max_attempts=int(get("MAX_ATTEMPTS", 5)),
            jira_timeout_s=float(get("JIRA_TIMEOUT_S", 30)),
            ca_file=get("CA_FILE"),
            fault=get("FAULT"),
            forge_app_id=get("FORGE_APP_ID", FORGE_APP_ID),
            forge_jwks_url=get("FORGE_JWKS_URL", FORGE_JWKS_URL),
        )

    def with_(self, **changes: object) -> "Settings":
        return replace(self, **changes)
