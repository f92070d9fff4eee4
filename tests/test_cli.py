"""The command line as scripts and admins use it, run as real subprocesses."""
from __future__ import annotations

import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from plugin.domain import Outcome, OutcomeState, Secret
from tests.conftest import MAIL_DIR, jsm_mail, mail_file

INSPECT_KEYS = ["file", "message_id", "from", "reply_to", "to", "cc", "subject", "date", "kind", "reason",
                "summary", "description", "body_text", "reply_text", "attachments", "bounce", "thread",
                "charset_repaired"]
LOG_KEYS = {"time", "link", "message_id", "from", "subject", "outcome", "reason", "issue_key", "detail", "evidence",
            "direction"}


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

    crashed = jsm_mail({**env, "JSM_MAIL_FAULT": "kill-at:jira-created"}, "poll", "--once")

    assert crashed.returncode == -signal.SIGKILL
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
                            capture_output=True, text=True, timeout=60, check=False)
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


def add_link(env: dict, mail_account, *extra: str, name: str = "support") -> subprocess.CompletedProcess:
    env["SUPPORT_PW"] = mail_account.password
    return jsm_mail(env, "links", "add", "--name", name, "--protocol", "imap", "--host", mail_account.host,
                    "--port", str(mail_account.imap_port), "--security", "none", "--username",
                    mail_account.username, "--password-env", "SUPPORT_PW", "--service-desk", "1",
                    "--request-type", "10", *extra)


def test_logs_since_accepts_words_dates_and_ages_and_explains_a_bad_value(env, service, mail_account):
    mail_account.append(mail_file("request_plain.eml"))
    service.poll()

    found = [jsm_mail(env, "logs", "--since", since) for since in ("yesterday", "today", "7d", "2020-01-31")]
    future = jsm_mail(env, "logs", "--since", "2999-01-01")
    bad = jsm_mail(env, "logs", "--since", "last week")

    assert [(r.returncode, r.stdout.count("created")) for r in found] == [(0, 1)] * 4
    assert future.returncode == 0 and future.stdout == ""
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "cannot read 'last week' as a time: use today, yesterday" in bad.stderr


def test_logs_csv_cells_never_start_a_formula(env, service):
    service.record(Outcome(OutcomeState.IGNORED, detail="-1+2"), message_id=None,
                              sender="@evil", subject="=cmd|' /C calc'!A0")
    rows = jsm_mail(env, "logs", "--csv").stdout.splitlines()
    assert rows[1].split(",")[3:5] == ["'@evil", "'=cmd|' /C calc'!A0"] and rows[1].endswith(",'-1+2,")


@pytest.mark.parametrize(("name", "value"), [("PORT", "80a"), ("POLL_INTERVAL_S", "-5"), ("MAX_SIZE_BYTES", "1e3"),
                                             ("JIRA_TIMEOUT_S", "soon"), ("PORT", "99999")])
def test_a_malformed_number_setting_is_one_clear_error(env, name, value):
    result = jsm_mail({**env, f"JSM_MAIL_{name}": value}, "links", "list")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"jsm-mail: JSM_MAIL_{name} must be") and repr(value) in result.stderr


def test_a_jira_url_without_scheme_is_one_clear_error(env):
    result = jsm_mail({**env, "JSM_MAIL_JIRA_URL": "example.atlassian.net"}, "links", "list")
    assert result.returncode == 2 and "MissingSchema" not in result.stderr
    assert "JSM_MAIL_JIRA_URL must be a web address such as https://" in result.stderr


def test_serve_refuses_a_port_out_of_range(env):
    result = jsm_mail(env, "serve", "--port", "99999")
    assert result.returncode == 2 and "'99999' is not a port number (1 to 65535)" in result.stderr


