"""GET /health: no authentication, 200 with a JSON status while the service runs."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from plugin.web import current_runtime

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    runtime = current_runtime()
    try:
        with runtime.store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # health must answer, whatever is broken
        database = f"error: {type(exc).__name__}"
    scheduler = current_app.extensions.get("jsm_mail_scheduler")
    body = {"status": "ok" if database == "ok" else "degraded", "demo": runtime.settings.demo,
            "database": database, "links": len(runtime.store.links()) if database == "ok" else None,
            "scheduler": "running" if scheduler and scheduler.running else "stopped"}
    return jsonify(body), 200
