"""What every admin-page test needs: the app on the real store, a test client, a logged-in admin, form tokens."""
from __future__ import annotations

import re

import pytest

from plugin.app import create_app
from plugin.runtime import Runtime


@pytest.fixture
def runtime(service):
    return Runtime(service.settings, store=service.store, jira=service.jira)


@pytest.fixture
def app(runtime):
    app = create_app(runtime)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def token_of(page: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert found, "the form carries no CSRF token"
    return found.group(1)


def log_in(client, settings, password: str | None = None):
    token = token_of(client.get("/admin/login").get_data(as_text=True))
    return client.post("/admin/login", data={"csrf_token": token, "user": settings.admin_user,
                                             "password": password or admin_password(settings)})


def admin_password(settings) -> str:
    return (settings.data_dir / "admin.password").read_text()


@pytest.fixture
def admin(client, settings):
    assert log_in(client, settings).status_code == 302
    return client


def form_token(client) -> str:
    return token_of(client.get("/admin/").get_data(as_text=True))
