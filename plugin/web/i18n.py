"""The admin pages' language and time zone: English or Japanese, times shown in the admin's zone."""
from __future__ import annotations

from zoneinfo import ZoneInfo, available_timezones

from flask import Blueprint, Flask, flash, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import Babel, gettext

from plugin.web import current_runtime
from plugin.web.auth import require_admin

LANGUAGES = {"en": "English", "ja": "日本語"}
bp = Blueprint("prefs", __name__, url_prefix="/admin")


def pick_language() -> str:
    """The admin's own choice, else the best the browser asks for, else English."""
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(LANGUAGES, default="en") or "en"


def pick_timezone() -> str:
    """The admin's own zone, else the service's JSM_MAIL_TIMEZONE."""
    chosen = session.get("tz")
    return str(chosen) if chosen in available_timezones() else current_runtime().settings.timezone


def init_i18n(app: Flask) -> None:
    Babel(app, locale_selector=pick_language, timezone_selector=pick_timezone,
          default_translation_directories="web/translations")
    app.jinja_env.globals.update(languages=LANGUAGES, current_language=pick_language, current_timezone=pick_timezone)


@bp.post("/prefs")
@require_admin
def set_prefs() -> ResponseReturnValue:
    """Remember the admin's language and time zone for this session."""
    lang = request.form.get("lang")
    tz = request.form.get("tz")
    if lang is not None:
        if lang not in LANGUAGES:
            return gettext("Unknown language."), 400
        session["lang"] = lang
    if tz:
        if tz not in available_timezones():
            return gettext("Unknown time zone: %(tz)s", tz=tz), 400
        session["tz"] = ZoneInfo(tz).key
    if lang is not None or tz:
        flash(gettext("Preferences saved."))
    target = request.form.get("next", "")
    # Only paths on this site: an open redirect would let another site borrow our login.
    return redirect(target if target.startswith("/") and not target.startswith("//") else url_for("admin.index"))
