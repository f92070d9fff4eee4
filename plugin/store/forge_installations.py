"""The Jira sites that installed the Forge app: one row per installation, its site, and its latest system token."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from plugin.domain import Secret
from plugin.store.models import ForgeInstallationRow, utcnow
from plugin.store.store import Store, aware


def site_host(url: str | None) -> str:
    """The host that names a Jira site, whatever its scheme, case or trailing slash ('' for none)."""
    return (urlsplit(url or "").hostname or "").lower()


@dataclass(frozen=True, slots=True)
class ForgeSeen:
    """What one verified Forge call says about its installation."""

    installation_id: str
    cloud_id: str | None
    site_url: str | None
    api_base_url: str | None
    system_token: Secret | None = None
    token_expires: datetime | None = None


@dataclass(frozen=True, slots=True)
class ForgeInstallation:
    installation_id: str
    cloud_id: str | None
    site_url: str | None
    api_base_url: str | None
    first_seen: datetime
    last_seen: datetime
    system_token: Secret | None
    token_expires: datetime | None


class ForgeInstallations:
    """Installations keyed by the FIT's app.installationId; tokens encrypted like mailbox passwords."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._fernet = Fernet(store.settings.secret_key.reveal().encode("ascii"))

    def note(self, seen: ForgeSeen) -> ForgeInstallation:
        """Record a call: first seen once, last seen now; a site, base URL or token the call names replaces the old."""
        for _ in range(2):  # two first calls at once: the loser of the insert updates the winner's row
            try:
                with self.store.session() as s, s.begin():
                    row = s.get(ForgeInstallationRow, seen.installation_id)
                    if row is None:
                        row = ForgeInstallationRow(installation_id=seen.installation_id, first_seen=utcnow())
                        s.add(row)
                    row.last_seen = utcnow()
                    row.cloud_id = seen.cloud_id or row.cloud_id
                    row.site_url = seen.site_url or row.site_url
                    row.api_base_url = seen.api_base_url or row.api_base_url
                    if seen.system_token is not None:
                        row.system_token_encrypted = self._fernet.encrypt(seen.system_token.reveal().encode("utf-8"))
                        row.system_token_expires = seen.token_expires
                    s.flush()
                    return self._installation(row)
            except IntegrityError:
                continue
        raise RuntimeError(f"cannot record Forge installation {seen.installation_id}")

    def all(self) -> list[ForgeInstallation]:
        with self.store.session() as s:
            return [self._installation(r) for r in s.scalars(
                select(ForgeInstallationRow).order_by(ForgeInstallationRow.first_seen))]

    def for_site(self, site_url: str) -> ForgeInstallation | None:
        """The installation on this site that called last (a reinstalled app gets a new installation id)."""
        host = site_host(site_url)
        found = [i for i in self.all() if site_host(i.site_url) == host]
        return max(found, key=lambda i: i.last_seen, default=None)

    def for_cloud(self, cloud_id: str) -> ForgeInstallation | None:
        found = [i for i in self.all() if i.cloud_id == cloud_id]
        return max(found, key=lambda i: i.last_seen, default=None)

    def _installation(self, row: ForgeInstallationRow) -> ForgeInstallation:
        token = (Secret(self._fernet.decrypt(row.system_token_encrypted).decode("utf-8"))
                 if row.system_token_encrypted else None)
        return ForgeInstallation(row.installation_id, row.cloud_id, row.site_url, row.api_base_url,
                                 aware(row.first_seen), aware(row.last_seen), token,
                                 aware(row.system_token_expires) if row.system_token_expires else None)
