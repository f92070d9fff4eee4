"""The long-lived parts one process shares: settings, store and Jira, each built once on first use."""
from __future__ import annotations

from plugin import faults
from plugin.jira.dry_run import DryRunJira
from plugin.jira.gateway import JiraGateway
from plugin.jira.rest import RestJira
from plugin.link_health import LinkHealth
from plugin.settings import Settings
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
        """The dry-run Jira in demo mode (no JSM_MAIL_JIRA_URL), else Jira Cloud's REST APIs."""
        if self._jira is None:
            settings = self.settings
            if settings.jira_url is None:
                self._jira = DryRunJira(settings.data_dir / "dry-run-jira.json")
            else:
                self._jira = RestJira(settings.jira_url, settings.jira_email or "", settings.jira_api_token,
                                      settings.jira_timeout_s)
        return self._jira
