"""The add-on service: Flask app (admin pages, health) plus the mailbox scheduler."""
from __future__ import annotations

import logging
import secrets

from flask import Flask
from waitress import serve as serve_wsgi

from plugin.runtime import Runtime
from plugin.settings import Settings
from plugin.web import admin, forge, health, logs

log = logging.getLogger(__name__)


def create_app(runtime: Runtime | None = None) -> Flask:
    runtime = runtime or Runtime(Settings.from_env())
    app = Flask(__name__, template_folder="web/templates")
    app.secret_key = secrets.token_bytes(32)  # flash messages only; nothing outlives the process
    app.extensions["jsm_mail"] = runtime
    for blueprint in (health.bp, admin.bp, logs.bp, forge.bp):
        app.register_blueprint(blueprint)
    return app


def serve(runtime: Runtime, host: str, port: int) -> None:
    """Run until interrupted: poll every link on schedule and serve the admin pages."""
    from plugin.demo import ensure_demo_link
    from plugin.scheduler import start_scheduler

    settings = runtime.settings
    if settings.demo:
        link = ensure_demo_link(runtime)
        log.info("demo mode: no JSM_MAIL_JIRA_URL, so a dry-run Jira records what would happen; "
                 "sample mails are in %s", link.host)
    app = create_app(runtime)
    scheduler = start_scheduler(runtime)
    app.extensions["jsm_mail_scheduler"] = scheduler
    log.info("admin pages at http://%s:%d/admin/ (user %s, password in %s or JSM_MAIL_ADMIN_PASSWORD)",
             host, port, settings.admin_user, settings.data_dir / "admin.password")
    try:
        serve_wsgi(app, host=host, port=port, threads=8, ident="jsm-mail")
    finally:
        scheduler.shutdown(wait=True)
