"""One behaviour suite, run against every way of reaching a mailbox: IMAP and POP3 on the real Dovecot
(with a password and with XOAUTH2), EWS on the fake Exchange (Basic and app-only OAuth), Graph on the
fake Graph API. Each polls through the whole service into the fake Jira, mails agents' answers through
the link's own way (SMTP, SMTP with XOAUTH2, EWS, Graph sendMail), and passes `links test`."""
from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from plugin.domain import AuthMethod, Link, OAuthSettings, Secret, Security
from plugin.jira.rest import RestJira
from plugin.link_check import check_link
from plugin.poll import PollReport, poll_mailbox
from plugin.runtime import Runtime
from tests.conftest import mail_file
from tests.mailboxes.test_ews import ews_link
from tests.mailboxes.test_graph import graph_link

PROTOCOLS = ["imap", "pop3", "imap-xoauth2", "pop3-xoauth2", "ews", "ews-oauth2-app", "graph"]


@dataclass
class Mailbox:
    """A linked mailbox as the suite sees it: deliver mail, read back what became of it."""

    link: Link
    deliver: Callable[[bytes], object]
    state: Callable[[object], str]  # "untouched", "processed", "rejected" or "gone"
    labels: bool  # False for POP3: handled mail is deleted, rejected mail kept untouched
    sent: Callable[[], list[bytes]] = field(default=list)  # the mail sent through the link's own way


def smtp_sending(request, box: Mailbox) -> Mailbox:
    """An IMAP or POP3 box that sends through the plain SMTP server on loopback."""
    sink = request.getfixturevalue("smtp_sink")
    link = replace(box.link, smtp_host=sink.host, smtp_port=sink.port, smtp_security=Security.NONE)
    return replace(box, link=link, sent=lambda: [m.data for m in sink.messages])


def dovecot_box(mail_account, protocol: str, **changes: object) -> Mailbox:
    def state(uid: object) -> str:
        present = {u: flags for u, flags, _ in mail_account.messages()}
        if uid not in present:
            return "gone"
        flags = present[uid]
        if {"\\Seen", "jsm-processed"} <= flags:
            return "processed"
        return "rejected" if {"\\Seen", "jsm-rejected"} <= flags else "untouched"
    link = mail_account.link(protocol=protocol, id=0, address="support@example.test", **changes)
    return Mailbox(link, mail_account.append, state, labels=protocol == "imap")


def category_state(categories: list[str], is_read: bool) -> str:
    if is_read and categories == ["jsm-processed"]:
        return "processed"
    if is_read and categories == ["jsm-rejected"]:
        return "rejected"
    return "untouched" if not categories and not is_read else f"odd: {categories} read={is_read}"


@pytest.fixture(params=PROTOCOLS)
def box(request, mail_account, tmp_path, token_introspection) -> tuple[Mailbox, str | None]:
    """The mailbox under test and the CA file the service must trust."""
    kind = request.param
    if kind in ("imap", "pop3"):
        return smtp_sending(request, dovecot_box(mail_account, kind)), None
    if kind.endswith("xoauth2"):
        fake_graph = request.getfixturevalue("fake_graph")
        token_introspection.owner = lambda t: mail_account.username if fake_graph.token_is_valid(t) else None
        oauth = OAuthSettings(tenant_id=fake_graph.tenant_id, client_id=fake_graph.client_id,
                              authority=fake_graph.url, refresh_token=Secret(fake_graph.issue_refresh_token()))
        # Sending by SMTP AUTH XOAUTH2 with the same token: the server takes tokens issued with SMTP.Send.
        smtp = request.getfixturevalue("smtp_xoauth2")
        smtp.bearer = lambda user, token: (user == mail_account.username
                                           and fake_graph.token_allows(token, "https://outlook.office.com/SMTP.Send"))
        box = dovecot_box(mail_account, kind.partition("-")[0], password=Secret(""),
                          auth=AuthMethod.OAUTH2_DELEGATED, oauth=oauth, smtp_host=smtp.host, smtp_port=smtp.port,
                          smtp_security=Security.STARTTLS)
        bundle = tmp_path / "ca.pem"
        bundle.write_bytes(Path(fake_graph.cafile).read_bytes() + Path(smtp.cafile).read_bytes())
        return replace(box, sent=lambda: [m.data for m in smtp.messages]), str(bundle)
    if kind == "ews":
        fake_ews = request.getfixturevalue("fake_ews")
        return Mailbox(ews_link(fake_ews, id=0), fake_ews.deliver,
                       lambda i: category_state(fake_ews.message(i).categories, fake_ews.message(i).is_read),
                       labels=True, sent=lambda: fake_ews.sent), None
    if kind == "ews-oauth2-app":
        fake_ews, fake_graph = request.getfixturevalue("fake_ews_tls"), request.getfixturevalue("fake_graph")
        fake_ews.bearer = lambda token: fake_graph.token_is_valid(token, "app-ews")
        bundle = tmp_path / "ca.pem"
        bundle.write_bytes(b"".join(Path(name).read_bytes() for name in (fake_ews.cafile, fake_graph.cafile)))
        oauth = OAuthSettings(tenant_id=fake_graph.tenant_id, client_id=fake_graph.client_id,
                              client_secret=Secret(fake_graph.client_secret), authority=fake_graph.url)
        link = ews_link(fake_ews, id=0, password=Secret(""), username=fake_ews.address,
                        auth=AuthMethod.OAUTH2_APP, oauth=oauth)
        return Mailbox(link, fake_ews.deliver,
                       lambda i: category_state(fake_ews.message(i).categories, fake_ews.message(i).is_read),
                       labels=True, sent=lambda: fake_ews.sent), str(bundle)
    fake_graph = request.getfixturevalue("fake_graph")
    return Mailbox(graph_link(fake_graph, id=0), fake_graph.add,
                   lambda i: category_state(fake_graph.messages[i].categories, fake_graph.messages[i].is_read),
                   labels=True, sent=lambda: fake_graph.sent), fake_graph.cafile


