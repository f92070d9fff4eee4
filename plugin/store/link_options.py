"""A link's sign-in settings in its JSON options, every secret encrypted with the store's key."""
from __future__ import annotations

from datetime import date
from typing import Any

from cryptography.fernet import Fernet

from plugin.domain import AuthMethod, Link, OAuthSettings, Secret

SECRET_FIELDS = ("client_secret", "refresh_token")
DATE_FIELDS = ("client_secret_expires", "refresh_token_expires")


def sealed_options(link: Link, fernet: Fernet) -> dict[str, Any]:
    """The link's sign-in settings for its JSON options, with every secret encrypted."""
    oauth = link.oauth
    values: dict[str, Any] = {"tenant_id": oauth.tenant_id, "client_id": oauth.client_id,
                              "certificate_path": oauth.certificate_path, "authority": oauth.authority,
                              "provider": oauth.provider}
    for name in SECRET_FIELDS:
        secret: Secret = getattr(oauth, name)
        values[name] = fernet.encrypt(secret.reveal().encode("utf-8")).decode("ascii") if secret else ""
    for name in DATE_FIELDS:
        when: date | None = getattr(oauth, name)
        values[name] = when.isoformat() if when else None
    return {"auth": link.auth.value, "oauth": values}


def unsealed_options(options: dict[str, Any], fernet: Fernet) -> dict[str, Any]:
    """Link fields back from `sealed_options`; links stored before OAuth get the defaults."""
    if "oauth" not in options:
        return {}
    values = dict(options["oauth"])
    for name in SECRET_FIELDS:
        sealed = values.get(name) or ""
        values[name] = Secret(fernet.decrypt(sealed.encode("ascii")).decode("utf-8") if sealed else "")
    for name in DATE_FIELDS:
        values[name] = date.fromisoformat(values[name]) if values.get(name) else None
    return {"auth": AuthMethod(options.get("auth", AuthMethod.PASSWORD.value)), "oauth": OAuthSettings(**values)}
