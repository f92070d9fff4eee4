"""Links that read their mailbox with a delegated OAuth token send by SMTP AUTH XOAUTH2 with the same token
source, against aiosmtpd whose authenticator checks the bearer token with the fake identity platform."""
from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from plugin.domain import Address, AuthMethod, OAuthSettings, Secret, Security
from plugin.mailboxes.oauth import forget_tokens
from plugin.outbound.send import deliver
from plugin.store.outbox import Outbox
from tests.conftest import mail_file

SMTP_SEND = "https://outlook.office.com/SMTP.Send"


@pytest.fixture
def oauth_sending(service, mail_account, fake_graph, token_introspection, smtp_xoauth2, tmp_path):
    """The test link reading IMAP with XOAUTH2 and sending through the XOAUTH2 submission server."""
    token_introspection.owner = lambda token: mail_account.username if fake_graph.token_is_valid(token) else None
    smtp_xoauth2.bearer = lambda user, token: user == mail_account.username and fake_graph.token_allows(
        token, SMTP_SEND)
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(Path(fake_graph.cafile).read_bytes() + Path(smtp_xoauth2.cafile).read_bytes())
    service.settings = service.settings.with_(ca_file=str(bundle))
    oauth = OAuthSettings(tenant_id=fake_graph.tenant_id, client_id=fake_graph.client_id, authority=fake_graph.url,
                          refresh_token=Secret(fake_graph.issue_refresh_token()))
    service.relink(password=Secret(""), auth=AuthMethod.OAUTH2_DELEGATED, oauth=oauth, smtp_host=smtp_xoauth2.host,
                   smtp_port=smtp_xoauth2.port, smtp_security=Security.STARTTLS, from_name="Example Support")
    return service


def answered(service, mail_account, fake_jira, text: str = "Please restart the VPN client."):
    """A request raised by mail (read over IMAP XOAUTH2) and an agent's public answer to it."""
    mail_account.append(mail_file("request_plain.eml"))
    service.poll()
    [request] = fake_jira.requests
    fake_jira.add_agent_comment(request.key, text)
    return request


def refreshes(fake_graph) -> int:
    return sum(1 for r in fake_graph.token_requests if r["grant_type"] == "refresh_token")


def test_the_answer_is_sent_with_auth_xoauth2_and_one_token_serves_imap_and_smtp(oauth_sending, mail_account,
                                                                                  fake_jira, fake_graph,
                                                                                  smtp_xoauth2):
    request = answered(oauth_sending, mail_account, fake_jira)

    report = oauth_sending.poll()

    assert report.outbound.sent == 1
    [mail] = smtp_xoauth2.messages
    assert mail.rcpt_tos == ("ann@example.org",)
    assert mail.message["Subject"] == f"[{request.key}] VPN drops every hour"
    assert smtp_xoauth2.logins == [mail_account.username] and smtp_xoauth2.refused == []
    # The sign-in asks for SMTP.Send beside IMAP, so IMAP and SMTP share one access token and one refresh.
    assert {SMTP_SEND, "https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"} <= set(
        fake_graph.token_requests[0]["scope"].split())
    assert refreshes(fake_graph) == 1


def test_an_expired_token_is_refreshed_once_and_the_mail_is_sent(oauth_sending, mail_account, fake_graph,
                                                                 smtp_xoauth2):
    oauth_sending.link = oauth_sending.store.link(oauth_sending.link.id)
    msg = _mail()
    deliver(oauth_sending.link, msg, "support@example.test", ("ann@example.org",), smtp_password=None,
            cafile=oauth_sending.settings.ca_file)

    fake_graph.expire_access_tokens()  # the server knows it ran out; our clock does not
    delivery = deliver(oauth_sending.link, msg, "support@example.test", ("ann@example.org",), smtp_password=None,
                       cafile=oauth_sending.settings.ca_file)

    assert delivery.accepted == ("ann@example.org",)
    assert smtp_xoauth2.refused == [mail_account.username]  # the kept token, once
    assert len(smtp_xoauth2.logins) == 2 and len(smtp_xoauth2.messages) == 2
    assert refreshes(fake_graph) == 2


def test_a_revoked_refresh_token_keeps_the_mail_queued_until_the_link_signs_in_again(oauth_sending, mail_account,
                                                                                    fake_jira, fake_graph,
                                                                                    smtp_xoauth2):
    answered(oauth_sending, mail_account, fake_jira)
    for token in list(fake_graph.refresh_tokens):  # "revoke sessions" ends every refresh token of the user
        fake_graph.revoke(token)
    forget_tokens()  # as after a restart: nothing kept in memory either

    report = oauth_sending.poll()

    assert smtp_xoauth2.messages == [] and report.outbound.sent == 0 and report.outbound.waiting == 1
    assert "AADSTS50173" in (report.outbound.error or "")
    [entry] = Outbox(oauth_sending.store).entries()
    assert entry.state not in ("sent", "send-failed")
    assert any("AADSTS50173" in e.summary for e in oauth_sending.store.error_log())

    # `links auth` again: a new refresh token; the queued mail goes out once.
    oauth_sending.relink(oauth=OAuthSettings(tenant_id=fake_graph.tenant_id, client_id=fake_graph.client_id,
                                             authority=fake_graph.url,
                                             refresh_token=Secret(fake_graph.issue_refresh_token())))
    Outbox(oauth_sending.store).postpone(entry.id, "signed in again", 0)
    oauth_sending.poll()
    oauth_sending.poll()
    assert len(smtp_xoauth2.messages) == 1
    assert Outbox(oauth_sending.store).entries()[0].state == "sent"


def test_an_smtp_password_of_its_own_still_wins_over_the_token(oauth_sending, mail_account, fake_jira,
                                                               smtp_submission):
    """A relay with its own account: the OAuth link logs in to it with that password, not XOAUTH2."""
    smtp_submission.username, smtp_submission.password = "relay-user", "relay-Pa55"
    Outbox(oauth_sending.store).set_smtp_password(oauth_sending.link.id, Secret("relay-Pa55"))
    bundle = Path(oauth_sending.settings.ca_file or "")
    bundle.write_bytes(bundle.read_bytes() + Path(smtp_submission.cafile).read_bytes())
    oauth_sending.relink(smtp_host=smtp_submission.host, smtp_port=smtp_submission.port, smtp_username="relay-user")
    answered(oauth_sending, mail_account, fake_jira)

    oauth_sending.poll()

    assert smtp_submission.logins == ["relay-user"] and len(smtp_submission.messages) == 1


def _mail() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = str(Address("Example Support", "support@example.test"))
    msg["To"] = "ann@example.org"
    msg["Subject"] = "[SD-1] VPN"
    msg.set_content("Please restart the VPN client.")
    return msg


def test_the_copy_in_the_sent_folder_signs_in_with_the_same_token(oauth_sending, mail_account, fake_jira,
                                                                  fake_graph, smtp_xoauth2):
    with mail_account.client(readonly=False) as client:
        client.create_folder("Sent")
    oauth_sending.relink(sent_folder="Sent")
    answered(oauth_sending, mail_account, fake_jira)

    oauth_sending.poll()

    [mail] = smtp_xoauth2.messages
    with mail_account.client() as client:
        client.select_folder("Sent", readonly=True)
        [uid] = client.search(["ALL"])
        copy = email.message_from_bytes(client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"],
                                        policy=email.policy.default)
    assert copy["Message-ID"] == mail.message["Message-ID"]
    assert refreshes(fake_graph) == 1
