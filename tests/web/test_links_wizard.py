"""Linking a mailbox in the admin pages: preset, server, a live test, desk and request type by name, save, poll."""
from __future__ import annotations

import socket

from plugin.poll import poll_mailbox
from tests.conftest import mail_file
from tests.web.conftest import form_token


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wizard_form(client, mail_account, **changes: str) -> dict[str, str]:
    """What an admin submits after choosing "Other IMAP server" and filling in the mailbox."""
    form = {"csrf_token": form_token(client), "preset": "imap", "name": "support", "protocol": "imap",
            "host": mail_account.host, "port": str(mail_account.imap_port), "security": "none", "folder": "INBOX",
            "auth": "password", "username": mail_account.username, "password": mail_account.password,
            "service_desk": "1", "request_type": "10", "access": "open", "first_import": "new",
            "first_import_days": "7", "processed_label": "jsm-processed", "rejected_label": "jsm-rejected",
            "max_size_mb": "25", "reopen_window_days": "14", "smtp_security": "starttls", "charset": "utf-8",
            "action": "save"}
    return {key: value for key, value in (form | changes).items() if value is not None}


def test_the_wizard_links_a_mailbox_tested_first_and_the_poll_then_creates_a_request(admin, mail_account, runtime,
                                                                                      fake_jira):
    presets = admin.get("/admin/links/new").get_data(as_text=True)
    assert "Google Workspace or Gmail" in presets and "Exchange Server on-premises (EWS)" in presets
    google = admin.get("/admin/links/new/google").get_data(as_text=True)
    assert 'value="imap.gmail.com"' in google and 'value="993"' in google and 'value="smtp.gmail.com"' in google

    port = closed_port()
    refused = admin.post("/admin/links/new/imap", data=wizard_form(admin, mail_account, port=str(port),
                                                                      action="test"))
    page = refused.get_data(as_text=True)
    assert f"refused the connection on port {port}: check the port" in page
    assert "Traceback" not in page and runtime.store.link("support") is None

    desks = admin.post("/admin/links/new/imap", data=wizard_form(admin, mail_account, action="refresh",
                                                                    request_type="")).get_data(as_text=True)
    assert "Support (SD)" in desks
    assert '<option value="10">Email request</option>' in desks
    assert '<option disabled value="11">Report an outage (no summary or description field)</option>' in desks
    # The password typed first rides along sealed, so the admin need not type it again.
    assert 'name="password_sealed" type="hidden" value="g' in desks and mail_account.password not in desks

    tested = admin.post("/admin/links/new/imap", data=wizard_form(admin, mail_account, action="test"))
    assert "the mailbox is ready" in tested.get_data(as_text=True)
    assert runtime.store.link("support") is None  # a test saves nothing

    saved = admin.post("/admin/links/new/imap", data=wizard_form(admin, mail_account))
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/admin/links/support")
    link = runtime.store.link("support")
    assert (link.port, link.request_type_id, link.first_import.value) == (mail_account.imap_port, "10", "new")
    assert "Link support saved" in admin.get("/admin/links/support").get_data(as_text=True)

    uid = mail_account.append(mail_file("request_plain.eml"))
    report = poll_mailbox(link, runtime.settings, runtime.store, runtime.jira)
    assert report.outcomes == {"created": 1}
    [request] = fake_jira.requests
    assert request.request_type_id == "10"
    assert "jsm-processed" in mail_account.flags(uid)


def test_a_timeout_is_said_in_plain_words(admin, mail_account, runtime, monkeypatch):
    import plugin.link_probe as probe

    def silent(address, timeout):
        raise TimeoutError("timed out")
    monkeypatch.setattr(probe.socket, "create_connection", silent)
    page = admin.post("/admin/links/new/imap", data=wizard_form(admin, mail_account, port="994", action="test"))
    assert "The server did not answer on port 994 within 10 s: check the port." in page.get_data(as_text=True)


def test_each_bad_value_is_refused_with_its_reason_and_nothing_is_saved(admin, mail_account, runtime):
    page = admin.post("/admin/links/new/imap", data=wizard_form(
        admin, mail_account, port="70000", processed_label="done mail", blocked_domains="spam.example\nnot a domain",
        max_size_mb="0", name="")).get_data(as_text=True)
    assert "A port is a number from 1 to 65535." in page
    assert "cannot be an IMAP keyword: &#39; &#39;" in page
    assert "&#39;not a domain&#39; is not a domain name such as example.com" in page
    assert "The size must be more than 0." in page
    assert "Give the link a name." in page
    assert runtime.store.links() == [runtime.store.link("test")]


def test_a_request_type_that_cannot_take_mail_is_not_saved(admin, mail_account, runtime):
    page = admin.post("/admin/links/new/imap", data=wizard_form(admin, mail_account, request_type="11"))
    assert "lacks a summary or description field" in page.get_data(as_text=True)
    assert runtime.store.link("support") is None


def test_a_wrong_password_is_refused_before_saving(admin, mail_account, runtime):
    page = admin.post("/admin/links/new/imap", data=wizard_form(admin, mail_account, password="wrong"))
    assert "refused the login of" in page.get_data(as_text=True)
    assert runtime.store.link("support") is None


def test_the_oauth_presets_leave_room_for_the_sign_in_buttons(admin):
    page = admin.get("/admin/links/new/microsoft365-imap").get_data(as_text=True)
    assert 'class="oauth"' in page and 'value="outlook.office365.com"' in page
    assert "oauth" not in admin.get("/admin/links/new/imap").get_data(as_text=True).replace("oauth2", "")


def test_the_pages_need_an_admin(client):
    for path in ("/admin/links/new", "/admin/links/new/imap", "/admin/links/test", "/admin/links/test/edit"):
        assert client.get(path).status_code in (302, 401)


def test_the_wizard_speaks_japanese_with_the_same_plain_reasons(admin, mail_account):
    port = closed_port()
    page = admin.post("/admin/links/new/imap", headers={"Accept-Language": "ja"},
                      data=wizard_form(admin, mail_account, port=str(port), action="test")).get_data(as_text=True)
    assert f"サーバー 127.0.0.1 がポート {port} への接続を拒否しました。ポートを確認してください。" in page
    assert "メールボックスにすでにあるメール" in page and "リンク後に届いたメールのみ" in page
