"""Recovery from the admin pages: retry the rejected or failed mails picked on the processing log, release the
quarantined senders picked on the mailboxes page and re-run the mails held for them."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from plugin.recover import Retried, release_and_rerun, retry_logged
from plugin.web import current_runtime
from plugin.web.auth import require_admin

bp = Blueprint("recover", __name__, url_prefix="/admin")
MAX_PICKED = 500  # one form's worth; a larger clean-up is `jsm-mail recover` in a loop


def _back(default: str) -> ResponseReturnValue:
    target = request.form.get("next", "")
    # Only paths on this site: an open redirect would let another site borrow our login.
    return redirect(target if target.startswith("/") and not target.startswith("//") else default)


def _tell(results: list[Retried]) -> None:
    done = sum(result.ok for result in results)
    flash(gettext("Done: %(done)d of %(total)d succeeded.", done=done, total=len(results)) if done == len(results) else
          gettext("%(done)d of %(total)d actions succeeded; the others say why below.", done=done,
                  total=len(results)))
    for result in results:
        flash(result.line)


@bp.post("/logs/retry")
@require_admin
def retry() -> ResponseReturnValue:
    picked = request.form.getlist("log_id")
    if not picked:
        flash(gettext("Tick the rejected or failed mails to retry first."))
        return _back(url_for("logs.processing_log"))
    if len(picked) > MAX_PICKED or not all(value.isascii() and value.isdigit() for value in picked):
        abort(400, description=gettext("Pick at most %(max)d mails of the list.", max=MAX_PICKED))
    runtime = current_runtime()
    _tell([retry_logged(runtime, int(value)) for value in dict.fromkeys(picked)])
    return _back(url_for("logs.processing_log"))


@bp.post("/quarantine/release")
@require_admin
def release() -> ResponseReturnValue:
    """Release the ticked senders ("link/sender", link names hold no "/"), or the one named by link and sender."""
    runtime = current_runtime()
    picked = [(value.partition("/")[0], value.partition("/")[2]) for value in request.form.getlist("pick")
              if "/" in value]
    if request.form.get("link") and request.form.get("sender"):
        picked.append((request.form["link"], request.form["sender"]))
    if not picked:
        flash(gettext("Tick the senders to release first."))
    results: list[Retried] = []
    for link_name, sender in list(dict.fromkeys(picked))[:MAX_PICKED]:
        link = runtime.store.link(link_name)
        results += (release_and_rerun(runtime, link, sender) if link else
                    [Retried(0, False, gettext("%(link)s is not a link", link=link_name))])
    if results:
        _tell(results)
    return redirect(url_for("admin.index"))
