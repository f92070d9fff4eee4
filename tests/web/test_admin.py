"""Admin pages and health, through Flask's test client on the real store: login, CSRF, headers, the log."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from plugin.app import create_app
from plugin.domain import Outcome, OutcomeState
from plugin.errors import RejectReason
from plugin.runtime import Runtime
from plugin.web.auth import MAX_FAILURES
from tests.conftest import mail_file
from tests.web.conftest import admin_password, form_token, log_in, token_of


def test_health_answers_without_authentication(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json["status"] == "ok" and response.json["links"] == 1


def test_health_answers_503_with_the_reason_once_a_link_has_failed_too_long(client, runtime, service):
    long_ago = datetime.now(UTC) - timedelta(seconds=runtime.settings.link_failing_alert_s + 60)
    runtime.link_health.note(service.link.name, "LOGIN failed", now=long_ago)
    runtime.link_health.note(service.link.name, "LOGIN failed")

    response = client.get("/health")

    assert response.status_code == 503
    reason = f"link {service.link.name} has failed since {long_ago:%Y-%m-%d %H:%M} UTC: LOGIN failed"
    assert response.json["problems"] == [reason]
    runtime.link_health.note(service.link.name, None)  # a good poll
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("path", ["/admin/", "/admin/logs", "/admin/errors", "/admin/logs/1", "/admin/logs/1/mail",
                                  "/admin/logs?format=csv"])
def test_admin_pages_are_never_served_without_login(client, settings, path):
    response = client.get(path)
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    assert log_in(client, settings, password="wrong").status_code == 401
    assert client.get(path).status_code == 302


def test_login_then_pages_and_logout(client, settings):
    response = log_in(client, settings)
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    client.post("/admin/logout", data={"csrf_token": form_token(client)})
    assert client.get("/admin/").status_code == 302


def test_login_is_locked_after_repeated_wrong_passwords_even_for_the_right_one(client, settings):
    answers = [log_in(client, settings, password=f"guess{n}").status_code for n in range(MAX_FAILURES)]
    locked = log_in(client, settings)

    assert answers == [401] * (MAX_FAILURES - 1) + [429]
    assert locked.status_code == 429 and "try again in 15 minutes" in locked.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_login_attempts_are_rate_limited_per_address(client, settings):
    token = token_of(client.get("/admin/login").get_data(as_text=True))
    answers = [client.post("/admin/login", data={"csrf_token": token, "user": f"user{n}", "password": "x"}).status_code
               for n in range(12)]
    assert answers[:10] == [401] * 10 and answers[10:] == [429, 429]


def test_a_login_without_csrf_token_is_refused(client, settings):
    response = client.post("/admin/login", data={"user": settings.admin_user, "password": admin_password(settings)})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_every_form_carries_a_csrf_token(admin, service):
    service.quarantine("storm@example.org")
    page = admin.get("/admin/").get_data(as_text=True)
    forms = re.findall(r'<form method="post".*?</form>', page, re.DOTALL)
    assert len(forms) == 4  # log out, test the link, release, try a mail file
    assert all('name="csrf_token"' in form for form in forms)


def test_cross_site_posts_change_nothing(admin, service, fake_jira):
    service.quarantine("storm@example.org")
    upload = {"link": service.link.name, "apply": "1"}

    no_token = admin.post("/admin/replay", data={**upload, "eml": (_eml(), "request.eml")})
    released = admin.post("/admin/quarantine/release", data={"link": service.link.name, "sender": "storm@example.org"})
    other_origin = admin.post("/admin/replay", headers={"Origin": "https://evil.example"},
                              data={**upload, "csrf_token": form_token(admin), "eml": (_eml(), "request.eml")})

    assert (no_token.status_code, released.status_code, other_origin.status_code) == (400, 400, 403)
    assert fake_jira.requests == []
    assert service.store.is_quarantined(service.link.id, "storm@example.org")


def test_same_site_form_with_token_works(admin, service):
    service.quarantine("storm@example.org")
    admin.post("/admin/quarantine/release", headers={"Origin": "http://localhost"},
               data={"link": service.link.name, "sender": "storm@example.org", "csrf_token": form_token(admin)})
    assert not service.store.is_quarantined(service.link.id, "storm@example.org")


def test_forge_calls_are_not_held_to_csrf(client):
    # Forge Remote calls carry a bearer token, not a cookie: a missing CSRF token must not answer 400.
    assert client.post("/forge/anything", json={}).status_code == 404


def test_pages_send_security_headers(admin, client):
    page = admin.get("/admin/logs")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["Cache-Control"] == "no-store"
    assert client.get("/health").headers["X-Content-Type-Options"] == "nosniff"


def _eml(name: str = "request_plain.eml"):
    import io
    return io.BytesIO(mail_file(name))


def test_an_upload_named_dot_dot_is_handled_and_no_server_path_is_shown(admin, service, settings):
    response = admin.post("/admin/replay", data={"link": service.link.name, "csrf_token": form_token(admin),
                                                 "eml": (_eml(), "..")}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "the uploaded mail: would be new request" in page
    assert "/tmp" not in page and str(settings.data_dir) not in page


def test_an_upload_shows_its_own_name(admin, service):
    page = admin.post("/admin/replay", data={"link": service.link.name, "csrf_token": form_token(admin),
                                             "eml": (_eml(), "C:\\Users\\me\\VPN.eml")},
                      follow_redirects=True).get_data(as_text=True)
    assert "VPN.eml: would be new request" in page


@pytest.mark.parametrize("data", [{}, {"eml": (_eml(), "")}, {"link": "nope"}])
def test_bad_uploads_answer_400(admin, service, data):
    data = {"link": service.link.name, **data, "csrf_token": form_token(admin)}
    assert admin.post("/admin/replay", data=data).status_code == 400


def test_processing_log_page_explains_each_mail(admin, service, mail_account, fake_jira, settings):
    mail_account.append(mail_file("request_plain.eml"))
    mail_account.append(mail_file("invalid_no_from.eml"))
    service.poll()

    page = admin.get("/admin/logs").get_data(as_text=True)

    assert "VPN drops every hour" in page
    assert f'<a href="{settings.jira_url}/browse/SD-1" rel="noopener noreferrer">SD-1</a>' in page
    assert "missing-from" in page and "the mail has no usable From address" in page
    assert "original mail" in page  # the rejected mail can be downloaded
    assert "Mails 1–2 of 2" in page


@pytest.mark.parametrize("since", ["yesterday", "today", "7d", "12h", "2020-01-31", "2020-01-31T09:00"])
def test_log_accepts_the_times_an_admin_types(admin, service, since):
    _log(service, 1)
    response = admin.get(f"/admin/logs?since={since}")
    assert response.status_code == 200 and "sender0@example.org" in response.get_data(as_text=True)


@pytest.mark.parametrize("query", ["since=last+week", "until=soon", "page=abc", "page=0", "outcome=%3Cb%3E",
                                   "since=999999d", "until=2026-01-01T25:00", "since=9999-99-99",
                                   "page=99999999999999999999999", "page=%D9%A3",
                                   "since=%00"])
def test_bad_query_values_answer_400_with_the_reason(admin, query):
    response = admin.get(f"/admin/logs?{query}")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'class="problem"' in page and "<b>" not in page


def _log(service, count: int, **fields):
    for n in range(count):
        outcome = Outcome(OutcomeState.REJECTED, reason=RejectReason.MISSING_TO, detail=f"mail {n}") if n % 2 else \
            Outcome(OutcomeState.CREATED, issue_key=f"SD-{n}", detail=f"mail {n}")
        service.record(outcome, message_id=f"<m{n}@example.org>",
                                  sender=fields.get("sender", f"sender{n}@example.org"),
                                  subject=fields.get("subject", f"subject {n}"))


def test_search_and_filters_apply_before_paging(admin, service):
    _log(service, 130)

    first = admin.get("/admin/logs?outcome=rejected").get_data(as_text=True)
    second = admin.get("/admin/logs?outcome=rejected&page=2").get_data(as_text=True)
    searched = admin.get("/admin/logs?q=sender12").get_data(as_text=True)  # sender12, sender120..129

    assert "Mails 1–50 of 65" in first and first.count('class="rejected"') == 50
    assert "Mails 51–65 of 65" in second and second.count('class="rejected"') == 15
    assert "Older" not in second and "Newer" in second
    assert "Mails 1–11 of 11" in searched
    assert admin.get("/admin/logs?q=SD-64").get_data(as_text=True).count('class="created"') == 1
    page = admin.get("/admin/logs?q=missing-to").get_data(as_text=True)
    assert "Mails 1–50 of 65" in page, re.findall("Mails[^<]*", page)


def test_csv_streams_every_row_with_a_bom_and_formula_safe_cells(admin, service):
    _log(service, 600)
    _log(service, 1, sender="=HYPERLINK(\"http://evil\")", subject="+SUM(A1)")
    _log(service, 1, subject="経費精算")

    response = admin.get("/admin/logs?format=csv")
    text = response.get_data().decode("utf-8")

    assert text.startswith("\ufefftime,link,message_id")
    lines = text.splitlines()
    assert len(lines) == 603 and "経費精算" in lines[-1]
    assert "'=HYPERLINK(\"\"http://evil\"\")" in text and ",'+SUM(A1)," in text
    assert "attachment; filename=processing-log-" in response.headers["Content-Disposition"]
    rejected = admin.get("/admin/logs?format=csv&outcome=rejected").get_data().decode("utf-8").splitlines()
    assert len(rejected) == 301


def test_mail_detail_shows_the_evidence_and_escapes_the_mail(admin, service, mail_account):
    mail_account.append(mail_file("invalid_no_from.eml"))
    service.poll()
    _log(service, 1, subject="<script>alert(1)</script>", sender="<b>x</b>@example.org")

    rejected = admin.get("/admin/logs/1").get_data(as_text=True)
    hostile = admin.get("/admin/logs/2").get_data(as_text=True)

    assert "missing-from" in rejected and "Download the original mail" in rejected
    assert "What jsm-mail read from the mail" in rejected
    assert "<script>" not in hostile and "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile
    assert "<b>x</b>" not in hostile
    assert admin.get("/admin/logs/999").status_code == 404


def test_rejected_mail_downloads_under_a_readable_name(admin, service, mail_account):
    mail_account.append(mail_file("invalid_no_from.eml"))
    service.poll()
    entry = service.log()[0]

    response = admin.get("/admin/logs/1/mail")

    assert response.data == mail_file("invalid_no_from.eml")
    assert response.headers["Content-Type"].startswith("message/rfc822")
    expected = f"{entry.time:%Y-%m-%d %H%M} {entry.subject}.eml" if entry.subject else None
    assert expected is None or expected.split(" ")[0] in response.headers["Content-Disposition"]
    assert ".eml" in response.headers["Content-Disposition"]
    assert admin.get("/admin/logs/raw/..%2F..%2Fsecret.key").status_code == 404


def test_link_test_button_reports_mailbox_and_request_type(admin, service):
    page = admin.post(f"/admin/links/{service.link.name}/test",
                      data={"csrf_token": form_token(admin)}).get_data(as_text=True)
    assert "passed" in page and "request type &#39;Email request&#39; has summary and description" in page


def test_quarantined_sender_is_listed_and_released(admin, service):
    service.quarantine("storm@example.org")
    assert "storm@example.org" in admin.get("/admin/").get_data(as_text=True)

    admin.post("/admin/quarantine/release", data={"link": service.link.name, "sender": "storm@example.org",
                                                  "csrf_token": form_token(admin)})

    assert not service.store.is_quarantined(service.link.id, "storm@example.org")


def test_no_admin_route_answers_without_login(app, client):
    rules = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/admin")
             and rule.endpoint not in ("auth.login", "auth.logout")]
    assert len(rules) >= 8
    for rule in rules:
        path = re.sub(r"<(int:)?\w+>", "1", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(path, method=method)
            assert response.status_code in (302, 400), (method, path, response.status_code)
            assert response.status_code == 400 or "/admin/login" in response.headers["Location"]


def test_login_with_a_configured_password_hash(service):
    from werkzeug.security import generate_password_hash

    from plugin.domain import Secret
    settings = service.settings.with_(admin_password=Secret(""), admin_password_hash=generate_password_hash("s3cret"))
    client = create_app(Runtime(settings, store=service.store, jira=service.jira)).test_client()

    assert log_in(client, settings, password="s3cret").status_code == 302
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example/"])
def test_login_never_sends_the_admin_to_another_site(client, settings, target):
    token = token_of(client.get("/admin/login").get_data(as_text=True))
    response = client.post("/admin/login", query_string={"next": target}, data={
        "csrf_token": token, "user": settings.admin_user, "password": admin_password(settings)})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"


def test_login_returns_to_the_page_asked_for(client, settings):
    asked = client.get("/admin/logs?since=yesterday")
    token = token_of(client.get(asked.headers["Location"]).get_data(as_text=True))
    response = client.post(asked.headers["Location"], data={
        "csrf_token": token, "user": settings.admin_user, "password": admin_password(settings)})
    assert response.headers["Location"] == "/admin/logs?since=yesterday"


def test_outbound_mail_shows_in_the_processing_log(admin, sending, mail_account, fake_jira):
    mail_account.append(mail_file("request_plain.eml"))
    sending.poll()
    fake_jira.add_agent_comment(fake_jira.requests[0].key, "answer")
    sending.poll()

    page = admin.get("/admin/logs?outcome=sent").get_data(as_text=True)

    assert "ann@example.org" in page and "[SD-1] VPN drops every hour" in page


def test_a_time_typed_into_the_log_is_read_in_the_admins_zone(admin, service):
    _log(service, 1)
    admin.post("/admin/prefs", data={"csrf_token": form_token(admin), "tz": "Pacific/Kiritimati"})
    # A minute ago on a clock 14 hours ahead of UTC: read as UTC, it would lie 14 hours in the future.
    a_minute_ago = (datetime.now(ZoneInfo("Pacific/Kiritimati")) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")

    page = admin.get(f"/admin/logs?since={a_minute_ago}").get_data(as_text=True)

    assert "sender0@example.org" in page
