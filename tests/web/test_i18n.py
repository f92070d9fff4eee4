"""The admin pages in English or Japanese, with times in the admin's time zone."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.web.conftest import form_token

TRANSLATIONS = Path(__file__).resolve().parents[2] / "plugin" / "web" / "translations"


def test_the_browser_language_picks_japanese(admin):
    page = admin.get("/admin/", headers={"Accept-Language": "ja,en;q=0.5"}).get_data(as_text=True)
    assert '<html lang="ja">' in page
    assert "処理ログ" in page and "ログアウト" in page


def test_english_is_the_default_and_the_switch_wins_over_the_browser(admin):
    assert "Processing log" in admin.get("/admin/").get_data(as_text=True)
    answer = admin.post("/admin/prefs", data={"csrf_token": form_token(admin), "lang": "ja", "next": "/admin/logs"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/logs")
    assert "エラーログ" in admin.get("/admin/", headers={"Accept-Language": "en"}).get_data(as_text=True)


def test_unknown_language_or_zone_is_refused_and_nothing_changes(admin):
    token = form_token(admin)
    assert admin.post("/admin/prefs", data={"csrf_token": token, "lang": "xx"}).status_code == 400
    assert admin.post("/admin/prefs", data={"csrf_token": token, "tz": "Mars/Olympus"}).status_code == 400
    assert 'value="UTC"' in admin.get("/admin/").get_data(as_text=True)


def test_the_chosen_time_zone_is_kept_and_another_site_is_never_the_target(admin):
    answer = admin.post("/admin/prefs", data={"csrf_token": form_token(admin), "tz": "Asia/Tokyo",
                                              "next": "//evil.example/"})
    assert answer.headers["Location"].endswith("/admin/")
    assert 'value="Asia/Tokyo"' in admin.get("/admin/").get_data(as_text=True)


def test_every_japanese_message_is_translated_and_compiled():
    with (TRANSLATIONS / "ja/LC_MESSAGES/messages.po").open("rb") as po_file:
        catalog = read_po(po_file)
    untranslated = [message.id for message in catalog if message.id and not message.string]
    assert untranslated == []
    with (TRANSLATIONS / "ja/LC_MESSAGES/messages.mo").open("rb") as mo_file:
        compiled = {message.id: message.string for message in read_mo(mo_file) if message.id}
    assert compiled == {message.id: message.string for message in catalog if message.id}


def test_the_catalog_holds_every_text_the_pages_show(tmp_path):
    """A text marked for translation but missing from the catalog would show in English only."""
    root = TRANSLATIONS.parents[2]
    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", str(root / "babel.cfg"),
                    "-o", str(pot), "plugin"], check=True, cwd=root,
                   capture_output=True)
    with pot.open("rb") as pot_file:
        wanted = {message.id for message in read_po(pot_file) if message.id}
    with (TRANSLATIONS / "ja/LC_MESSAGES/messages.po").open("rb") as po_file:
        held = {message.id for message in read_po(po_file) if message.id}
    assert wanted - held == set()


def test_the_browser_zone_is_applied_quietly_once_and_an_unknown_one_settles_on_the_service_zone(admin):
    page = admin.get("/admin/").get_data(as_text=True)
    assert 'value="UTC" data-detect' in page  # prefs.js may fill in the browser's zone

    unknown = admin.post("/admin/prefs", data={"csrf_token": form_token(admin), "tz": "Etc/Nowhere", "detected": "1"})
    page = admin.get("/admin/").get_data(as_text=True)

    assert unknown.status_code == 302
    assert 'value="UTC" size' in page and "data-detect" not in page  # asked once, never again
    assert "Preferences saved." not in page


def test_outcomes_and_reasons_are_labelled_in_the_language_with_their_codes_kept(admin, service):
    from plugin.domain import Outcome, OutcomeState
    from plugin.errors import RejectReason
    service.record(Outcome(OutcomeState.REJECTED, reason=RejectReason.TOO_LARGE, detail="60 MB"),
                   message_id="<big@example.org>", sender="big@example.org", subject="big")

    english = admin.get("/admin/logs").get_data(as_text=True)
    japanese = admin.get("/admin/logs", headers={"Accept-Language": "ja"}).get_data(as_text=True)

    assert ">Rejected</span>" in english and ">Too large</span>" in english
    assert ">拒否</span>" in japanese and ">サイズ超過</span>" in japanese
    assert all('<code class="raw-code">rejected</code>' in page and '<code class="raw-code">too-large</code>' in page
               for page in (english, japanese))
