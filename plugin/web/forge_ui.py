"""What the Forge app's pages in Jira show, asked by their invokeRemote calls: links, their state, their log."""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify

from plugin.domain import Link
from plugin.errors import RetryLater
from plugin.runtime import Runtime
from plugin.store.forge_installations import ForgeInstallation, site_host
from plugin.store.store import LogEntry
from plugin.web import current_runtime
from plugin.web.forge import Invocation, Refused, accept_call, refusal

log = logging.getLogger(__name__)
bp = Blueprint("forge_ui", __name__, url_prefix="/forge/ui")

ADMIN_PAGE, PROJECT_SETTINGS_PAGE = "jira:adminPage", "jira:projectSettingsPage"  # modules in manifest.yml
LOG_ROWS = 25


@bp.get("/site")
def site() -> tuple[Response, int]:
    """The admin page: every link of this site, and the site's latest processed mails."""
    runtime = current_runtime()
    try:
        invocation = _page_call(runtime, ADMIN_PAGE)
    except Refused as refused:
        return refusal(refused)
    links = runtime.store.links()
    log.info("forge admin page shown to %s", invocation.principal)
    return jsonify(site=runtime.settings.jira_url, links=[_link(runtime, link) for link in links],
                   log=[_entry(e) for e in runtime.store.processing_log(limit=LOG_ROWS)]), 200


@bp.get("/desk")
def desk() -> tuple[Response, int]:
    """A project's settings page: the links into this project's service desk, and their latest mails."""
    runtime = current_runtime()
    try:
        invocation = _page_call(runtime, PROJECT_SETTINGS_PAGE)
        if invocation.project_key is None:
            raise Refused(403, "the call names no project")
        links = _desk_links(runtime, invocation.project_key)
    except Refused as refused:
        return refusal(refused)
    except RetryLater as later:  # the project of a desk comes from Jira
        return jsonify(error=later.detail), 503
    entries = sorted((e for link in links for e in runtime.store.processing_log(link=link.name, limit=LOG_ROWS)),
                     key=lambda e: e.time, reverse=True)[:LOG_ROWS]
    return jsonify(site=runtime.settings.jira_url, project=invocation.project_key,
                   links=[_link(runtime, link) for link in links], log=[_entry(e) for e in entries]), 200


def _page_call(runtime: Runtime, module_type: str) -> Invocation:
    """A verified call from one of our pages on the site this service serves, by a signed-in user.

    The page is the FIT's context.extension.type, not anything the browser sends: Jira shows the admin
    page to Jira admins only, so a project page cannot ask for the whole site's links."""
    invocation, installation = accept_call(runtime)
    _check_site(runtime, invocation, installation)
    if invocation.module_type != module_type:
        raise Refused(403, f"this answers the {module_type} page, not {invocation.module_type or 'a call'}")
    if invocation.principal is None:
        raise Refused(403, "the call names no Jira user")
    return invocation


def _check_site(runtime: Runtime, invocation: Invocation, installation: ForgeInstallation) -> None:
    """Another Jira site with the app installed sees nothing of this one's links."""
    served = runtime.settings.jira_url
    caller = invocation.site_url or installation.site_url
    if not served:
        raise Refused(403, "this jsm-mail has no Jira site configured (JSM_MAIL_JIRA_URL)")
    if site_host(caller) != site_host(served):
        raise Refused(403, f"this jsm-mail serves {site_host(served)}, not {site_host(caller) or 'an unnamed site'}")


def _desk_links(runtime: Runtime, project_key: str) -> list[Link]:
    desks: dict[str, str] = {}
    found = []
    for link in runtime.store.links():
        if link.service_desk_id not in desks:
            desks[link.service_desk_id] = runtime.jira.project_key(link.service_desk_id)
        if desks[link.service_desk_id] == project_key:
            found.append(link)
    return found


def _link(runtime: Runtime, link: Link) -> dict[str, Any]:
    with runtime.link_health.lock:
        failing = runtime.link_health.failing_since.get(link.name)
    return {"name": link.name, "mailbox": f"{link.username} on {link.host}", "folder": link.folder,
            "service_desk_id": link.service_desk_id, "request_type_id": link.request_type_id,
            "status": "failing" if failing else "ok",
            "failing_since": failing[0].isoformat() if failing else None, "error": failing[1] if failing else None}


def _entry(entry: LogEntry) -> dict[str, Any]:
    shown = entry.as_json()
    shown.pop("evidence", None)  # the admin pages' detail view has it; the Jira page keeps to the summary
    return shown
