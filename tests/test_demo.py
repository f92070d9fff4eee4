"""Demo mode, as README's first command starts it: no Jira, sample mails, the processing log page."""
from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, headers: dict | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, ""
    except urllib.error.URLError:
        return 0, ""  # not listening yet


def wait_for_outcomes(url: str, headers: dict, count: int, deadline_s: float = 30) -> str:
    end = time.monotonic() + deadline_s
    page = ""
    while time.monotonic() < end:
        status, page = get(url, headers)
        if status == 200 and page.count("<tr><td>") >= count:
            return page
        time.sleep(0.2)
    return page


def test_serve_in_demo_mode_handles_the_sample_mails_and_shows_the_log(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSM_MAIL_")}
    env.update(JSM_MAIL_DATA_DIR=str(tmp_path / "var"), JSM_MAIL_ENV_FILE=str(tmp_path / "no.env"))
    server = subprocess.Popen([sys.executable, "-m", "plugin.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            status, body = get(f"{base}/health")
            if status == 200:
                break
            time.sleep(0.1)
        assert json.loads(body)["demo"] is True
        password = (tmp_path / "var" / "admin.password").read_text()
        auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()}

        page = wait_for_outcomes(f"{base}/admin/logs", auth, 4)

        assert page.count('class="created"') == 2
        assert page.count('class="commented"') == 1 and page.count('class="ignored"') == 1
        assert "経費精算システムにログインできません" in page
        assert "dry run, nothing sent to Jira: would be new request SD-1" in page
        assert get(f"{base}/admin/logs")[0] == 401
    finally:
        server.terminate()
        server.wait(timeout=10)