def test_serve_on_a_busy_port_stops_before_touching_mail(env, service, mail_account, fake_jira):
    uid = mail_account.append(mail_file("request_plain.eml"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = jsm_mail(env, "serve", "--port", str(port))

    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert fake_jira.requests == [] and mail_account.flags(uid) == set()


@pytest.mark.parametrize("extra", [("--processed-label", "処理済み"), ("--rejected-label", "has space"),
                                   ("--max-size-mb", "-1"), ("--max-size-mb", "0"), ("--reopen-window-days", "-3"),
                                   ("--block-domain", "not a domain"), ("--allow-autoreply-domain", "-x-.com"),
                                   ("--port", "0")])
def test_links_add_refuses_bad_values_before_storing_anything(env, mail_account, extra):
    added = add_link(env, mail_account, *extra)
    assert added.returncode == 2 and "Traceback" not in added.stderr
    assert f"argument {extra[0]}" in added.stderr
    assert json.loads(jsm_mail(env, "links", "list", "--json").stdout) == []


@pytest.mark.parametrize("name", ["", "  ", "a/b", "tab\there"])
def test_links_add_refuses_names_that_cannot_be_shown_or_addressed(env, mail_account, name):
    added = add_link(env, mail_account, name=name)
    assert added.returncode == 2 and "cannot name a link" in added.stderr


def test_links_add_takes_its_defaults_from_the_settings(env, mail_account):
    env.update(JSM_MAIL_MAX_SIZE_BYTES="1048576", JSM_MAIL_PROCESSED_LABEL="done", JSM_MAIL_REJECTED_LABEL="refused")
    assert add_link(env, mail_account).returncode == 0
    assert add_link(env, mail_account, "--max-size-mb", "2", "--processed-label", "ok", name="other").returncode == 0

    first, second = json.loads(jsm_mail(env, "links", "list", "--json").stdout)

    assert (first["max_size_bytes"], first["processed_label"], first["rejected_label"]) == (1048576, "done", "refused")
    assert (second["max_size_bytes"], second["processed_label"]) == (2 * 1048576, "ok")


def test_a_bad_label_setting_is_one_clear_error(env):
    result = jsm_mail({**env, "JSM_MAIL_PROCESSED_LABEL": "処理済み"}, "links", "list")
    assert result.returncode == 2 and "JSM_MAIL_PROCESSED_LABEL: mailbox label" in result.stderr


def test_links_add_names_a_missing_service_desk_not_the_request_type(env, mail_account):
    env["SUPPORT_PW"] = mail_account.password
    added = jsm_mail(env, "links", "add", "--name", "support", "--protocol", "imap", "--host", mail_account.host,
                     "--username", mail_account.username, "--password-env", "SUPPORT_PW",
                     "--service-desk", "99", "--request-type", "10")
    assert added.returncode == 2
    assert "cannot use service desk 99: Jira has no service desk 99" in added.stderr
    assert "request type" not in added.stderr


def test_replay_of_a_missing_file_says_so(env, service):
    result = jsm_mail(env, "replay", "--link", service.link.name, "nowhere.eml")
    assert result.returncode == 2 and result.stderr.endswith("\njsm-mail: no such file: nowhere.eml\n")
    assert "Traceback" not in result.stderr


def test_version(env):
    result = jsm_mail(env, "--version")
    assert result.returncode == 0 and re.fullmatch(r"jsm-mail \d+\.\d+\.\d+\S*\n", result.stdout)


def test_poll_once_exits_75_when_a_mailbox_cannot_be_reached(env, service, mail_account, store):
    bad = store.add_link(mail_account.link(name="wrong-password", password=Secret("nope")))

    result = jsm_mail(env, "poll", "--once", "--link", bad.name)

    assert result.returncode == 75
    assert result.stdout.startswith("wrong-password: mailbox not reached: ")
    assert "no new mail" not in result.stdout


def test_poll_once_exits_0_after_a_round_of_only_rejected_mail(env, service, mail_account):
    mail_account.append(mail_file("invalid_no_from.eml"))
    result = jsm_mail(env, "poll", "--once")
    assert result.returncode == 0 and "1 rejected" in result.stdout


def test_data_dir_holds_owner_only_files(env, service, mail_account, settings):
    mail_account.append(mail_file("invalid_no_from.eml"))
    (settings.data_dir / "jsm-mail.db").chmod(0o644)  # as an older version left it
    (settings.data_dir / "mail").mkdir(mode=0o755)
    (settings.data_dir / "mail" / "old.eml").write_bytes(b"Subject: kept\r\n\r\n")
    (settings.data_dir / "mail" / "old.eml").chmod(0o644)
    (settings.data_dir / "notes.txt").write_text("the admin's own file")
    (settings.data_dir / "notes.txt").chmod(0o644)

    assert jsm_mail(env, "poll", "--once").returncode == 0

    assert (settings.data_dir / "notes.txt").stat().st_mode & 0o777 == 0o644  # not ours: left alone
    (settings.data_dir / "notes.txt").unlink()
    paths = [settings.data_dir, *settings.data_dir.rglob("*")]
    assert any(p.suffix == ".eml" for p in paths) and any(p.name == "jsm-mail.db" for p in paths)
    assert {oct(p.stat().st_mode & 0o777) for p in paths if p.is_dir()} == {"0o700"}
    assert {oct(p.stat().st_mode & 0o777) for p in paths if p.is_file()} == {"0o600"}


def test_secret_key_can_come_from_a_file_outside_the_data_dir(env, tmp_path, settings):
    key_file = tmp_path / "keys" / "jsm-mail.key"
    key_file.parent.mkdir()
    key_file.write_text(settings.secret_key.reveal())
    env.update(JSM_MAIL_SECRET_KEY_FILE=str(key_file))
    (settings.data_dir / "secret.key").unlink()

    assert jsm_mail(env, "links", "list").returncode == 0
    assert not (settings.data_dir / "secret.key").exists()
    key_file.write_text("not a key")
    broken = jsm_mail(env, "links", "list")
    assert broken.returncode == 2 and f"{key_file} does not hold a Fernet key" in broken.stderr


def test_an_html_error_page_from_a_proxy_is_reported_by_its_status_alone(env):
    proxy = HTTPServer(host="127.0.0.1")
    proxy.expect_request(re.compile(".*")).respond_with_data(
        "<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>", status=502, content_type="text/html")
    proxy.start()
    try:
        result = jsm_mail({**env, "JSM_MAIL_JIRA_URL": proxy.url_for("/")}, "links", "request-types",
                          "--service-desk", "1")
    finally:
        proxy.stop()
    assert result.returncode == 2
    assert "Jira answered 502" in result.stderr and "<html" not in result.stderr and "nginx" not in result.stderr


def test_logs_text_never_passes_a_mails_terminal_escapes_through(env, service):
    service.record(Outcome(OutcomeState.IGNORED, detail="shown\x1b[2J"), message_id=None,
                              sender="x\x1b]0;owned\x07@example.org", subject="s")
    out = jsm_mail(env, "logs").stdout
    assert "\x1b" not in out and "\x07" not in out and "x\\x1b]0;owned\\x07@example.org" in out


def test_health_turns_503_while_serve_finds_a_mailbox_failing_too_long(env, store, mail_account, tmp_path):
    link = store.add_link(mail_account.link(name="locked-out", password=Secret("nope")))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (tmp_path / "serve.log").open("w") as serve_log:
        server = subprocess.Popen([sys.executable, "-m", "plugin.cli", "serve", "--port", str(port)],
                                  env={**env, "JSM_MAIL_LINK_FAILING_ALERT_S": "1"},
                                  stdout=subprocess.DEVNULL, stderr=serve_log)
    try:
        answer = (0, {})
        for _ in range(150):
            time.sleep(0.1)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                    answer = (response.status, json.load(response))
            except urllib.error.HTTPError as error:
                answer = (error.code, json.load(error))
                break
            except urllib.error.URLError:
                continue
    finally:
        server.terminate()
        server.wait(timeout=10)
    status, body = answer
    assert status == 503 and body["status"] == "failing"
    assert [p.split(" has failed since ")[0] for p in body["problems"]] == [f"link {link.name}"]
    # the key was generated into the data dir: fine for a trial, said plainly for production
    assert "beside the data it protects: for production" in (tmp_path / "serve.log").read_text()
