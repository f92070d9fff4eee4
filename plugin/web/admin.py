"""Admin pages: links and their test, quarantined senders, trying a mail file on a link."""
from __future__ import annotations

import tempfile
from pathlib import Path

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from plugin.link_check import check_link
from plugin.replay import replay_file
from plugin.web import current_runtime
from plugin.web.auth import require_admin

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@require_admin
def index():
    runtime = current_runtime()
    links = runtime.store.links()
    names = {link.id: link.name for link in links}
    quarantined = [(names.get(link_id, link_id), sender, since) for link_id, sender, since in runtime.store.quarantined()]
    return render_template("index.html", links=links, quarantined=quarantined, demo=runtime.settings.demo,
                           entries=runtime.store.processing_log(limit=10))


@bp.post("/links/<name>/test")
@require_admin
def test_link(name: str):
    link = current_runtime().store.link(name)
    if link is None:
        abort(404)
    result = check_link(link, current_runtime())
    return render_template("link_test.html", link=link, result=result)


@bp.post("/quarantine/release")
@require_admin
def release_sender():
    runtime = current_runtime()
    link = runtime.store.link(request.form.get("link", ""))
    sender = request.form.get("sender", "")
    if link and runtime.store.release(link.id, sender):
        flash(f"{sender} released on {link.name}; their next mails are handled at the next poll")
    else:
        flash(f"{sender} was not quarantined")
    return redirect(url_for("admin.index"))


@bp.post("/replay")
@require_admin
def replay_upload():
    """Try an uploaded .eml on a link: shows the decision, or applies it when asked."""
    runtime = current_runtime()
    link = runtime.store.link(request.form.get("link", ""))
    upload = request.files.get("eml")
    if link is None or upload is None:
        abort(400)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / (Path(upload.filename or "upload.eml").name or "upload.eml")
        upload.save(path)
        flash(replay_file(path, link, runtime, apply=request.form.get("apply") == "1"))
    return redirect(url_for("admin.index"))
