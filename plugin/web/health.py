"""GET /health: no authentication; 200 while all is well (status "degraded" when a credential runs out
soon), 503 with the reasons when it is not."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from plugin.link_status import all_statuses
from plugin.web import current_runtime
from plugin.web.oauth import credential_health

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> ResponseReturnValue:
    runtime = current_runtime()
    problems: list[str] = []
    warnings: list[str] = []
    links = None
    try:
        with runtime.store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        linked = runtime.store.links()
        links = len(linked)
        problems, warnings = credential_health(linked)
    except SQLAlchemyError as exc:
        problems.append(f"database unavailable: {type(exc).__name__}")
    problems += runtime.link_health.problems(runtime.settings.link_failing_alert_s)
    statuses = all_statuses(runtime.store) if links is not None else []
    # The store holds the rounds of every process (a cron `poll` too); a link this process saw fail is said once.
    named = {problem.split(" has failed")[0] for problem in problems}
    problems += [problem for problem in (s.problem(runtime.settings.link_failing_alert_s) for s in statuses)
                 if problem and problem.split(" has failed")[0] not in named]
    scheduler = current_app.extensions.get("jsm_mail_scheduler")
    # "degraded": all works now, but a credential runs out within 14 days.
    status = "failing" if problems else "degraded" if warnings else "ok"
    body = {"status": status, "problems": problems, "warnings": warnings, "demo": runtime.settings.demo,
            "database": "ok" if links is not None else "error", "links": links,
            "scheduler": "running" if scheduler and scheduler.running else "stopped",
            "link_status": [status.as_json() for status in statuses]}
    return jsonify(body), 503 if problems else 200
