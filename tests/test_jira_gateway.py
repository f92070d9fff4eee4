"""RestJira against the contract-checking fake Jira: each call, and how failures reach the product."""
from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from plugin.domain import Address, Attachment, Secret
from plugin.errors import MailRejected, RejectReason, RetryLater
from plugin.jira.gateway import LEDGER_PROPERTY, IssueRef, Mark
from plugin.jira.rest import RestJira
from tests.fakes.jira import EMAIL_REQUEST_TYPE_ID, PROJECT_KEY, SERVICE_DESK_ID, SUMMARY_ONLY_REQUEST_TYPE_ID


@pytest.fixture
def gateway(fake_jira) -> RestJira:
    return RestJira(fake_jira.url, fake_jira.email, Secret(fake_jira.api_token), timeout_s=5)


@pytest.fixture
def customer(fake_jira):
    return fake_jira.add_customer("taro@example.jp", "山田 太郎")


def create(gateway: RestJira, reporter_id: str, reference: str = "jsm0123abcd",
           summary: str = "Printer on fire") -> IssueRef:
    return gateway.create_request(SERVICE_DESK_ID, EMAIL_REQUEST_TYPE_ID, summary,
                                  f"It *really* burns.\n\n{{color:#97a0af}}Mail reference: {reference}{{color}}",
                                  reporter_id)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- reading the desk

def test_server_title_comes_from_server_info(gateway):
    assert gateway.server_title() == "Fake JSM"


def test_project_key_of_the_service_desk(gateway):
    assert gateway.project_key(SERVICE_DESK_ID) == PROJECT_KEY


def test_request_types_say_which_can_take_mail(gateway):
    types = {t.id: t for t in gateway.request_types(SERVICE_DESK_ID)}
    assert types[EMAIL_REQUEST_TYPE_ID].email_suitable
    assert not types[SUMMARY_ONLY_REQUEST_TYPE_ID].email_suitable


def test_one_request_type_with_its_fields(gateway):
    found = gateway.request_type(SERVICE_DESK_ID, EMAIL_REQUEST_TYPE_ID)
    assert (found.name, found.field_ids) == ("Email request", frozenset({"summary", "description"}))


def test_unknown_service_desk_is_a_settings_problem_to_retry(gateway):
    with pytest.raises(RetryLater, match="service desk 99"):
        gateway.project_key("99")


# -- customers

def test_existing_customer_is_found_by_email_in_any_case(gateway, customer):
    assert gateway.find_customer("TARO@example.jp") == customer.account_id


def test_unknown_sender_has_no_account(gateway, fake_jira):
    assert gateway.find_customer("new@example.com") is None
    assert "new@example.com" not in fake_jira.customers


def test_unknown_sender_becomes_a_customer(gateway, fake_jira):
    account_id = gateway.create_customer(Address("Ann Lee", "ann@example.com"))
    made = fake_jira.customers["ann@example.com"]
    assert (made.account_id, made.display_name) == (account_id, "Ann Lee")


def test_customer_with_hidden_email_is_still_found(gateway, fake_jira):
    hidden = fake_jira.add_customer("private@example.com", "Private Person", email_visible=False)
    assert gateway.find_customer("private@example.com") == hidden.account_id


def test_forbidden_customer_creation_is_a_permission_problem(gateway, fake_jira):
    fake_jira.forbid_customer_creation()
    with pytest.raises(RetryLater, match="authentication/permission"):
        gateway.create_customer(Address("", "ann@example.com"))


# -- requests and the ledger

def test_created_request_has_the_mail_fields(gateway, fake_jira, customer):
    ref = create(gateway, customer.account_id)
    made = fake_jira.request(ref.key)
    assert (ref.key, ref.id) == ("SD-1", made.id)
    assert (made.summary, made.reporter_email) == ("Printer on fire", "taro@example.jp")
    assert made.description.startswith("It *really* burns.")
    assert fake_jira.tolerated == []  # RestJira needs none of the jira client's tolerances


def test_request_is_found_by_the_reference_in_its_description(gateway, customer):
    ref = create(gateway, customer.account_id, reference="jsm5f1c9e")
    create(gateway, customer.account_id, reference="jsm77aa01")
    assert gateway.find_request(PROJECT_KEY, "jsm5f1c9e") == ref
    assert gateway.find_request(PROJECT_KEY, "jsm5f1c9") is None  # whole words only


def test_marked_comment_carries_its_mail_and_part(gateway, fake_jira, customer):
    ref = create(gateway, customer.account_id)
    comment_id = gateway.add_comment(ref.key, "Still burning.", public=True, mark=Mark("support:second@x", "comment"))
    made = fake_jira.request(ref.key)
    assert [(c.id, c.body, c.public) for c in made.comments] == [(comment_id, "Still burning.", True)]
    assert made.comments[0].properties[LEDGER_PROPERTY] == {"ledger": "support:second@x", "part": "comment"}
    assert gateway.marked_parts(ref.key, "support:second@x") == {"comment"}
    assert gateway.marked_parts(ref.key, "support:other@x") == frozenset()


def test_internal_comment_is_not_public(gateway, fake_jira):
    seeded = fake_jira.add_request("Old", reporter_email="taro@example.jp")
    gateway.add_comment(seeded.key, "note to agents", public=False, mark=Mark("k", "bounce"))
    assert [c.public for c in seeded.comments] == [False]
    assert gateway.marked_parts(seeded.key, "k") == {"bounce"}


