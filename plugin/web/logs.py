"""The processing log and error log pages: what happened to each mail, and why."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from flask import Blueprint, Response, abort, render_template, request, send_file

from plugin.store.store import LOG_FIELDS, parse_since
from plugin.web import current_runtime
from plugin.web.auth import require_admin

bp = Blueprint("logs", __name__, url_prefix="/admin")


@bp.get("/logs")
@require_admin
def processing_log():
    runtime = current_runtime()
    link = request.args.get("link") or None
    since = request.args.get("since") or None
    outcome = request.args.get("outcome") or None
    entries = runtime.store.processing_log(link=link, since=parse_since(since) if since else None, limit=500)
    if outcome:
        entries = [e for e in entries if e.outcome == outcome]
    if request.args.get("format") == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=LOG_FIELDS)
        writer.writeheader()
        for entry in reversed(entries):
            writer.writerow(entry.as_json())
        return Response(out.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=processing-log.csv"})
    return render_template("logs.html", entries=entries, links=runtime.store.links(), link=link, since=since,
                           outcome=outcome, demo=runtime.settings.demo)


@bp.get("/logs/raw/<name>")
@require_admin
def raw_mail(name: str):
    """Download a mail that did not become Jira content (rejected or failed)."""
    folder = (current_runtime().settings.data_dir / "mail").resolve()
    path = (folder / Path(name).name).resolve()
    if path.parent != folder or not path.is_file():
        abort(404)
    return send_file(path, mimetype="message/rfc822", as_attachment=True, download_name=path.name)


@bp.get("/errors")
@require_admin
def error_log():
    return render_template("errors.html", errors=current_runtime().store.error_log())
