"""The add-on service: Flask app (admin pages, health) plus the mailbox scheduler."""
from __future__ import annotations

import logging
import secrets

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from waitress.server import create_server
from werkzeug.security import generate_password_hash

from plugin.runtime import Runtime
from plugin.settings import Settings
from plugin.web import admin, auth, forge, forge_ui, health, i18n, links, logs, metrics, oauth, recover
from plugin.web.security import init_security

log = logging.getLogger(__name__)
UPLOAD_OVERHEAD_BYTES = 64 * 1024  # form fields and multipart boundaries around an uploaded mail


class CannotListen(Exception):
    """The admin port cannot be opened (in use, not permitted); nothing has been polled yet."""


def create_app(runtime: Runtime | None = None) -> Flask:
    runtime = runtime or Runtime(Settings.from_env())
    settings = runtime.settings
    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    # Sessions and CSRF tokens are signed with a key that lives as long as the process: a restart logs admins out.
    app.secret_key = secrets.token_bytes(32)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_size_bytes + UPLOAD_OVERHEAD_BYTES
    app.extensions["jsm_mail"] = runtime
    app.extensions["jsm_mail_login"] = auth.LoginGuard(
        settings.admin_password_hash or generate_password_hash(settings.admin_password.reveal()))
    init_security(app)
    i18n.init_i18n(app)
    blueprints = (health.bp, auth.bp, admin.bp, links.bp, logs.bp, recover.bp, i18n.bp, oauth.bp, metrics.bp,
                  forge.bp, forge_ui.bp)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://")
    limiter.limit(auth.LOGIN_RATE, methods=["POST"])(auth.bp)
    return app


def serve(runtime: Runtime, host: str, port: int) -> None:
    """Run until interrupted: poll every link on schedule and serve the admin pages.

    The port is opened first, so a port in use stops the service before any mail is touched."""
    from plugin.demo import DEMO_LINK, prepare_demo_mailbox
    from plugin.scheduler import start_scheduler

    settings = runtime.settings
    app = create_app(runtime)
    try:
        server = create_server(app, host=host, port=port, threads=8, ident="jsm-mail")
    except OSError as exc:
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    if settings.demo:
        folder = prepare_demo_mailbox(settings)
        linked = runtime.store.link(DEMO_LINK) is not None
        log.info("demo mode: no JSM_MAIL_JIRA_URL, so a dry-run Jira records what would happen; sample mails are in "
                 "%s%s", folder, "" if linked else ": link them on the admin page (Link the demo mailbox)")
    key_file = settings.secret_key_file
    if not settings.demo and key_file and key_file.resolve().is_relative_to(settings.data_dir):
        log.warning("the key that encrypts mailbox passwords is %s, beside the data it protects: for production "
                    "set JSM_MAIL_SECRET_KEY or keep JSM_MAIL_SECRET_KEY_FILE outside the data dir", key_file)
    scheduler = start_scheduler(runtime)
    app.extensions["jsm_mail_scheduler"] = scheduler
    password_source = ("JSM_MAIL_ADMIN_PASSWORD_HASH" if settings.admin_password_hash else
                       f"{settings.data_dir / 'admin.password'} or JSM_MAIL_ADMIN_PASSWORD")
    log.info("admin pages at http://%s:%d/admin/ (user %s, password in %s)", host, port, settings.admin_user,
             password_source)
    try:
        server.run()
    finally:
        server.close()
        scheduler.shutdown(wait=True)
