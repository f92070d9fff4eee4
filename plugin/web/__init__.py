"""Flask blueprints: admin pages, processing and error logs, health."""
from __future__ import annotations

from flask import current_app

from plugin.runtime import Runtime


def current_runtime() -> Runtime:
    """The service's runtime, as create_app registered it."""
    runtime: Runtime = current_app.extensions["jsm_mail"]
    return runtime
