"""Changing a link in the admin pages: edit, disable and enable, reconnect, delete, and the test mail round trip."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from plugin.domain import Outcome, OutcomeState
from plugin.link_form import form_data
from plugin.poll import poll_links, poll_mailbox
from tests.conftest import mail_file
from tests.web.conftest import form_token


def edit_form(client, link, **changes: str) -> dict[str, str]:
    data = form_data(link).to_dict() | {"csrf_token": form_token(client), "action": "save"}
    return {key: value for key, value in (data | changes).items() if value is not None}


def test_edit_shows_the_link_and_saves_a_change_without_losing_the_password(admin, service, runtime):
    page = admin.get("/admin/links/test/edit").get_data(as_text=True)
    assert f'value="{service.link.host}"' in page and service.link.password.reveal() not in page
    saved = admin.post("/admin/links/test/edit", data=edit_form(admin, service.link, from_name="Example Support",
                                                                  first_import="recent", first_import_days="3"))
    assert saved.status_code == 302
    link = runtime.store.link("test")
    assert (link.from_name, link.first_import.value, link.first_import_days) == ("Example Support", "recent", 3)
    assert link.password == service.link.password and link.linked_at == service.link.linked_at


def test_an_edit_to_a_server_that_does_not_answer_is_not_saved(admin, service, runtime):
    page = admin.post("/admin/links/test/edit", data=edit_form(admin, service.link, port="1"))
    assert "refused the connection on port 1" in page.get_data(as_text=True)
    assert runtime.store.link("test").port == service.link.port


def test_a_disabled_link_is_not_polled_until_it_is_enabled_again(admin, service, runtime, mail_account, fake_jira):
    answer = admin.post("/admin/links/test/disable", data={"csrf_token": form_token(admin)}, follow_redirects=True)
    assert "disabled" in answer.get_data(as_text=True)
    mail_account.append(mail_file("request_plain.eml"))
    assert poll_links(runtime.settings, runtime.store, runtime.jira) == []
    [named] = poll_links(runtime.settings, runtime.store, runtime.jira, "test")
    assert named.skipped == "the link is disabled" and fake_jira.requests == []

    admin.post("/admin/links/test/enable", data={"csrf_token": form_token(admin)})
    [report] = poll_links(runtime.settings, runtime.store, runtime.jira)
    assert report.outcomes == {"created": 1} and len(fake_jira.requests) == 1


def test_reconnect_probes_again_and_clears_the_failing_state(admin, service, runtime):
    runtime.link_health.note("test", "could not connect")
    assert "could not connect" in admin.get("/admin/links/test").get_data(as_text=True)
    answer = admin.post("/admin/links/test/reconnect", data={"csrf_token": form_token(admin)}, follow_redirects=True)
    assert "Reconnected" in answer.get_data(as_text=True)
    assert "test" not in runtime.link_health.failing_since


def test_delete_asks_first_and_the_processing_log_stays(admin, service, runtime):
    service.record(Outcome(OutcomeState.CREATED, "SD-1", detail="request created"), message_id="a@example.com",
                   sender="a@example.com", subject="printer")
    assert "Type the link" in admin.get("/admin/links/test/delete").get_data(as_text=True)
    admin.post("/admin/links/test/delete", data={"csrf_token": form_token(admin), "confirm": "wrong"})
    assert runtime.store.link("test") is not None
    answer = admin.post("/admin/links/test/delete", data={"csrf_token": form_token(admin), "confirm": "test"})
    assert answer.status_code == 302 and runtime.store.link("test") is None
    assert [e.subject for e in runtime.store.processing_log(link="test")] == ["printer"]


def test_the_test_mail_goes_out_comes_back_and_is_recorded_not_made_a_request(admin, sending, runtime, smtp_sink,
                                                                             mail_account, fake_jira):
    sent = admin.post("/admin/links/test/test-mail", data={"csrf_token": form_token(admin)})
    assert sent.status_code == 302
    message_id = parse_qs(urlsplit(sent.headers["Location"]).query)["id"][0]
    [mail] = smtp_sink.messages
    assert mail.rcpt_tos == (sending.link.address,) and mail.message["Message-ID"] == f"<{message_id}>"
    assert admin.get(f"/admin/links/test/test-mail.json?id={message_id}").get_json() == {"arrived": False,
                                                                                        "row": None}
    assert 'id="waiting"' in admin.get(sent.headers["Location"]).get_data(as_text=True)

    mail_account.append(mail.data)  # the SMTP server delivers it to the linked mailbox
    report = poll_mailbox(runtime.store.link("test"), runtime.settings, runtime.store, runtime.jira)
    assert report.outcomes == {"ignored": 1} and fake_jira.requests == []
    status = admin.get(f"/admin/links/test/test-mail.json?id={message_id}").get_json()
    assert status["arrived"] and status["row"]["detail"].startswith("test mail received")
    page = admin.get(sent.headers["Location"]).get_data(as_text=True)
    assert 'id="arrived"' in page and "test mail received" in page


def test_a_forged_test_marker_is_an_ordinary_mail(service, mail_account, fake_jira):
    forged = mail_file("request_plain.eml").replace(b"\nSubject:", b"\nX-JSM-Mail-Link-Test: abc.def\nSubject:", 1)
    mail_account.append(forged)
    assert service.poll().outcomes == {"created": 1}


def test_a_link_that_cannot_send_says_so(admin, service, smtp_sink):
    answer = admin.post("/admin/links/test/test-mail", data={"csrf_token": form_token(admin)}, follow_redirects=True)
    assert "The link sends no mail" in answer.get_data(as_text=True) and smtp_sink.messages == []