def test_request_info_names_reporter_participants_and_resolution(gateway, fake_jira):
    seeded = fake_jira.add_request("Old", reporter_email="taro@example.jp", participants=("cc@example.com",))
    assert gateway.request(seeded.key).resolved_at is None
    resolved = fake_jira.resolve(seeded.key, at=datetime(2024, 1, 5, 10, 0, tzinfo=UTC))
    info = gateway.request(seeded.key)
    assert (info.key, info.id, info.project_key, info.reporter_email) == (seeded.key, resolved.id, "SD",
                                                                          "taro@example.jp")
    assert info.participant_emails == {"cc@example.com"}
    assert info.resolved_at == datetime(2024, 1, 5, 10, 0, tzinfo=UTC)


def test_request_that_does_not_exist_is_none(gateway):
    assert gateway.request("SD-404") is None


def test_participants_are_added_by_account_id(gateway, fake_jira, customer):
    seeded = fake_jira.add_request("Old", reporter_email="boss@example.com")
    gateway.add_participants(seeded.key, [customer.account_id])
    assert seeded.participant_emails == ["taro@example.jp"]


def test_attachments_are_uploaded_then_attached(gateway, fake_jira):
    seeded = fake_jira.add_request("Old")
    files = [Attachment("見積書.pdf", "application/pdf", b"%PDF-1.4 fake"), Attachment("a.txt", "text/plain", b"hi")]
    gateway.attach(SERVICE_DESK_ID, seeded.key, files, public=False)
    assert [(a.filename, a.data, a.public) for a in seeded.attachments] == [
        ("見積書.pdf", b"%PDF-1.4 fake", False), ("a.txt", b"hi", False)]
    assert gateway.attachment_names(seeded.key) == {("見積書.pdf", 13), ("a.txt", 2)}


def test_issues_are_linked(gateway, fake_jira):
    old, new = fake_jira.add_request("Old"), fake_jira.add_request("Fwd: Old")
    gateway.link_issues(new.key, old.key)
    assert old.links == new.links == [("Relates", new.key, old.key)]


# -- failures

def test_503_on_create_is_retry_later_and_creates_nothing(gateway, fake_jira, customer):
    fake_jira.fail_next(status=503, path="/rest/servicedeskapi/request", method="POST")
    with pytest.raises(RetryLater):
        create(gateway, customer.account_id)
    assert fake_jira.count("POST", "/rest/servicedeskapi/request") == 1
    assert fake_jira.requests == []
    assert create(gateway, customer.account_id).key == "SD-1"


def test_create_whose_answer_was_lost_is_found_by_its_reference(gateway, fake_jira, customer):
    fake_jira.fail_next(status=504, path="/rest/servicedeskapi/request", method="POST", lost=True)
    with pytest.raises(RetryLater, match="504"):
        create(gateway, customer.account_id, reference="jsm42")
    [made] = fake_jira.requests
    assert gateway.find_request(PROJECT_KEY, "jsm42") == IssueRef(made.key, made.id)


def test_429_honours_retry_after_seconds(gateway, fake_jira):
    fake_jira.fail_next(status=429, retry_after=7)
    with pytest.raises(RetryLater) as caught:
        gateway.server_title()
    assert caught.value.after_s == 7


def test_429_honours_retry_after_http_date(gateway, fake_jira):
    fake_jira.fail_next(status=429, retry_after=format_datetime(datetime.now(UTC) + timedelta(seconds=90),
                                                                usegmt=True))
    with pytest.raises(RetryLater) as caught:
        gateway.server_title()
    assert 80 <= caught.value.after_s <= 90


def test_outage_is_retry_later_until_jira_is_back(gateway, fake_jira):
    fake_jira.start_outage()
    with pytest.raises(RetryLater, match="503"):
        gateway.project_key(SERVICE_DESK_ID)
    fake_jira.end_outage()
    assert gateway.project_key(SERVICE_DESK_ID) == PROJECT_KEY


def test_unreachable_jira_is_retry_later_not_a_crash():
    gateway = RestJira(f"http://127.0.0.1:{closed_port()}", "bot@example.com", Secret("t"), timeout_s=2)
    with pytest.raises(RetryLater, match="unreachable"):
        gateway.project_key(SERVICE_DESK_ID)


def test_content_jira_refuses_rejects_the_mail_with_jiras_reason(gateway, customer):
    with pytest.raises(MailRejected) as caught:
        create(gateway, customer.account_id, summary="x" * 300)
    assert caught.value.reason == RejectReason.JIRA_REFUSED
    assert "Summary must be less than 255 characters" in caught.value.detail


def test_wrong_token_is_an_authentication_problem(fake_jira):
    gateway = RestJira(fake_jira.url, fake_jira.email, Secret("wrong"), timeout_s=5)
    with pytest.raises(RetryLater, match="authentication/permission"):
        gateway.server_title()


def test_token_never_reaches_logs_or_repr(fake_jira, caplog):
    caplog.set_level(logging.DEBUG)
    secret = fake_jira.api_token
    gateway = RestJira(fake_jira.url, fake_jira.email, Secret(secret), timeout_s=5)
    gateway.server_title()
    fake_jira.fail_next(status=503)
    with pytest.raises(RetryLater) as unavailable:
        gateway.server_title()
    with pytest.raises(MailRejected) as refused:
        gateway.create_request(SERVICE_DESK_ID, "999", "s", "d", "nobody")
    texts = [caplog.text, repr(gateway), str(unavailable.value), str(refused.value)]
    assert not [t for t in texts if secret in t or "Authorization" in t]


def test_a_body_outside_the_contract_is_caught_by_the_fake(fake_jira):
    response = requests.post(f"{fake_jira.url}/rest/servicedeskapi/request", timeout=5,
                             auth=(fake_jira.email, fake_jira.api_token),
                             json={"serviceDeskId": "1", "requestTypeId": "10", "summary": "top-level by mistake"})
    assert response.status_code == 400
    assert any("'summary' was unexpected" in v for v in fake_jira.take_violations())
