"""The long-lived parts one process shares: settings, store and Jira, built once."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

from plugin.dry_run import DryRunJira
from plugin.jira_gateway import JiraGateway
from plugin.settings import Settings
from plugin.store import Store

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings

    @cached_property
    def store(self) -> Store:
        return Store(self.settings)

    @cached_property
    def jira(self) -> JiraGateway:
        if self.settings.demo:
            return DryRunJira(self.settings.data_dir / "dry-run-jira.json")
        from plugin.jira_gateway import RestJira
        return RestJira(self.settings.jira_url, self.settings.jira_email or "", self.settings.jira_api_token,
                        self.settings.jira_timeout_s)
