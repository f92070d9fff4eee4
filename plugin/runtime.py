"""The long-lived parts one process shares: settings, store and Jira, each built once on first use."""
from __future__ import annotations

from plugin import faults
from plugin.jira.dry_run import DryRunJira
from plugin.jira.forge_auth import ForgeSystemAuth, SiteToken
from plugin.jira.gateway import JiraGateway
from plugin.jira.rest import RestJira
from plugin.link_health import LinkHealth
from plugin.settings import Settings
from plugin.store.forge_installations import ForgeInstallations
from plugin.store.store import Store


class Runtime:
    def __init__(self, settings: Settings, *, store: Store | None = None, jira: JiraGateway | None = None) -> None:
        self.settings = settings
        faults.arm(settings.fault)
        self._store = store
        self._jira = jira
        self.link_health = LinkHealth()  # failing links, as this process's polls saw them

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.settings)
        return self._store

    @property
    def jira(self) -> JiraGateway:
        """The dry-run Jira in demo mode (no JSM_MAIL_JIRA_URL), else Jira Cloud's REST APIs: with the API
        token, or, without one, as the Forge app installed on the site (its latest system token)."""
        if self._jira is None:
            settings = self.settings
            if settings.jira_url is None:
                self._jira = DryRunJira(settings.data_dir / "dry-run-jira.json")
            elif not settings.jira_api_token.reveal():
                self._jira = RestJira(settings.jira_url, "", settings.jira_api_token, settings.jira_timeout_s,
                                      auth=ForgeSystemAuth(settings.jira_url, self._site_token))
            else:
                self._jira = RestJira(settings.jira_url, settings.jira_email or "", settings.jira_api_token,
                                      settings.jira_timeout_s)
        return self._jira

    def _site_token(self) -> SiteToken | None:
        """The system token of the configured site's latest Forge call, if it brought one."""
        found = ForgeInstallations(self.store).for_site(self.settings.jira_url or "")
        if found is None or found.api_base_url is None or found.system_token is None or found.token_expires is None:
            return None
        return SiteToken(found.api_base_url, found.system_token, found.token_expires)
