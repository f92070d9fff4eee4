"""Outbound mail in the processing log and in `jsm-mail logs --json`."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import mail_file


def test_logs_json_shows_which_way_each_mail_went(sending, mail_account, fake_jira, smtp_sink, tmp_path):
    mail_account.append(mail_file("request_plain.eml"))
    sending.poll()
    [request] = fake_jira.requests
    comment = fake_jira.add_agent_comment(request.key, "answer")
    sending.poll()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("JSM_MAIL_")},
           "JSM_MAIL_DATA_DIR": str(sending.settings.data_dir), "JSM_MAIL_JIRA_URL": sending.settings.jira_url,
           "JSM_MAIL_ENV_FILE": str(tmp_path / "no.env")}

    out = subprocess.run([sys.executable, "-m", "plugin.cli", "logs", "--json"], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout

    inbound, outbound = [json.loads(line) for line in out.splitlines()]
    assert (inbound["direction"], inbound["outcome"], inbound["issue_key"]) == ("in", "created", request.key)
    ours = smtp_sink.messages[0].message["Message-ID"].strip("<>")
    assert outbound == outbound | {"direction": "out", "outcome": "sent", "reason": None, "issue_key": request.key,
                                   "comment_id": comment.id, "recipients": ["ann@example.org"],
                                   "message_id": ours, "from": "support@example.test",
                                   "subject": f"[{request.key}] VPN drops every hour"}
