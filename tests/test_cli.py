"""The command line as scripts and admins use it, run as real subprocesses."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MAIL_DIR, mail_file

INSPECT_KEYS = ["file", "message_id", "from", "reply_to", "to", "cc", "subject", "date", "kind", "reason",
                "summary", "description", "body_text", "reply_text", "attachments", "bounce", "thread",
                "charset_repaired"]
LOG_KEYS = {"time", "link", "message_id", "from", "subject", "outcome", "reason", "issue_key", "detail", "evidence",
            "direction"}


@pytest.fixture
def env(settings, tmp_path):
    return {**{k: v for k, v in os.environ.items() if not k.startswith("JSM_MAIL_")},
            "JSM_MAIL_DATA_DIR": str(settings.data_dir), "JSM_MAIL_JIRA_URL": settings.jira_url,
            "JSM_MAIL_JIRA_EMAIL": settings.jira_email,
            "JSM_MAIL_JIRA_API_TOKEN": settings.jira_api_token.reveal(),
            "JSM_MAIL_ENV_FILE": str(tmp_path / "no.env")}


def jsm_mail(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plugin.cli", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_links_add_stores_the_password_encrypted_and_never_prints_it(env, mail_account, settings):
    env["SUPPORT_PW"] = mail_account.password
    added = jsm_mail(env, "links", "add", "--name", "support", "--protocol", "imap", "--host", mail_account.host,
                     "--port", str(mail_account.imap_port), "--security", "none", "--username",
                     mail_account.username, "--password-env", "SUPPORT_PW", "--service-desk", "1",
                     "--request-type", "10")
    assert added.returncode == 0, added.stderr

    listed = jsm_mail(env, "links", "list", "--json")
    [link] = json.loads(listed.stdout)
    assert (link["name"], link["port"], link["folder"], link["access"]) == (
        "support", mail_account.imap_port, "INBOX", "open")
    database = (settings.data_dir / "jsm-mail.db").read_bytes()
    assert mail_account.password.encode() not in database
    for output in (added, listed):
        assert mail_account.password not in output.stdout + output.stderr


def test_links_add_refuses_a_request_type_without_description(env, mail_account):
    env["SUPPORT_PW"] = mail_account.password
    added = jsm_mail(env, "links", "add", "--name", "outage", "--protocol", "imap", "--host", mail_account.host,
                     "--username", mail_account.username, "--password-env", "SUPPORT_PW",
                     "--service-desk", "1", "--request-type", "11")
    assert added.returncode == 2
    assert "lacks a summary or description" in added.stderr


def test_poll_then_logs_json_shows_each_mail(env, service, mail_account, fake_jira):
    mail_account.append(mail_file("request_plain.eml"))
    mail_account.append(mail_file("invalid_no_from.eml"))

    polled = jsm_mail(env, "poll", "--once")
    logs = jsm_mail(env, "logs", "--json")

    assert polled.returncode == 0, polled.stderr
    rows = [json.loads(line) for line in logs.stdout.splitlines()]
    assert [set(r) for r in rows] == [LOG_KEYS, LOG_KEYS]
    assert [(r["outcome"], r["reason"]) for r in rows] == [("created", None), ("rejected", "missing-from")]
    assert rows[0]["issue_key"] == fake_jira.requests[0].key
    csv_out = jsm_mail(env, "logs", "--csv").stdout.splitlines()
    assert csv_out[0].split(",")[:3] == ["time", "link", "message_id"] and len(csv_out) == 3


def test_crash_after_jira_created_the_request_is_recovered_with_one_request(env, service, mail_account, fake_jira):
    uid = mail_account.append(mail_file("request_plain.eml"))

    crashed = jsm_mail({**env, "JSM_MAIL_FAULT": "exit-after-jira-create"}, "poll", "--once")

    assert crashed.returncode == 70
    assert len(fake_jira.requests) == 1
    assert mail_account.flags(uid) == set()  # neither read nor labelled

    resumed = jsm_mail(env, "poll", "--once")

    assert resumed.returncode == 0, resumed.stderr
    assert len(fake_jira.requests) == 1
    assert mail_account.flags(uid) >= {"\\Seen", "jsm-processed"}
    entry = service.log()[-1]
    assert entry.outcome == "created" and "interrupted attempt" in entry.detail


def test_inspect_prints_one_object_per_file_in_order_with_every_field(tmp_path):
    garbage = tmp_path / "garbage.eml"
    garbage.write_bytes(b"\x00\xff")
    files = [MAIL_DIR / "request_japanese_outlook.eml", garbage, MAIL_DIR / "autoreply_outlook_oof_en.eml"]
    result = subprocess.run([sys.executable, "-m", "plugin.cli", "inspect", "--json", *map(str, files)],
                            capture_output=True, text=True, timeout=60)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0
    assert [list(r) for r in rows] == [INSPECT_KEYS] * 3
    assert [r["kind"] for r in rows] == ["mail", "invalid", "auto_reply"]
    assert rows[0]["from"] == {"name": "山田 太郎", "address": "taro.yamada@example.jp"}
    assert rows[0]["summary"] == "経費精算システムにログインできません"
    assert rows[0]["thread"]["thread_index"] == "AdmQ3pXx0m6bJ1QHRcy0Zf7WkYp4Lw=="


def test_secret_values_are_hidden_from_repr(settings):
    assert settings.jira_api_token.reveal() not in repr(settings)
    assert "***" in repr(settings.jira_api_token)


def test_database_holds_no_plain_password(store, mail_account, settings):
    store.add_link(mail_account.link(name="other"))
    rows = sqlite3.connect(settings.data_dir / "jsm-mail.db").execute("SELECT * FROM links").fetchall()
    assert mail_account.password not in repr(rows)
    assert Path(settings.data_dir / "secret.key").stat().st_mode & 0o077 == 0


def test_request_types_say_which_can_take_mail(env):
    listed = jsm_mail(env, "links", "request-types", "--service-desk", "1")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert any("Email request  (takes mail)" in line for line in lines)
    assert any("Report an outage  (no summary or description field" in line for line in lines)
