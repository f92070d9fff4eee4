"""What the stages after parsing may consult during one polling round, with per-round caches."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from plugin.domain import Access, Address, Link, RequestInfo
from plugin.errors import MailRejected, RejectReason
from plugin.jira.gateway import JiraGateway
from plugin.route.lookups import ThreadIndex
from plugin.route.rules import Lookups
from plugin.settings import Settings
from plugin.store.store import Store

K = TypeVar("K")
V = TypeVar("V")
ROUND_CACHE_SIZE = 1000  # a backlog round touches at most this many customers and requests before forgetting


class Bounded(Generic[K, V]):
    """A least-recently-used map: a long round keeps memory flat."""

    def __init__(self, size: int = ROUND_CACHE_SIZE) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._size = size

    def get(self, key: K) -> tuple[bool, V | None]:
        if key not in self._items:
            return False, None
        self._items.move_to_end(key)
        return True, self._items[key]

    def put(self, key: K, value: V) -> V:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return value

    def pop(self, key: K) -> None:
        self._items.pop(key, None)


class RoundRequests:
    """The link's project key and the requests threading asks about, each asked of Jira once per round."""

    def __init__(self, jira: JiraGateway, service_desk_id: str) -> None:
        self._jira, self._desk = jira, service_desk_id
        self._project_key: str | None = None
        self._requests: Bounded[str, RequestInfo | None] = Bounded()

    @property
    def project_key(self) -> str:
        if self._project_key is None:
            self._project_key = self._jira.project_key(self._desk)
        return self._project_key

    def request(self, key_or_id: str) -> RequestInfo | None:
        known, info = self._requests.get(key_or_id)
        return info if known else self._requests.put(key_or_id, self._jira.request(key_or_id))

    def forget(self, key: str) -> None:
        """After we changed a request (participants), the next look asks Jira again."""
        self._requests.pop(key)


class RoundCustomers:
    """Customers' accountIds by address, asked of Jira once per round; created on open links."""

    def __init__(self, jira: JiraGateway, link: Link) -> None:
        self._jira, self._link = jira, link
        self._accounts: Bounded[str, str | None] = Bounded()

    def account_id(self, person: Address) -> str | None:
        """The person's account; on an open link a new customer is created for an unknown address."""
        address = person.address.lower()
        known, account = self._accounts.get(address)
        if not known:
            account = self._jira.find_customer(person.address)
        if account is None and self._link.access is Access.OPEN:
            account = self._jira.create_customer(person)
        return self._accounts.put(address, account)

    def reporter(self, person: Address) -> str:
        account = self.account_id(person)
        if account is None:
            raise MailRejected(RejectReason.SENDER_NOT_CUSTOMER,
                               f"{person.address} is not a customer of this service desk, "
                               f"and link {self._link.name} accepts mail from customers only")
        return account


@dataclass
class Context:
    settings: Settings
    link: Link
    store: Store
    jira: JiraGateway
    lease: str | None = None  # this process's hold on the link; None where no poller races (inspect, replay)
    requests: RoundRequests = field(init=False)
    customers: RoundCustomers = field(init=False)
    threads: ThreadIndex = field(init=False)

    def __post_init__(self) -> None:
        self.requests = RoundRequests(self.jira, self.link.service_desk_id)
        self.customers = RoundCustomers(self.jira, self.link)
        self.threads = self.store.thread_index(self.link.id)

    @property
    def lookups(self) -> Lookups:
        return Lookups(self.link, self.threads, self.requests)