@dataclass
class Linked:
    box: Mailbox
    poll: Callable[[], PollReport]
    log: Callable[[], list]
    runtime: Runtime
    link: Callable[[], Link]

    def handled(self, outcome: str) -> str:
        """What a mail that ended in `outcome` looks like in this mailbox."""
        if not self.box.labels:
            return "gone" if outcome == "processed" else "untouched"
        return outcome


@pytest.fixture
def linked(box, settings, store) -> Linked:
    mailbox, cafile = box
    settings = settings.with_(ca_file=cafile)
    link = store.add_link(replace(mailbox.link, id=0))
    jira = RestJira(settings.jira_url, settings.jira_email, settings.jira_api_token, settings.jira_timeout_s)
    return Linked(mailbox, lambda: poll_mailbox(store.link(link.id), settings, store, jira),
                  lambda: list(reversed(store.processing_log(link=link.name))),
                  Runtime(settings, store=store, jira=jira), lambda: store.link(link.id))


def test_new_mail_becomes_one_request_and_is_labelled(linked, fake_jira):
    mail = linked.box.deliver(mail_file("request_plain.eml"))

    assert linked.poll().outcomes == {"created": 1}
    assert linked.poll().outcomes == {}

    assert [r.summary for r in fake_jira.requests] == ["VPN drops every hour"]
    assert linked.box.state(mail) == linked.handled("processed")


def test_a_reply_becomes_a_comment_on_its_request(linked, fake_jira):
    linked.box.deliver(mail_file("thread_original_outlook.eml"))
    linked.poll()
    reply = linked.box.deliver(mail_file("thread_reply_in_reply_to_gmail.eml"))

    assert linked.poll().outcomes == {"commented": 1}

    [request] = fake_jira.requests
    assert any("It is back online now" in c.body for c in request.comments)
    assert linked.box.state(reply) == linked.handled("processed")


def test_a_rejected_mail_is_labelled_or_kept_and_logged_once(linked, fake_jira):
    mail = linked.box.deliver(mail_file("invalid_no_from.eml"))

    linked.poll()
    linked.poll()

    assert fake_jira.requests == []
    assert [entry.outcome for entry in linked.log()] == ["rejected"]
    assert linked.box.state(mail) == linked.handled("rejected")


def test_a_jira_outage_leaves_mail_untouched_and_it_is_handled_once_later(linked, fake_jira):
    mail = linked.box.deliver(mail_file("request_plain.eml"))
    fake_jira.start_outage(503)

    assert linked.poll().outcomes == {"waiting-retry": 1}
    assert linked.box.state(mail) == "untouched"

    fake_jira.end_outage()
    linked.poll()
    linked.poll()
    assert len(fake_jira.requests) == 1
    assert linked.box.state(mail) == linked.handled("processed")


def test_an_agents_answer_is_mailed_through_the_links_own_way(linked, fake_jira):
    linked.box.deliver(mail_file("request_plain.eml"))
    linked.poll()
    [request] = fake_jira.requests
    fake_jira.add_agent_comment(request.key, "Please restart the VPN client.")

    report = linked.poll()
    linked.poll()

    assert report.outbound is not None and report.outbound.sent == 1
    [sent] = linked.box.sent()
    mail = email.message_from_bytes(sent, policy=email.policy.default)
    assert mail["To"] == "Ann Customer <ann@example.org>"
    assert mail["Subject"] == f"[{request.key}] VPN drops every hour"
    assert mail["In-Reply-To"] == "<vpn-drops-1@example.org>"
    assert "Please restart the VPN client." in mail.get_body(("plain",)).get_content()


def test_links_test_signs_in_lists_the_folder_and_writes_a_label(linked, fake_jira):
    linked.box.deliver(mail_file("request_plain.eml"))

    result = check_link(linked.link(), linked.runtime)

    assert result.ok, result.lines
    assert any(line.startswith("ok: signed in to") for line in result.lines)
    assert "ok: folder INBOX: 1 mail(s) waiting" in result.lines
    assert linked.poll().outcomes == {"created": 1}  # the test touched no mail


def test_links_test_says_in_plain_words_what_the_mailbox_refused(settings, store, mail_account, fake_graph,
                                                                 token_introspection):
    jira = RestJira(settings.jira_url, settings.jira_email, settings.jira_api_token, settings.jira_timeout_s)
    runtime = Runtime(settings.with_(ca_file=fake_graph.cafile), store=store, jira=jira)
    wrong_password = store.add_link(mail_account.link(id=0, name="imap", password=Secret("wrong")))
    read_only = store.add_link(graph_link(fake_graph, id=0, name="graph"))
    fake_graph.read_only = True  # the app holds Mail.Read, not Mail.ReadWrite

    imap = check_link(wrong_password, runtime)
    graph = check_link(read_only, runtime)

    assert not imap.ok and not graph.ok
    [imap_failure] = [line for line in imap.lines if line.startswith("FAILED")]
    assert f"refused the login of {mail_account.username}" in imap_failure
    [graph_failure] = [line for line in graph.lines if line.startswith("FAILED")]
    assert graph_failure.startswith(f"FAILED: graph mailbox {fake_graph.address}: could not write a label")
    assert "Mail.ReadWrite application permission" in graph_failure
    assert "ok: signed in to graph mailbox" in "\n".join(graph.lines)
