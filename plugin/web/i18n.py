"""The admin pages' language and time zone: English or Japanese, times shown in the admin's zone."""
from __future__ import annotations

from zoneinfo import ZoneInfo, available_timezones

from flask import Blueprint, Flask, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import Babel, force_locale, gettext

from plugin.web import current_runtime
from plugin.web.auth import require_admin

LANGUAGES = {"en": "English", "ja": "日本語"}
# The choice outlives the 8-hour session and a new login, so an admin picks a language and zone once per browser.
LANG_COOKIE, TZ_COOKIE = "jsm_mail_lang", "jsm_mail_tz"
PREFS_MAX_AGE_S = 365 * 24 * 3600
ZONES = frozenset(available_timezones())  # read once: the call walks the tz database each time (~30 ms)
# ADS lozenge appearances (atlassian.design/components/lozenge): success green, inprogress blue,
# removed red, moved yellow, new purple, default grey.
LOZENGES = {"created": "success", "sent": "success", "commented": "inprogress", "bounce-recorded": "new",
            "ignored": "default", "rejected": "removed", "failed": "removed", "send-failed": "removed",
            "waiting-retry": "moved"}
bp = Blueprint("prefs", __name__, url_prefix="/admin")


def pick_language() -> str:
    """The admin's own choice, else the best the browser asks for, else English."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(LANGUAGES, default="en") or "en"


def chosen_timezone() -> str | None:
    """The zone the admin picked in this browser, if any."""
    chosen = request.cookies.get(TZ_COOKIE)
    return str(chosen) if chosen in ZONES else None


def pick_timezone() -> str:
    """The admin's own zone, else the service's JSM_MAIL_TIMEZONE."""
    return chosen_timezone() or current_runtime().settings.timezone


def outcome_label(code: str) -> str:
    """An outcome in the admin's language; the code itself stays beside it on the page, for searching."""
    labels: dict[str, str] = {"created": gettext("Request created"), "commented": gettext("Comment added"),
              "bounce-recorded": gettext("Bounce recorded"), "ignored": gettext("Ignored"),
              "rejected": gettext("Rejected"), "waiting-retry": gettext("Waiting to retry"),
              "failed": gettext("Failed"), "sent": gettext("Mail sent"), "send-failed": gettext("Sending failed")}
    return labels.get(code, code)


def reason_label(code: str) -> str:
    """A reject or send-failure reason code in the admin's language."""
    labels: dict[str, str] = {"too-large": gettext("Too large"), "malformed": gettext("Malformed mail"),
              "missing-from": gettext("No From address"), "missing-to": gettext("No To address"),
              "sender-not-allowed": gettext("Sender not allowed"),
              "sender-not-customer": gettext("Sender is not a customer"),
              "sender-quarantined": gettext("Sender quarantined"), "jira-refused": gettext("Refused by Jira"),
              "internal-error": gettext("Internal error"), "deleted": gettext("Deleted in Jira"),
              "internal": gettext("Made internal"), "no-recipient": gettext("No one to mail"),
              "refused": gettext("Refused by the mail server")}
    return labels.get(code, code)


def kind_label(code: str) -> str:
    """What kind of mail the classifier saw, in the admin's language."""
    labels: dict[str, str] = {"mail": gettext("Mail"), "auto_reply": gettext("Auto-reply"), "bounce": gettext("Bounce"),
              "feedback_report": gettext("Feedback report"), "loop": gettext("Mail loop"),
              "invalid": gettext("Unreadable mail")}
    return labels.get(code, code)


def access_label(code: str) -> str:
    """Who may raise requests by mail on a link, in the admin's language."""
    labels: dict[str, str] = {"open": gettext("Anyone (new senders become customers)"),
                              "customers-only": gettext("Customers only")}
    return labels.get(code, code)


def init_i18n(app: Flask) -> None:
    Babel(app, locale_selector=pick_language, timezone_selector=pick_timezone,
          default_translation_directories="web/translations")
    app.jinja_env.globals.update(languages=LANGUAGES, current_language=pick_language, current_timezone=pick_timezone,
                                 timezone_chosen=lambda: chosen_timezone() is not None)
    app.jinja_env.filters.update(outcome_label=outcome_label, reason_label=reason_label, kind_label=kind_label,
                                 access_label=access_label,
                                 lozenge=lambda code: LOZENGES.get(code, "default"))


@bp.post("/prefs")
@require_admin
def set_prefs() -> ResponseReturnValue:
    """Remember the admin's language and time zone in this browser.

    `detected=1` marks the zone the page's script read from the browser on a first visit: saved
    without a message, and an unknown one settles on the service's zone so the script asks once."""
    lang = request.form.get("lang")
    tz = request.form.get("tz")
    detected = request.form.get("detected") == "1"
    chosen: dict[str, str] = {}
    if lang is not None:
        if lang not in LANGUAGES:
            return gettext("Unknown language."), 400
        chosen[LANG_COOKIE] = lang
    if tz:
        if tz in ZONES:
            chosen[TZ_COOKIE] = ZoneInfo(tz).key
        elif detected:
            chosen[TZ_COOKIE] = current_runtime().settings.timezone
        else:
            return gettext("Unknown time zone: %(tz)s", tz=tz), 400
    if chosen and not detected:
        with force_locale(chosen.get(LANG_COOKIE) or pick_language()):  # said in the language just chosen
            flash(gettext("Preferences saved."))
    target = request.form.get("next", "")
    # Only paths on this site: an open redirect would let another site borrow our login.
    answer = redirect(target if target.startswith("/") and not target.startswith("//") else url_for("admin.index"))
    for name, value in chosen.items():
        answer.set_cookie(name, value, max_age=PREFS_MAX_AGE_S, httponly=True, samesite="Lax", path="/admin")
    return answer
