"""Demo mode, as README's first command starts it: no Jira, sample mails, login, the processing log page."""
from __future__ import annotations

import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import lxml.html
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Browser:
    """A cookie-keeping HTTP client, as a browser session against the admin pages."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def open(self, path: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, str]:
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with self.opener.open(request, timeout=5) as response:
                return response.status, response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8")
        except urllib.error.URLError:
            return 0, ""  # not listening yet

    def post_form(self, path: str, fields: dict[str, str]) -> tuple[int, str]:
        return self.open(path, urllib.parse.urlencode(fields).encode())

    def token(self, path: str) -> str:
        return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', self.open(path)[1]).group(1)

    def upload(self, path: str, fields: dict[str, str], name: str, content: bytes) -> tuple[int, str]:
        boundary = "jsm-mail-test-boundary"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
                 for key, value in fields.items()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="eml"; filename="{name}"\r\n'
                     "Content-Type: message/rfc822\r\n\r\n".encode() + content + f"\r\n--{boundary}--\r\n".encode())
        return self.open(path, b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"})


@pytest.fixture
def demo(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSM_MAIL_")}
    env.update(JSM_MAIL_DATA_DIR=str(tmp_path / "var"), JSM_MAIL_ENV_FILE=str(tmp_path / "no.env"))
    server = subprocess.Popen([sys.executable, "-m", "plugin.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    browser = Browser(f"http://127.0.0.1:{port}")
    try:
        for _ in range(100):
            status, body = browser.open("/health")
            if status == 200:
                break
            time.sleep(0.1)
        assert json.loads(body)["demo"] is True
        yield browser, (tmp_path / "var" / "admin.password").read_text()
    finally:
        server.terminate()
        server.wait(timeout=10)


def link_demo_mailbox(browser: Browser) -> str:
    """What a newcomer does first: the mailboxes page's "Link the demo mailbox", then the wizard's "Test and save"."""
    index = browser.open("/admin/")[1]
    assert 'href="/admin/links/new/demo"' in index and "Link the demo mailbox" in index
    wizard = lxml.html.fromstring(browser.open("/admin/links/new/demo")[1])
    [form] = [f for f in wizard.forms if f.method == "POST" and "name" in f.fields]
    fields = dict(form.form_values())
    assert fields["host"].endswith("demo-maildir") and fields["first_import"] == "all"
    return browser.post_form("/admin/links/new/demo", {**fields, "action": "save"})[1]


def wait_for_outcomes(browser: Browser, count: int, deadline_s: float = 30) -> str:
    end = time.monotonic() + deadline_s
    page = ""
    while time.monotonic() < end:
        status, page = browser.open("/admin/logs")
        if status == 200 and page.count("<tr><td><a href") >= count:
            return page
        time.sleep(0.2)
    return page


def test_serve_in_demo_mode_handles_the_sample_mails_in_order_and_shows_the_log(demo):
    browser, password = demo
    assert "log in" in browser.open("/admin/logs")[1]  # sent to the login page

    status, _ = browser.post_form("/admin/login", {"csrf_token": browser.token("/admin/login"), "user": "admin",
                                                   "password": password})
    assert status == 200 and "No mailbox linked yet" in browser.open("/admin/")[1]
    linked = link_demo_mailbox(browser)
    assert "Link demo saved" in linked
    page = wait_for_outcomes(browser, 4)

    assert page.count('class="created"') == 2
    assert page.count('class="commented"') == 1 and page.count('class="ignored"') == 1
    assert "経費精算システムにログインできません" in page
    assert "dry run, nothing sent to Jira: would be new request SD-1" in page
    # newest first: the samples were handled in file-name order, the request before its reply
    outcomes = re.findall(r'<td class="([a-z-]+)">', page)
    assert outcomes == ["created", "ignored", "commented", "created"]


def test_a_demo_upload_says_it_is_a_dry_run(demo):
    browser, password = demo
    browser.post_form("/admin/login", {"csrf_token": browser.token("/admin/login"), "user": "admin",
                                       "password": password})
    link_demo_mailbox(browser)
    wait_for_outcomes(browser, 4)
    mail = (b"From: Ann <ann@example.org>\r\nTo: support@example.com\r\nSubject: Printer jam\r\n"
            b"Message-ID: <printer@example.org>\r\n\r\nThe printer on floor 2 jams.\r\n")

    status, page = browser.upload("/admin/replay", {"csrf_token": browser.token("/admin/"), "link": "demo",
                                                    "apply": "1"}, "printer.eml", mail)

    assert status == 200
    assert "Dry run, nothing is sent to Jira. printer.eml: created SD-3: dry run, nothing sent to Jira" in page
