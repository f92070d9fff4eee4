"""One Exchange Online mailbox read over EWS, then switched to Microsoft Graph with `links switch` while mail keeps
arriving: the fake Graph serves the very items the fake EWS holds (a thin view with Graph's own ids), so read
state and categories written over one protocol are seen over the other."""
from __future__ import annotations

import base64
from collections.abc import Iterator, MutableMapping
from pathlib import Path

import pytest

from plugin.domain import AuthMethod, MailProtocol
from plugin.jira.rest import RestJira
from plugin.poll import poll_mailbox
from tests.fakes.ews import FakeEws
from tests.fakes.ews import FakeMessage as EwsItem
from tests.fakes.graph import SENT_ITEMS, FakeGraph
from tests.fakes.graph import FakeMessage as GraphMessage
from tests.mailboxes.test_ews import ews_link
from tests.mailboxes.test_switch import cli  # noqa: F401 (fixture)


class GraphView:
    """A Graph message that is an EWS item: what Graph writes (read state, categories) lands on the item."""

    def __init__(self, item: EwsItem, graph_id: str, folder: str) -> None:
        self._item, self.id, self.folder, self.attachments = item, graph_id, folder, []

    mime = property(lambda self: self._item.mime)
    received = property(lambda self: self._item.received)
    is_read = property(lambda self: self._item.is_read, lambda self, value: setattr(self._item, "is_read", value))
    categories = property(lambda self: self._item.categories,
                          lambda self, value: setattr(self._item, "categories", value))


class SharedMailbox(MutableMapping[str, object]):
    """FakeGraph.messages over FakeEws.messages. Graph and EWS ids of one item differ in Exchange
    (learn.microsoft.com/graph/api/user-translateexchangeids), so the view names items its own way; mail
    Graph itself creates (sent mail, drafts) is kept beside."""

    def __init__(self, ews: FakeEws) -> None:
        self.ews = ews
        self.own: dict[str, GraphMessage] = {}

    @staticmethod
    def graph_id(ews_id: str) -> str:
        return "AAMkAGI" + base64.b64encode(ews_id.encode()).decode()

    def _ews_id(self, graph_id: str) -> str | None:
        if not graph_id.startswith("AAMkAGI"):
            return None
        try:
            return base64.b64decode(graph_id.removeprefix("AAMkAGI")).decode()
        except ValueError:
            return None

    def __getitem__(self, graph_id: str) -> object:
        if graph_id in self.own:
            return self.own[graph_id]
        item = self.ews.messages.get(self._ews_id(graph_id) or "")
        if item is None:
            raise KeyError(graph_id)
        folder = "inbox" if item.folder_id == self.ews.inbox.id else item.folder_id
        return GraphView(item, graph_id, folder)

    def __setitem__(self, graph_id: str, message: object) -> None:
        assert isinstance(message, GraphMessage) and message.folder in (SENT_ITEMS, "drafts")
        self.own[graph_id] = message

    def __delitem__(self, graph_id: str) -> None:
        if graph_id in self.own:
            del self.own[graph_id]
        else:
            self.ews.delete(self._ews_id(graph_id) or graph_id)

    def __iter__(self) -> Iterator[str]:
        return iter([*map(self.graph_id, list(self.ews.messages)), *self.own])

    def __len__(self) -> int:
        return len(self.ews.messages) + len(self.own)


def mail(n: int, subject: str = "VPN drops every hour", reply_to: str | None = None) -> bytes:
    threading = f"In-Reply-To: <{reply_to}>\r\nReferences: <{reply_to}>\r\n" if reply_to else ""
    return (f"From: Ann Customer <ann{n}@example.org>\r\nTo: support@example.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <m{n}@example.org>\r\nDate: Mon, 05 Jan 2026 09:0{n % 10}:00 +0000\r\n{threading}"
            f"\r\nHello {n},\r\nthe VPN drops again.\r\n").encode()


@pytest.fixture
def one_mailbox(fake_ews_tls: FakeEws, fake_graph: FakeGraph) -> FakeEws:
    fake_graph.address = fake_ews_tls.address
    fake_graph.messages = SharedMailbox(fake_ews_tls)
    return fake_ews_tls


def test_ews_to_graph_switch_keeps_labels_and_threading_and_handles_each_mail_once(
        cli, one_mailbox, fake_graph, fake_jira, store, settings, monkeypatch, tmp_path):  # noqa: F811
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(b"".join(Path(name).read_bytes() for name in (one_mailbox.cafile, fake_graph.cafile)))
    monkeypatch.setenv("JSM_MAIL_CA_FILE", str(bundle))
    settings = settings.with_(ca_file=str(bundle))
    jira = RestJira(settings.jira_url, settings.jira_email, settings.jira_api_token, settings.jira_timeout_s)
    link = store.add_link(ews_link(one_mailbox, id=0, address=one_mailbox.address))

    def poll() -> None:
        report = poll_mailbox(store.link(link.id), settings, store, jira)
        assert report.error is None, report.error

    over_ews = [one_mailbox.deliver(mail(n)) for n in (1, 2)]
    poll()
    poll()
    first_key = next(r.key for r in fake_jira.requests if "Hello 1" in r.description)
    assert len(fake_jira.requests) == 2
    arrived_meanwhile = one_mailbox.deliver(mail(3))  # after the last EWS round, before the switch
    monkeypatch.setenv("APP_SECRET", fake_graph.client_secret)

    code, output = cli("links", "switch", link.name, "--protocol", "graph", "--host", fake_graph.url,
                       "--tenant-id", fake_graph.tenant_id, "--client-id", fake_graph.client_id,
                       "--client-secret-env", "APP_SECRET", "--authority", fake_graph.url)

    assert code == 0, output
    switched = store.link(link.id)
    assert (switched.protocol, switched.auth, switched.id) == (MailProtocol.GRAPH, AuthMethod.OAUTH2_APP, link.id)
    # No issue key in the subject, and two requests of that subject: only the threading index, which
    # recorded mail 1's Message-ID over EWS, can tell which request the reply belongs to.
    reply = one_mailbox.deliver(mail(4, "RE: VPN drops every hour", reply_to="m1@example.org"))
    poll()
    later = one_mailbox.deliver(mail(5, "Printer jam"))
    poll()
    poll()

    # Each mail once: three requests (1, 2, the one that arrived meanwhile), then the printer; the reply
    # after the switch is a comment on the request the first mail made over EWS.
    assert len(fake_jira.requests) == 4
    first = next(r for r in fake_jira.requests if r.key == first_key)
    assert [c.body for c in first.comments if "Hello 4" in c.body]
    assert sum("Hello 4" in c.body for r in fake_jira.requests for c in r.comments) == 1
    for item_id in (*over_ews, arrived_meanwhile, reply, later):
        item = one_mailbox.message(item_id)
        assert item.is_read and item.categories == ["jsm-processed"], (item_id, item.categories)
    # Mail labelled over EWS was never fetched again over Graph: three downloads, of the three newer mails.
    assert sum(path.endswith("/$value") for _, path in fake_graph.requests) == 3
