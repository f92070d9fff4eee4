"""The fake Jira itself: it serves the real `jira` client, and its contract checks bite."""
from __future__ import annotations

import jira
import pytest
import requests

from tests.fakes.jira import EMAIL_REQUEST_TYPE_ID, SERVICE_DESK_ID, Reply


def call(fake_jira, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, fake_jira.url + path, auth=(fake_jira.email, fake_jira.api_token),
                            timeout=5, **kwargs)


@pytest.fixture
def client(fake_jira) -> jira.JIRA:
    return jira.JIRA(fake_jira.url, basic_auth=(fake_jira.email, fake_jira.api_token), max_retries=0)


def test_jira_client_sees_a_cloud_instance(client):
    assert client._is_cloud
    assert client.server_info()["deploymentType"] == "Cloud"


def test_jira_client_numeric_request_type_is_a_named_tolerance(client, fake_jira):
    customer = fake_jira.add_customer("taro@example.jp")
    issue = client.create_customer_request({
        "serviceDeskId": SERVICE_DESK_ID, "requestTypeId": int(EMAIL_REQUEST_TYPE_ID),
        "requestFieldValues": {"summary": "Hello", "description": "World"}, "raiseOnBehalfOf": customer.account_id})
    assert issue.key == "SD-1"
    assert fake_jira.tolerated == ["numeric-requestTypeId"]


def test_path_outside_the_contract_is_a_violation(fake_jira):
    assert call(fake_jira, "GET", "/rest/servicedeskapi/no-such-thing").status_code == 404
    assert fake_jira.take_violations() == ["GET /rest/servicedeskapi/no-such-thing: no such path in the contract"]


def test_unknown_query_parameter_is_a_violation(fake_jira):
    call(fake_jira, "GET", f"/rest/servicedeskapi/servicedesk/{SERVICE_DESK_ID}", params={"expand": "all"})
    assert ["'expand' is not in the contract" in v for v in fake_jira.take_violations()] == [True]


def test_experimental_operation_needs_its_header(fake_jira):
    call(fake_jira, "GET", f"/rest/servicedeskapi/servicedesk/{SERVICE_DESK_ID}/customer")
    assert ["X-ExperimentalApi" in v for v in fake_jira.take_violations()] == [True]


def test_upload_without_xsrf_header_is_a_violation(fake_jira):
    call(fake_jira, "POST", f"/rest/servicedeskapi/servicedesk/{SERVICE_DESK_ID}/attachTemporaryFile",
         files=[("file", ("a.txt", b"hi", "text/plain"))])
    assert ["X-Atlassian-Token" in v for v in fake_jira.take_violations()] == [True]


def test_a_response_outside_the_contract_is_a_violation(fake_jira, monkeypatch):
    monkeypatch.setattr(fake_jira, "_op_getServerInfo", lambda incoming: Reply(200, {"deploymentType": 1}))
    call(fake_jira, "GET", "/rest/api/2/serverInfo")
    assert ["1 is not of type 'string'" in v for v in fake_jira.take_violations()] == [True]


def test_jql_the_fake_does_not_know_is_refused_like_jira(fake_jira):
    response = call(fake_jira, "GET", "/rest/api/2/search/jql", params={"jql": "text ~ printer"})
    assert response.status_code == 400
    assert "Error in the JQL Query" in response.json()["errorMessages"][0]


def test_wrong_credentials_are_refused(fake_jira):
    response = requests.get(f"{fake_jira.url}/rest/api/2/serverInfo", auth=(fake_jira.email, "nope"), timeout=5)
    assert response.status_code == 401


def test_injected_faults_run_out(fake_jira):
    fake_jira.fail_next(2, status=503, path="/rest/api/2/serverInfo")
    statuses = [call(fake_jira, "GET", "/rest/api/2/serverInfo").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
