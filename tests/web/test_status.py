"""Each link's status after real rounds on Dovecot and the fake Jira: on the admin page, in `links list`, in
/health; and recovery from the processing log and the mailboxes page."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from plugin.domain import Secret
from plugin.link_status import link_status
from plugin.poll import poll_mailbox
from plugin.store.models import LinkStateRow
from plugin.store.outbox import Outbox
from tests.conftest import jsm_mail
from tests.test_recover import log_ids, refused_then_fixed
from tests.test_sender_policy import ANN, customer_mail
from tests.web.conftest import form_token


def three_mails(mail_account) -> None:
    for n in range(3):
        mail_account.append(customer_mail(f"user{n}@example.org", n))


def test_a_backlog_worked_over_several_rounds_shows_its_progress(admin, service, mail_account, env, fake_jira):
    service.relink(intake_per_minute=1)
    three_mails(mail_account)

    service.poll()

    status = link_status(service.store, service.link)
    assert (status.unread, status.mails_waiting, status.pending) == (2, 2, 0)
    assert status.backlog is not None and (status.backlog.done, status.backlog.total) == (1, 3)
    assert status.last_success_at is not None and status.sign_in.failing_since is None
    assert status.oldest_unhandled is not None
    page = admin.get("/admin/").get_data(as_text=True)
    assert "working through backlog: 1 of 3" in page
    listed = jsm_mail(env, "links", "list")
    assert "working through backlog: 1 of 3" in listed.stdout and "mails waiting 2" in listed.stdout
    [shown] = json.loads(jsm_mail(env, "links", "list", "--json").stdout)
    assert shown["status"]["backlog"] == {"done": 1, "total": 3} and shown["status"]["mails_waiting"] == 2

    service.relink(intake_per_minute=25)
    service.poll()

    status = link_status(service.store, service.link)
    assert (status.unread, status.backlog, status.oldest_unhandled) == (0, None, None)
    assert "working through backlog" not in admin.get("/admin/").get_data(as_text=True)
    assert len(fake_jira.requests) == 3


def test_a_failing_sign_in_shows_since_when_and_why_then_health_fails_after_the_threshold(admin, client, service,
                                                                                          runtime):
    service.relink(password=Secret("wrong password"))

    report = service.poll()

    assert report.unreachable
    status = link_status(service.store, service.link)
    assert status.sign_in.failing_since is not None and "wrong password" not in (status.sign_in.reason or "")
    assert status.sign_in.reason == report.error
    assert "failing since" in admin.get("/admin/").get_data(as_text=True)
    health = client.get("/health")
    assert health.status_code == 200  # not failing for long yet
    assert health.json["link_status"][0]["sign_in"]["reason"] == report.error

    long_ago = datetime.now(UTC) - timedelta(seconds=runtime.settings.link_failing_alert_s + 60)
    with service.store.session() as s, s.begin():
        s.execute(update(LinkStateRow).values(failing_since=long_ago))
    failing = client.get("/health")

    assert failing.status_code == 503
    since = f"{long_ago:%Y-%m-%d %H:%M}"
    assert failing.json["problems"] == [f"link {service.link.name} has failed since {since} UTC: {report.error}"]


def test_quarantined_senders_and_the_outbox_are_counted(service):
    service.quarantine("storm@example.org")
    Outbox(service.store).queue(service.link.id, "SD-1", "10001", datetime.now(UTC), "<m1@example.test>", "poll")

    status = link_status(service.store, service.link)

    assert (status.quarantined, status.outbox) == (1, 1)


def test_the_processing_log_retries_the_ticked_mails(admin, service, mail_account, fake_jira):
    log_id, _ = refused_then_fixed(service, mail_account, fake_jira)
    page = admin.get("/admin/logs").get_data(as_text=True)
    assert f'name="log_id" value="{log_id}"' in page

    answer = admin.post("/admin/logs/retry", data={"csrf_token": form_token(admin), "log_id": [str(log_id)] * 2,
                                                    "next": "/admin/logs?outcome=rejected"})

    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/logs?outcome=rejected")
    [request] = fake_jira.requests
    shown = admin.get("/admin/logs").get_data(as_text=True)
    assert f"retried by admin: created {request.key}" in shown
    assert admin.post("/admin/logs/retry", data={"csrf_token": form_token(admin), "log_id": "x"}).status_code == 400
    assert log_ids(service, outcome="created") != []


def test_the_mailboxes_page_releases_the_ticked_senders_and_reruns_their_mail(admin, service, mail_account,
                                                                            fake_jira):
    service.relink(sender_budget=1)
    for n in range(3):
        mail_account.append(customer_mail(ANN, n))
    service.poll()
    assert len(fake_jira.requests) == 1
    page = admin.get("/admin/").get_data(as_text=True)
    assert f'name="pick" value="{service.link.name}/{ANN}"' in page

    admin.post("/admin/quarantine/release", data={"csrf_token": form_token(admin),
                                                  "pick": f"{service.link.name}/{ANN}"})

    # The budget allows one new request, so the first held mail is a request and the second is held again.
    assert len(fake_jira.requests) == 2
    assert service.store.is_quarantined(service.link.id, ANN)
    flashed = admin.get("/admin/").get_data(as_text=True)
    assert f"{ANN} released on {service.link.name}; 2 held mails retried" in flashed


def test_a_large_backlog_is_followed_in_the_store_as_the_round_goes(service, mail_account, fake_jira):
    service.relink(intake_per_minute=11)
    for n in range(12):
        mail_account.append(customer_mail(f"user{n}@example.org", n))
    seen = []

    poll_mailbox(service.link, service.settings, service.store, service.jira,
                 lambda link, done, total: seen.append((done, link_status(service.store, service.link).backlog)))

    assert seen[0][0] == 0 and seen[0][1] is not None and seen[0][1].total == 12  # written before the first mail
    assert [backlog.done for done, backlog in seen if done == 10] == [10]  # saved every ten mails
    status = link_status(service.store, service.link)
    assert status.backlog is not None and (status.backlog.done, status.backlog.total, status.unread) == (11, 12, 1)
