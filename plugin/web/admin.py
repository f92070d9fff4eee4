"""Admin pages: links and their test, quarantined senders, trying a mail file on a link."""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from plugin.link_check import check_link
from plugin.link_status import all_statuses
from plugin.log_query import LogQuery, page
from plugin.replay import replay_file
from plugin.web import current_runtime
from plugin.web.auth import require_admin

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@require_admin
def index() -> ResponseReturnValue:
    runtime = current_runtime()
    links = runtime.store.links()
    names = {link.id: link.name for link in links}
    quarantined = [(names.get(link_id, link_id), sender, since)
                   for link_id, sender, since in runtime.store.quarantined()]
    return render_template("index.html", links=links, quarantined=quarantined, demo=runtime.settings.demo,
                           statuses={status.link: status for status in all_statuses(runtime.store)},
                           rows=page(runtime.store, LogQuery(), offset=0, limit=10),
                           jira_url=runtime.settings.jira_url)


@bp.post("/links/<name>/test")
@require_admin
def test_link(name: str) -> ResponseReturnValue:
    link = current_runtime().store.link(name)
    if link is None:
        abort(404)
    result = check_link(link, current_runtime())
    return render_template("link_test.html", link=link, result=result)


def upload_name(filename: str | None) -> str:
    """The uploaded file's own name for messages: its last path part, whatever the browser's OS."""
    name = PureWindowsPath(PurePosixPath(filename or "").name).name.strip()
    return name if name not in ("", ".", "..") else "the uploaded mail"


@bp.post("/replay")
@require_admin
def replay_upload() -> ResponseReturnValue:
    """Try an uploaded .eml on a link: shows the decision, or applies it when asked."""
    runtime = current_runtime()
    link = runtime.store.link(request.form.get("link", ""))
    upload = request.files.get("eml")
    if link is None:
        abort(400, description=gettext("Pick a linked mailbox to try the mail on."))
    if upload is None or not upload.filename:
        abort(400, description=gettext("Choose a mail file (.eml) to try."))
    raw = upload.read()
    if not raw:
        abort(400, description=gettext("%(name)s is empty.", name=upload_name(upload.filename)))
    with tempfile.TemporaryDirectory() as folder:
        # The file is stored under a name of our own: the browser's name never becomes a path.
        path = Path(folder) / f"{hashlib.sha256(raw).hexdigest()[:16]}.eml"
        path.write_bytes(raw)
        message = replay_file(path, link, runtime, apply=request.form.get("apply") == "1",
                              shown_as=upload_name(upload.filename))
    flash((gettext("Dry run, nothing is sent to Jira.") + " " if runtime.settings.demo else "") + message)
    return redirect(url_for("admin.index"))
