"""`jsm-mail links add --preset`, `links edit`, `links disable` and `enable`: the admin pages' checks, from a shell."""
from __future__ import annotations

import json
import socket

from tests.conftest import jsm_mail, mail_file


def listed(env) -> dict[str, dict]:
    return {link["name"]: link for link in json.loads(jsm_mail(env, "links", "list", "--json").stdout)}


def test_a_preset_fills_the_server_settings_and_options_given_win(env):
    env["GMAIL_PW"] = "app-password"
    added = jsm_mail(env, "links", "add", "--name", "gmail", "--preset", "google", "--auth", "password",
                     "--username", "support@example.com", "--password-env", "GMAIL_PW", "--service-desk", "1",
                     "--request-type", "10")
    assert added.returncode == 0, added.stderr
    link = listed(env)["gmail"]
    assert (link["protocol"], link["host"], link["port"], link["security"]) == ("imap", "imap.gmail.com", 993, "ssl")
    assert (link["smtp_host"], link["smtp_port"], link["smtp_security"]) == ("smtp.gmail.com", 587, "starttls")
    assert link["auth"] == "password"


def test_add_without_protocol_or_preset_says_what_is_missing(env):
    added = jsm_mail(env, "links", "add", "--name", "x", "--host", "mail.example.com", "--username", "u",
                     "--service-desk", "1", "--request-type", "10")
    assert added.returncode == 2 and "give --protocol or --preset" in added.stderr


def test_add_stores_the_first_import_choice(env, mail_account):
    env["PW"] = mail_account.password
    added = jsm_mail(env, "links", "add", "--name", "fresh", "--protocol", "imap", "--host", mail_account.host,
                     "--port", str(mail_account.imap_port), "--security", "none", "--username",
                     mail_account.username, "--password-env", "PW", "--service-desk", "1", "--request-type", "10",
                     "--first-import", "new")
    assert added.returncode == 0, added.stderr
    mail_account.append(mail_file("request_plain.eml"))
    polled = jsm_mail(env, "poll", "--once", "--link", "fresh")
    assert "1 created" in polled.stdout, polled.stdout + polled.stderr


def test_edit_checks_each_value_as_the_admin_pages_do(env, service):
    edited = jsm_mail(env, "links", "edit", "test", "--port", "70000", "--processed-label", "done mail",
                      "--block-domain", "not a domain")
    assert edited.returncode == 2
    assert "--port: A port is a number from 1 to 65535." in edited.stderr
    assert "--processed-label: mailbox label 'done mail' cannot be an IMAP keyword" in edited.stderr
    assert "--blocked-domains: 'not a domain' is not a domain name" in edited.stderr
    assert listed(env)["test"]["port"] == service.link.port


def test_edit_saves_policy_changes_and_keeps_the_rest(env, service):
    edited = jsm_mail(env, "links", "edit", "test", "--from-name", "Example Support", "--smart-match",
                      "--first-import", "recent", "--first-import-days", "3", "--block-domain", "spam.example")
    assert edited.returncode == 0, edited.stderr
    link = service.store.link("test")
    assert (link.from_name, link.smart_match.enabled, link.first_import.value, link.first_import_days,
            link.blocked_domains) == ("Example Support", True, "recent", 3, ("spam.example",))
    assert (link.password, link.host, link.request_type_id) == (service.link.password, service.link.host, "10")


def test_edit_probes_a_new_server_before_saving(env, service):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    edited = jsm_mail(env, "links", "edit", "test", "--port", str(closed))
    assert edited.returncode == 2
    assert f"not saved: The server 127.0.0.1 refused the connection on port {closed}: check the port." in edited.stderr
    assert service.store.link("test").port == service.link.port


def test_edit_refuses_a_request_type_that_cannot_take_mail(env, service):
    edited = jsm_mail(env, "links", "edit", "test", "--request-type", "11")
    assert edited.returncode == 2 and "lacks a summary or description field" in edited.stderr


def test_a_disabled_link_is_not_polled_until_enabled(env, service, mail_account, fake_jira):
    assert jsm_mail(env, "links", "disable", "test").returncode == 0
    assert listed(env)["test"]["enabled"] is False
    mail_account.append(mail_file("request_plain.eml"))
    polled = jsm_mail(env, "poll", "--once", "--link", "test")
    assert "test: skipped, the link is disabled" in polled.stdout and fake_jira.requests == []
    assert jsm_mail(env, "poll", "--once").stdout == ""

    assert jsm_mail(env, "links", "enable", "test").returncode == 0
    assert "1 created" in jsm_mail(env, "poll", "--once").stdout
    assert jsm_mail(env, "links", "disable", "nope").returncode == 2


def test_test_mail_from_the_shell_comes_back_as_test_mail_received(env, sending, smtp_sink, mail_account, fake_jira):
    sent = jsm_mail(env, "links", "test-mail", "test")
    assert sent.returncode == 0, sent.stderr
    [mail] = smtp_sink.messages
    mail_account.append(mail.data)
    assert "1 ignored" in jsm_mail(env, "poll", "--once").stdout
    [row] = [json.loads(line) for line in jsm_mail(env, "logs", "--json").stdout.splitlines()]
    assert row["detail"].startswith("test mail received") and fake_jira.requests == []
