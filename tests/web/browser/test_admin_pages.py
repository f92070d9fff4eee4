"""The admin pages in a real Chromium against `jsm-mail serve`: log in, follow a polled mail, Japanese, time zones."""
from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

from selenium.webdriver.support.ui import Select

from tests.conftest import mail_file
from tests.web.browser.conftest import Browser

POLLED_WITHIN_S = 60.0


def wait_for_mail_in_log(browser: Browser, subject: str) -> None:
    """Reload the processing log until the service's own polling has handled the mail."""
    deadline = time.monotonic() + POLLED_WITHIN_S
    while subject not in browser.text("table.log-table"):
        assert time.monotonic() < deadline, f"{subject!r} never showed in the processing log"
        time.sleep(0.5)
        browser.open("/admin/logs")


def shown_and_utc_times(browser: Browser) -> list[tuple[str, datetime]]:
    """Each log row's time as shown, with the instant the page says it is (the <time> element's UTC value)."""
    return [(element.text, datetime.fromisoformat(element.get_attribute("datetime") or ""))
            for element in browser.find_all("table.log-table time")]


def apply_prefs(browser: Browser, *, language: str | None = None, zone: str | None = None) -> None:
    if language:
        Select(browser.find("form.prefs select[name=lang]")).select_by_value(language)
    if zone:
        field = browser.find("form.prefs input[name=tz]")
        field.clear()
        field.send_keys(zone)
    browser.submit_and_wait(browser.find("form.prefs button"))


def test_a_wrong_password_is_refused_and_the_right_one_opens_the_admin_pages(browser, live_service):
    live_service.log_in(browser, password="not the password")
    assert browser.text(".problem") == "Wrong user or password."
    assert not browser.find_all("nav")
    browser.shot("login-refused")

    live_service.log_in(browser)

    assert browser.text("h1") == "Linked mailboxes"
    assert [link.text for link in browser.find_all("nav > a")] == ["Mailboxes", "Processing log", "Error log"]
    assert browser.find("nav > a[aria-current=page]").text == "Mailboxes"
    assert live_service.service.link.name in browser.text("table.dynamic-table")
    browser.shot("mailboxes")


def test_a_polled_mail_shows_in_the_log_and_opens_in_detail(browser, live_service, mail_account, fake_jira):
    live_service.log_in(browser)
    mail_account.append(mail_file("request_plain.eml"))

    browser.open("/admin/logs")
    wait_for_mail_in_log(browser, "VPN drops every hour")
    row = browser.find("table.log-table tbody tr")
    lozenge = row.find_element("css selector", "td.created .lozenge")

    assert [request.key for request in fake_jira.requests] == ["SD-1"]
    assert "ann@example.org" in row.text and "SD-1" in row.text
    assert (lozenge.text, lozenge.get_attribute("title")) == ("REQUEST CREATED", "created")
    assert row.find_element("css selector", "td.created .raw-code").text == "created"
    assert browser.find("nav > a[aria-current=page]").text == "Processing log"
    browser.shot("processing-log")

    browser.submit_and_wait(row.find_element("css selector", "td a"))

    assert browser.text("h1") == "VPN drops every hour"
    details = browser.text("dl.mail")
    assert "ann@example.org" in details and "SD-1" in details and "REQUEST CREATED" in details
    assert browser.find("dl.mail a[href$='/browse/SD-1']").text == "SD-1"
    browser.shot("mail-detail")


def test_switching_to_japanese_shows_the_pages_in_japanese_with_the_codes_kept(browser, live_service, mail_account):
    live_service.log_in(browser)
    mail_account.append(mail_file("request_plain.eml"))
    browser.open("/admin/logs")
    wait_for_mail_in_log(browser, "VPN drops every hour")

    apply_prefs(browser, language="ja")

    assert browser.find("html").get_attribute("lang") == "ja"
    assert browser.text("h1") == "処理ログ"
    assert [link.text for link in browser.find_all("nav > a")] == ["メールボックス", "処理ログ", "エラーログ"]
    headers = [header.text for header in browser.find_all("table.log-table th")]
    assert headers == ["日時 (UTC)", "連携", "差出人", "件名", "結果", "リクエスト / 理由", "処理内容と理由"]
    assert browser.text("td.created .lozenge") == "リクエスト作成"
    assert browser.text("td.created .raw-code") == "created"  # the code an admin searches by stays
    assert browser.text(".flash") == "設定を保存しました。"
    browser.shot("processing-log-ja")

    browser.open("/admin/")  # the choice is kept from page to page
    assert browser.text("h1") == "連携済みのメールボックス"
    assert browser.find("form.prefs button").text == "適用"
    browser.shot("mailboxes-ja")


def test_times_follow_the_browser_zone_at_first_and_the_chosen_zone_after(browser, live_service, mail_account):
    browser.set_timezone("America/New_York")
    mail_account.append(mail_file("request_plain.eml"))
    live_service.log_in(browser)
    browser.open("/admin/logs")
    wait_for_mail_in_log(browser, "VPN drops every hour")

    # A first visit takes the browser's zone, without a message.
    assert browser.find("form.prefs input[name=tz]").get_attribute("value") == "America/New_York"
    assert browser.text("table.log-table th") == "Time (America/New_York)"
    assert not browser.find_all(".flash")
    [(shown, instant)] = shown_and_utc_times(browser)
    assert shown == instant.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%d %H:%M:%S")

    apply_prefs(browser, zone="Asia/Tokyo")

    [(shown, instant)] = shown_and_utc_times(browser)
    assert browser.text("table.log-table th") == "Time (Asia/Tokyo)"
    assert shown == instant.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M:%S")
    assert browser.find("form.prefs input[name=tz]").get_attribute("value") == "Asia/Tokyo"
    browser.shot("processing-log-tokyo")

    # The admin's choice wins over the browser's zone on the next pages and after a new login.
    browser.submit_and_wait(browser.find("nav form:not(.prefs) button"))
    live_service.log_in(browser)
    browser.open("/admin/logs")
    assert browser.find("form.prefs input[name=tz]").get_attribute("value") == "Asia/Tokyo"
    assert shown_and_utc_times(browser)[0][0] == shown


def test_a_quarantined_sender_is_released_from_the_mailboxes_page(browser, live_service):
    live_service.service.quarantine("storm@example.org")
    live_service.log_in(browser)
    quarantine = browser.find("table.quarantine")
    assert "storm@example.org" in quarantine.text
    browser.shot("quarantine")

    quarantine.find_element("css selector", "input[type=checkbox]").click()
    browser.submit_and_wait(browser.find("form[action$='/quarantine/release'] button"))

    flashes = [flash.text for flash in browser.find_all(".flash")]
    assert any(flash.startswith("storm@example.org released on test;") for flash in flashes), flashes
    assert not browser.find_all("table.quarantine")
    assert not live_service.service.store.is_quarantined(live_service.service.link.id, "storm@example.org")
    browser.shot("quarantine-released")
