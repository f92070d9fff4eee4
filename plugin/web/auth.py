"""Session login for the admin pages: hashed password, lock-out after repeated failures, rate limit per address."""
from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_wtf import FlaskForm
from werkzeug.security import check_password_hash
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired

from plugin.web import current_runtime

bp = Blueprint("auth", __name__, url_prefix="/admin")
MAX_FAILURES = 5  # wrong passwords in a row before the account is locked
LOCK_S = 15 * 60
LOGIN_RATE = "10 per minute"  # login attempts per client address (Flask-Limiter syntax)


@dataclass
class LoginGuard:
    """Counts wrong passwords per user; the account is locked for LOCK_S after MAX_FAILURES in a row."""

    password_hash: str
    failures: dict[str, int] = field(default_factory=dict)
    locked_until: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def locked_for_s(self, user: str) -> float:
        with self.lock:
            return max(0.0, self.locked_until.get(user, 0.0) - time.monotonic())

    def check(self, expected_user: str, user: str, password: str) -> bool:
        # Both comparisons always run, so the answer time does not tell a wrong user from a wrong password.
        right_password = check_password_hash(self.password_hash, password)
        right = hmac.compare_digest(user.encode(), expected_user.encode()) and right_password
        with self.lock:
            if right:
                self.failures.pop(user, None)
                return True
            self.failures[user] = self.failures.get(user, 0) + 1
            if self.failures[user] >= MAX_FAILURES:
                self.failures[user] = 0
                self.locked_until[user] = time.monotonic() + LOCK_S
            return False


class LoginForm(FlaskForm):
    user = StringField("User", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


def guard() -> LoginGuard:
    login_guard: LoginGuard = current_app.extensions["jsm_mail_login"]
    return login_guard


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never send a logged-in admin to another origin."""
    # Browsers read "/\\host" like "//host", another origin.
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) and not urlsplit(target).netloc:
        return target
    return url_for("admin.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    message = None
    status = 200
    if form.validate_on_submit():
        user = form.user.data or ""
        wait_s = guard().locked_for_s(user)
        if wait_s:
            message, status = gettext("Too many wrong passwords: try again in %(minutes)s minutes.",
                                      minutes=int(wait_s // 60) + 1), 429
        elif guard().check(current_runtime().settings.admin_user, user, form.password.data or ""):
            session.clear()
            session["admin"] = user
            session.permanent = True
            return redirect(_safe_next(request.args.get("next")))
        else:
            message, status = gettext("Wrong user or password."), 401
            if guard().locked_for_s(user):
                message, status = gettext("Too many wrong passwords: the login is locked for %(minutes)s minutes.",
                                          minutes=LOCK_S // 60), 429
    elif request.method == "POST":
        message, status = gettext("Enter the user and the password."), 400
    return render_template("login.html", form=form, message=message), status


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    session.clear()
    return redirect(url_for("auth.login"))


def require_admin(view: Callable[..., Any]) -> Callable[..., Any]:
    """The view answers only a logged-in admin; anyone else is sent to the login page."""
    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if session.get("admin") != current_runtime().settings.admin_user:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        answer: ResponseReturnValue = view(*args, **kwargs)
        return answer
    return guarded
