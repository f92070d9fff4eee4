"""The README's way: link a mailbox with SMTP settings, answer in Jira, `poll --once`, the customer has mail."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import mail_file


def test_a_newcomer_links_a_mailbox_with_smtp_and_the_answer_is_mailed(settings, mail_account, fake_jira,
                                                                         smtp_sink, tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("JSM_MAIL_")},
           "JSM_MAIL_DATA_DIR": str(settings.data_dir), "JSM_MAIL_JIRA_URL": settings.jira_url,
           "JSM_MAIL_JIRA_EMAIL": settings.jira_email, "JSM_MAIL_JIRA_API_TOKEN": settings.jira_api_token.reveal(),
           "JSM_MAIL_ENV_FILE": str(tmp_path / "no.env"), "SUPPORT_PW": mail_account.password,
           "SMTP_PW": "smtp-secret-7d1e"}

    def jsm_mail(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "plugin.cli", *args], env=env, capture_output=True, text=True,
                              timeout=60, check=True)

    jsm_mail("links", "add", "--name", "support", "--protocol", "imap", "--host", mail_account.host,
             "--port", str(mail_account.imap_port), "--security", "none", "--username", mail_account.username,
             "--password-env", "SUPPORT_PW", "--service-desk", "1", "--request-type", "10",
             "--address", "support@example.test", "--smtp-host", smtp_sink.host, "--smtp-port", str(smtp_sink.port),
             "--smtp-security", "none", "--smtp-password-env", "SMTP_PW", "--from-name", "Example Support")
    [link] = json.loads(jsm_mail("links", "list", "--json").stdout)
    assert (link["smtp_host"], link["smtp_port"], link["from_name"]) == (smtp_sink.host, smtp_sink.port,
                                                                         "Example Support")
    assert b"smtp-secret-7d1e" not in (settings.data_dir / "jsm-mail.db").read_bytes()
    mail_account.append(mail_file("request_plain.eml"))
    jsm_mail("poll", "--once")
    [request] = fake_jira.requests
    fake_jira.add_agent_comment(request.key, "Please restart the VPN client.")

    polled = jsm_mail("poll", "--once")

    assert "outbound: 1 sent" in polled.stdout
    [delivered] = smtp_sink.messages
    assert delivered.message["From"] == "Example Support <support@example.test>"
    assert delivered.rcpt_tos == ("ann@example.org",)
