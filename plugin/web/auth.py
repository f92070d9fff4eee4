"""HTTP basic authentication for the admin pages; they are never served without it."""
from __future__ import annotations

import hmac
from functools import wraps
from typing import Callable

from flask import Response, request

from plugin.web import current_runtime


def require_admin(view: Callable) -> Callable:
    @wraps(view)
    def guarded(*args, **kwargs):
        settings = current_runtime().settings
        auth = request.authorization
        if (auth is None or auth.type != "basic"
                or not hmac.compare_digest(auth.username or "", settings.admin_user)
                or not hmac.compare_digest(auth.password or "", settings.admin_password.reveal())):
            return Response("Authentication required\n", 401, {"WWW-Authenticate": 'Basic realm="jsm-mail admin"'})
        return view(*args, **kwargs)
    return guarded
