"""A new admin's first hour, in a real Chromium against `jsm-mail serve`: link a mailbox through the wizard, send
the test mail, recover a rejected mail, read it all in Japanese."""
from __future__ import annotations

import time

from selenium.webdriver.support.ui import Select

from tests.conftest import mail_file
from tests.web.browser.conftest import Browser
from tests.web.browser.test_admin_pages import POLLED_WITHIN_S, apply_prefs, wait_for_mail_in_log


def fill(browser: Browser, name: str, value: str) -> None:
    field = browser.find(f"[name={name}]")
    browser.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", field)
    field.clear()
    field.send_keys(value)


def press(browser: Browser, css: str) -> None:
    """Click a button or link as a person would: scrolled to the middle, clear of the sticky top bar."""
    element = browser.find(css)
    browser.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    browser.submit_and_wait(element)


def reload_until(browser: Browser, css: str, path: str) -> None:
    """Open `path` again until `css` shows: the service's own polling is what the page waits for."""
    deadline = time.monotonic() + POLLED_WITHIN_S
    while not browser.find_all(css):
        assert time.monotonic() < deadline, f"{css} never showed on {path}"
        time.sleep(0.5)
        browser.open(path)


def test_a_mailbox_linked_through_the_wizard_is_tested_its_rejects_recovered_in_japanese_too(
        browser, live_service, mail_account, fake_jira, smtp_sink):
    live_service.log_in(browser)
    # The fixture's own link reads the same mailbox: the admin turns it off first.
    browser.open(f"/admin/links/{live_service.service.link.name}")
    press(browser, "form[action$='/disable'] button")

    browser.open("/admin/")
    press(browser, "a.button[href$='/admin/links/new']")
    press(browser, "a[href$='/admin/links/new/imap']")
    fill(browser, "name", "support")
    fill(browser, "host", mail_account.host)
    fill(browser, "port", str(mail_account.imap_port))
    Select(browser.find("select[name=security]")).select_by_value("none")
    fill(browser, "username", mail_account.username)
    fill(browser, "password", mail_account.password)
    fill(browser, "smtp_host", smtp_sink.host)
    fill(browser, "smtp_port", str(smtp_sink.port))
    Select(browser.find("select[name=smtp_security]")).select_by_value("none")
    Select(browser.find("select[name=service_desk]")).select_by_visible_text("Support (SD)")
    press(browser, "button[name=action][value=refresh]")
    request_types = Select(browser.find("select[name=request_type]"))
    assert "Report an outage (no summary or description field)" in [o.text for o in request_types.options]
    request_types.select_by_visible_text("Email request")
    browser.shot("wizard")
    press(browser, "button[name=action][value=save]")

    assert browser.text("h1") == "Link support"
    link = live_service.service.store.link("support")
    assert link is not None and (link.service_desk_id, link.request_type_id) == ("1", "10")

    press(browser, "form[action$='/test-mail'] button")
    assert browser.find_all("#waiting")
    [test_mail] = smtp_sink.messages
    mail_account.append(test_mail.data)  # what the outgoing server does with mail to the linked address
    reload_until(browser, "#arrived", browser.driver.current_url.removeprefix(live_service.url))
    assert "test mail received" in browser.text("#arrived + table")
    assert fake_jira.requests == []
    browser.shot("test-mail-arrived")

    fake_jira.fail_next(status=400, path="/rest/servicedeskapi/request", method="POST")
    mail_account.append(mail_file("request_plain.eml"))
    browser.open("/admin/logs")
    wait_for_mail_in_log(browser, "VPN drops every hour")
    assert "jira-refused" in browser.text("table.log-table")
    browser.find("table.log-table input[type=checkbox][name=log_id]").click()
    press(browser, "form[action$='/retry'] button.button")

    [request] = fake_jira.requests
    flashes = [flash.text for flash in browser.find_all(".flash")]
    assert any(f"retried by admin: created {request.key}" in flash for flash in flashes), flashes
    browser.shot("recovered")

    apply_prefs(browser, language="ja")
    assert [a.text for a in browser.find_all("nav > a")] == ["メールボックス", "処理ログ", "エラーログ"]
    assert request.key in browser.text("table.log-table")
    browser.shot("recovered-ja")
