"""GET /metrics after real rounds on Dovecot and the fake Jira: counters, histogram and store gauges, and who
may scrape it."""
from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from plugin.app import create_app
from plugin.domain import Secret
from plugin.runtime import Runtime
from plugin.store.outbox import Outbox
from tests.conftest import mail_file

OUTSIDE = {"REMOTE_ADDR": "203.0.113.9"}


def scrape(client, **kwargs) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/plain"
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def grew(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_a_poll_is_counted_by_outcome_jira_call_and_duration(client, service, mail_account, fake_jira):
    link = service.link.name
    mail_account.append(mail_file("request_plain.eml"))
    mail_account.append(mail_file("invalid_no_from.eml"))
    before = scrape(client)

    service.poll()

    after = scrape(client)
    assert grew(before, after, "jsm_mail_mails_total", link=link, outcome="created") == 1
    assert grew(before, after, "jsm_mail_mails_total", link=link, outcome="rejected") == 1
    posts = sum(1 for call in fake_jira.calls if call.method == "POST")
    gets = sum(1 for call in fake_jira.calls if call.method == "GET")
    assert grew(before, after, "jsm_mail_jira_calls_total", method="POST", status="2xx") == posts > 0
    assert grew(before, after, "jsm_mail_jira_calls_total", method="GET", status="2xx") == gets > 0
    assert grew(before, after, "jsm_mail_poll_duration_seconds_count", link=link) == 1
    assert after[("jsm_mail_mails_waiting", (("link", link),))] == 0
    assert after[("jsm_mail_outbox_depth", (("link", link),))] == 0
    assert after[("jsm_mail_link_failing_seconds", (("link", link),))] == 0


def test_jira_errors_are_counted_by_status_class(client, service, mail_account, fake_jira):
    mail_account.append(mail_file("request_plain.eml"))
    fake_jira.fail_next(status=503)
    before = scrape(client)

    service.poll()

    after = scrape(client)
    assert grew(before, after, "jsm_mail_jira_errors_total", method="GET", status="5xx") + \
        grew(before, after, "jsm_mail_jira_errors_total", method="POST", status="5xx") == 1
    assert grew(before, after, "jsm_mail_mails_total", link=service.link.name, outcome="waiting-retry") == 1
    assert after[("jsm_mail_mails_waiting", (("link", service.link.name),))] == 1


def test_gauges_are_read_from_the_store_at_each_scrape(client, service):
    Outbox(service.store).queue(service.link.id, "SD-1", "10001", datetime.now(UTC), "<m1@example.test>", "poll")
    service.quarantine("storm@example.org")

    shown = scrape(client)

    assert shown[("jsm_mail_outbox_depth", (("link", service.link.name),))] == 1
    assert shown[("jsm_mail_quarantined_senders", (("link", service.link.name),))] == 1


def test_without_a_token_only_this_machine_may_scrape(client):
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", environ_base=OUTSIDE).status_code == 403


def test_with_a_token_only_its_bearer_may_scrape_from_anywhere(service):
    runtime = Runtime(service.settings.with_(metrics_token=Secret("s3cret-scrape")), store=service.store,
                      jira=service.jira)
    client = create_app(runtime).test_client()

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    good = {"Authorization": "Bearer s3cret-scrape"}
    assert client.get("/metrics", headers=good, environ_base=OUTSIDE).status_code == 200
