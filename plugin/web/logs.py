"""The processing log and error log pages: what happened to each mail, and why."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, render_template, request, send_file, stream_with_context, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from plugin.inspect import inspect_file
from plugin.log_csv import csv_chunks
from plugin.log_query import OUTCOMES, LoggedMail, LogQuery, count, every, one, page, parse_when
from plugin.web import current_runtime
from plugin.web.auth import require_admin
from plugin.web.i18n import pick_timezone

bp = Blueprint("logs", __name__, url_prefix="/admin")
PAGE_SIZE = 50
MAX_PAGE = 10**9  # keeps the row offset inside SQL's 64-bit integers
FILE_NAME_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')


class BadQuery(ValueError):
    """A query value the page cannot use; its message is shown with a 400 answer."""


def _query(args: Any) -> LogQuery:
    outcome = args.get("outcome") or None
    if outcome and outcome not in OUTCOMES:
        raise BadQuery(gettext("unknown outcome %(outcome)r: use one of %(outcomes)s", outcome=outcome,
                               outcomes=", ".join(OUTCOMES)))
    since, until = _when(args.get("since")), _when(args.get("until"))
    return LogQuery(link=args.get("link") or None, outcome=outcome, text=args.get("q") or None,
                    since=since, until=until)


def _when(value: str | None) -> datetime | None:
    try:
        # The page shows times in the admin's zone, so the dates typed into it are read in that zone too.
        return parse_when(value, zone=ZoneInfo(pick_timezone())) if value else None
    except ValueError:
        raise BadQuery(gettext("cannot read %(value)r as a time: use today, yesterday, a date such as 2026-01-31 "
                               "(or 2026-01-31T09:00), or an age such as 7d, 12h, 30m", value=value)) from None


def _page_number(args: Any) -> int:
    value = args.get("page", "1")
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise BadQuery(gettext("page must be a whole number from 1 to %(max)s, not %(value)r",
                               max=MAX_PAGE, value=value))
    return int(value)


@bp.get("/logs")
@require_admin
def processing_log() -> ResponseReturnValue:
    runtime = current_runtime()
    settings = runtime.settings
    shown: dict[str, Any] = {"links": runtime.store.links(), "args": request.args, "outcomes": OUTCOMES,
                             "demo": settings.demo, "jira_url": settings.jira_url}
    try:
        query, number = _query(request.args), _page_number(request.args)
    except BadQuery as problem:
        return render_template("logs.html", rows=[], problem=str(problem), empty=gettext("Nothing shown."),
                               **shown), 400
    if request.args.get("format") == "csv":
        return _csv(query)
    total = count(runtime.store, query)
    rows = page(runtime.store, query, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    first = (number - 1) * PAGE_SIZE + 1
    filters = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "logs.html", rows=rows, total=total, first=first, last=first + len(rows) - 1,
        previous_url=_page_url(filters, number - 1) if number > 1 else None,
        next_url=_page_url(filters, number + 1) if first + len(rows) <= total else None,
        empty=gettext("No mail matches.") if filters else gettext("No mail handled yet."), **shown)


def _page_url(filters: dict[str, str], number: int) -> str:
    return url_for("logs.processing_log") + "?" + urlencode({**filters, "page": str(number)})


def _csv(query: LogQuery) -> Response:
    """Every matching row, streamed: a year of log is never held in memory or cut short."""
    store = current_runtime().store
    name = f"processing-log-{datetime.now(UTC):%Y%m%d-%H%M}.csv"
    return Response(stream_with_context(csv_chunks(every(store, query), bom=True)),
                    mimetype="text/csv", headers={"Content-Disposition": f"attachment; filename={name}"})


def _logged_or_404(log_id: int) -> LoggedMail:
    row = one(current_runtime().store, log_id)
    if row is None:
        abort(404)
    return row


def _kept_mail(row: LoggedMail) -> Path | None:
    """The kept copy of the mail, only when it lies in the data dir's mail folder."""
    if not row.entry.raw_path:
        return None
    folder = (current_runtime().settings.data_dir / "mail").resolve()
    path = Path(row.entry.raw_path).resolve()
    return path if path.parent == folder and path.is_file() else None


@bp.get("/logs/<int:log_id>")
@require_admin
def mail_detail(log_id: int) -> ResponseReturnValue:
    row = _logged_or_404(log_id)
    kept = _kept_mail(row)
    settings = current_runtime().settings
    return render_template("mail.html", row=row, read=inspect_file(kept) if kept else None, demo=settings.demo,
                           jira_url=settings.jira_url)


def download_name(row: LoggedMail) -> str:
    """`2026-01-31 0915 VPN drops every hour.eml`: the date and subject, safe on every file system."""
    subject = FILE_NAME_UNSAFE.sub(" ", row.entry.subject or "no subject").strip(" .")[:80] or "no subject"
    return f"{row.entry.time:%Y-%m-%d %H%M} {subject}.eml"


@bp.get("/logs/<int:log_id>/mail")
@require_admin
def raw_mail(log_id: int) -> ResponseReturnValue:
    """Download a mail that did not become Jira content (rejected or failed)."""
    kept = _kept_mail(_logged_or_404(log_id))
    if kept is None:
        abort(404)
    return send_file(kept, mimetype="message/rfc822", as_attachment=True,
                     download_name=download_name(_logged_or_404(log_id)))


@bp.get("/errors")
@require_admin
def error_log() -> ResponseReturnValue:
    return render_template("errors.html", errors=current_runtime().store.error_log(),
                           demo=current_runtime().settings.demo)
