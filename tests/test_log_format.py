"""JSM_MAIL_LOG_FORMAT=json: the command line writes one JSON object a line, naming the link, with no secret."""
from __future__ import annotations

import json
from datetime import datetime

from plugin.domain import Secret
from tests.conftest import jsm_mail, mail_file

KEYS = {"time", "level", "logger", "message", "link"}


def test_json_log_lines_name_the_link_and_hold_no_secret(env, service, mail_account, fake_jira):
    mail_account.append(mail_file("request_plain.eml"))

    polled = jsm_mail({**env, "JSM_MAIL_LOG_FORMAT": "json"}, "-v", "poll", "--once")

    assert polled.returncode == 0, polled.stderr
    lines = [json.loads(line) for line in polled.stderr.splitlines()]
    assert lines and all(set(line) >= KEYS for line in lines)
    assert all(datetime.fromisoformat(line["time"]).utcoffset().total_seconds() == 0 for line in lines)
    created = [line for line in lines if line["logger"] == "plugin.poll" and line["message"].startswith("created ")]
    assert [(line["level"], line["link"]) for line in created] == [("INFO", service.link.name)]
    assert any(line["level"] == "DEBUG" and line["logger"] == "plugin.jira.http" for line in lines)
    for secret in (mail_account.password, fake_jira.api_token):
        assert secret not in polled.stderr


def test_a_failing_mailbox_is_logged_as_json_without_its_password(env, service, mail_account):
    service.relink(password=Secret("hunter2-wrong"))

    polled = jsm_mail({**env, "JSM_MAIL_LOG_FORMAT": "json"}, "-v", "poll", "--once")

    assert polled.returncode == 75
    [warning] = [json.loads(line) for line in polled.stderr.splitlines()
                 if json.loads(line)["level"] == "WARNING"]
    assert warning["link"] == service.link.name and warning["message"].startswith("mailbox unavailable")
    assert "hunter2-wrong" not in polled.stderr


def test_text_stays_the_default_and_a_bad_format_is_one_clear_error(env, service):
    listed = jsm_mail(env, "-v", "links", "list")
    refused = jsm_mail({**env, "JSM_MAIL_LOG_FORMAT": "xml"}, "links", "list")

    assert listed.returncode == 0 and not listed.stderr.startswith("{")
    assert refused.returncode == 2
    assert refused.stderr.strip() == "jsm-mail: JSM_MAIL_LOG_FORMAT must be text or json, not 'xml'"
