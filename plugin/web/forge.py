"""Forge remote endpoints under /forge/: Jira's comment events, each call proven by its Forge Invocation Token."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import jwt
from flask import Blueprint, Response, jsonify, request

from plugin.errors import RetryLater
from plugin.jira.forge_auth import api_base_url, system_token
from plugin.outbound.outbox import take_comment_event
from plugin.runtime import Runtime
from plugin.settings import Settings
from plugin.store.forge_installations import ForgeInstallation, ForgeInstallations, ForgeSeen
from plugin.web import current_runtime

log = logging.getLogger(__name__)
bp = Blueprint("forge", __name__, url_prefix="/forge")

FORGE_ISSUER = "forge/invocation-token"  # Forge remote invocation contract
SYSTEM_TOKEN_HEADER = "x-forge-oauth-system"  # endpoint.auth.appSystemToken in manifest.yml
_jwks_clients: dict[str, jwt.PyJWKClient] = {}


class KeysUnavailable(Exception):
    """The JWKS could not be fetched: the call may be genuine, so Forge should retry it."""


class Refused(Exception):
    """A /forge/ call that gets no answer but this status and reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def verify_invocation_token(authorization: str | None, settings: Settings) -> dict[str, Any]:
    """The claims of a valid Forge Invocation Token: RS256, signed by a key of the JWKS, for our app.

    Raises jwt.PyJWTError for anything else (forged, expired, not yet valid, another app's, no installation).
    """
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise jwt.InvalidTokenError("no bearer token")
    client = _jwks_clients.setdefault(settings.forge_jwks_url, jwt.PyJWKClient(settings.forge_jwks_url))
    try:
        key = client.get_signing_key_from_jwt(token).key
    except jwt.PyJWKClientConnectionError as exc:
        raise KeysUnavailable(str(exc)) from exc
    claims: dict[str, Any] = jwt.decode(token, key, algorithms=["RS256"], audience=settings.forge_app_id,
                                        issuer=FORGE_ISSUER, options={"require": ["exp", "iss", "aud"]})
    if not isinstance(claims.get("app"), dict) or not claims["app"].get("installationId"):
        raise jwt.InvalidTokenError("the token names no app installation")
    return claims


@dataclass(frozen=True, slots=True)
class Invocation:
    """What a verified FIT says about a call: which installation, which site, who, from where in Jira.

    Claims as the Forge Remote contract gives them: app.installationId, app.apiBaseUrl, context.cloudId,
    context.siteUrl, context.extension (the UI module and its project), principal (UI calls only).
    https://developer.atlassian.com/platform/forge/forge-remote-invocation-contract
    """

    installation_id: str
    cloud_id: str | None
    site_url: str | None
    api_base_url: str | None
    principal: str | None
    module_type: str | None  # context.extension.type: "jira:adminPage", "jira:projectSettingsPage"
    project_key: str | None  # context.extension.project.key on a project's pages

    @classmethod
    def of(cls, claims: dict[str, Any]) -> Invocation:
        app = claims["app"]
        context = _object(claims.get("context"))
        extension = _object(context.get("extension"))
        project = _object(extension.get("project"))
        principal = claims.get("principal")
        if isinstance(principal, dict):  # some contexts send {"accountId": ...}
            principal = principal.get("accountId")
        cloud_id = _text(context.get("cloudId"))
        return cls(str(app["installationId"]), cloud_id, _text(context.get("siteUrl")),
                   api_base_url(_text(app.get("apiBaseUrl")), cloud_id), _text(principal),
                   _text(extension.get("type")), _text(project.get("key")))


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return str(value) if isinstance(value, str | int) and str(value) else None


def accept_call(runtime: Runtime) -> tuple[Invocation, ForgeInstallation]:
    """Verify this request's FIT and record its installation (and system token) for its site.

    Raises Refused with the status Forge should see: 503 when the keys cannot be fetched, 401 otherwise."""
    try:
        claims = verify_invocation_token(request.headers.get("Authorization"), runtime.settings)
    except KeysUnavailable as exc:
        log.warning("forge keys unavailable: %s", exc)
        raise Refused(503, "cannot verify the invocation token now") from None
    except jwt.PyJWTError as exc:
        log.info("forge call refused: %s", exc)
        raise Refused(401, "invalid Forge Invocation Token") from None
    invocation = Invocation.of(claims)
    token = system_token(request.headers.get(SYSTEM_TOKEN_HEADER))
    installation = ForgeInstallations(runtime.store).note(ForgeSeen(
        invocation.installation_id, invocation.cloud_id, invocation.site_url, invocation.api_base_url,
        *(token or (None, None))))
    return invocation, installation


def refusal(refused: Refused) -> tuple[Response, int]:
    return jsonify(error=refused.reason), refused.status


@bp.post("/events/comment-created")
def comment_created() -> tuple[Response, int]:
    """avi:jira:commented:issue: mail an agent's public comment now; Forge retries, the outbox dedups."""
    runtime = current_runtime()
    try:
        accept_call(runtime)
    except Refused as refused:
        return refusal(refused)
    event = request.get_json(silent=True) or {}
    issue_key = (event.get("issue") or {}).get("key")
    comment_id = (event.get("comment") or {}).get("id")
    if not issue_key or not comment_id:
        return jsonify(error="the event names no issue key and comment id"), 400
    try:
        result = take_comment_event(runtime.settings, runtime.store, runtime.jira, issue_key, str(comment_id))
    except RetryLater as later:  # Jira is unavailable: Forge retries, and polling finds it otherwise
        return jsonify(error=later.detail), 503
    return jsonify(result=result), 200


@bp.post("/events/keep-token")
def keep_token() -> tuple[Response, int]:
    """The hourly scheduled trigger: nothing to do but bring the site's next system token for polling."""
    try:
        _, installation = accept_call(current_runtime())
    except Refused as refused:
        return refusal(refused)
    expires = installation.token_expires.isoformat() if installation.token_expires else None
    return jsonify(installation=installation.installation_id, token_expires=expires), 200
