"""Admin pages and health, through Flask's test client on the real store."""
from __future__ import annotations

import base64

import pytest

from plugin.app import create_app
from plugin.runtime import Runtime
from tests.conftest import mail_file


@pytest.fixture
def client(service):
    runtime = Runtime(service.settings, store=service.store, jira=service.jira)
    app = create_app(runtime)
    app.config["TESTING"] = True
    return app.test_client()


@pytest.fixture
def auth(settings):
    token = base64.b64encode(f"{settings.admin_user}:{settings.admin_password.reveal()}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_health_answers_without_authentication(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json["status"] == "ok" and response.json["links"] == 1


@pytest.mark.parametrize("path", ["/admin/", "/admin/logs", "/admin/errors"])
def test_admin_pages_are_never_served_without_authentication(client, path):
    assert client.get(path).status_code == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode()}
    assert client.get(path, headers=wrong).status_code == 401


def test_processing_log_page_explains_each_mail(client, auth, service, mail_account):
    mail_account.append(mail_file("request_plain.eml"))
    mail_account.append(mail_file("invalid_no_from.eml"))
    service.poll()

    page = client.get("/admin/logs", headers=auth).get_data(as_text=True)

    assert "VPN drops every hour" in page and "SD-1" in page
    assert "missing-from" in page and "the mail has no usable From address" in page
    assert "original mail" in page  # the rejected mail can be downloaded
    csv = client.get("/admin/logs?format=csv", headers=auth).get_data(as_text=True).splitlines()
    assert len(csv) == 3 and csv[0].startswith("time,link,message_id")


def test_rejected_mail_download_stays_inside_the_data_dir(client, auth, service, mail_account):
    mail_account.append(mail_file("invalid_no_from.eml"))
    service.poll()
    name = service.log()[0].raw_path.rsplit("/", 1)[1]

    assert client.get(f"/admin/logs/raw/{name}", headers=auth).data == mail_file("invalid_no_from.eml")
    assert client.get("/admin/logs/raw/..%2F..%2Fsecret.key", headers=auth).status_code == 404


def test_link_test_button_reports_mailbox_and_request_type(client, auth, service):
    page = client.post(f"/admin/links/{service.link.name}/test", headers=auth).get_data(as_text=True)
    assert "passed" in page and "request type &#39;Email request&#39; has summary and description" in page


def test_quarantined_sender_is_listed_and_released(client, auth, service):
    service.store.quarantine(service.link.id, "storm@example.org")
    assert "storm@example.org" in client.get("/admin/", headers=auth).get_data(as_text=True)

    client.post("/admin/quarantine/release", data={"link": service.link.name, "sender": "storm@example.org"},
                headers=auth)

    assert not service.store.is_quarantined(service.link.id, "storm@example.org")


def test_outbound_mail_shows_in_the_processing_log(client, auth, sending, mail_account, fake_jira):
    mail_account.append(mail_file("request_plain.eml"))
    sending.poll()
    fake_jira.add_agent_comment(fake_jira.requests[0].key, "answer")
    sending.poll()

    page = client.get("/admin/logs?outcome=sent", headers=auth).get_data(as_text=True)

    assert "ann@example.org" in page and "[SD-1] VPN drops every hour" in page
