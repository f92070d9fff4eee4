"""What every stage after parsing may consult: settings, the link, the store and Jira."""
from __future__ import annotations

from dataclasses import dataclass, field

from plugin.domain import Link
from plugin.jira.gateway import JiraGateway, RequestInfo
from plugin.settings import Settings
from plugin.store.store import Store


@dataclass
class Context:
    settings: Settings
    link: Link
    store: Store
    jira: JiraGateway
    _project_key: str | None = field(default=None, repr=False)
    _requests: dict[str, RequestInfo | None] = field(default_factory=dict, repr=False)

    @property
    def project_key(self) -> str:
        """The service desk's project key, asked of Jira once per polling round."""
        if self._project_key is None:
            self._project_key = self.jira.project_key(self.link.service_desk_id)
        return self._project_key

    def request(self, key_or_id: str) -> RequestInfo | None:
        """A request as Jira has it, asked once per polling round."""
        if key_or_id not in self._requests:
            self._requests[key_or_id] = self.jira.request(key_or_id)
        return self._requests[key_or_id]

    def forget_request(self, key: str) -> None:
        """Drop the cached request after we changed it (participants, links)."""
        self._requests.pop(key, None)
