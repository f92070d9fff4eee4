"""Forge remote endpoints under /forge/: Jira's comment events, each call proven by its Forge Invocation Token."""
from __future__ import annotations

import logging
from typing import Any

import jwt
from flask import Blueprint, Response, jsonify, request

from plugin.errors import RetryLater
from plugin.outbound.outbox import take_comment_event
from plugin.settings import Settings
from plugin.web import current_runtime

log = logging.getLogger(__name__)
bp = Blueprint("forge", __name__, url_prefix="/forge")

FORGE_ISSUER = "forge/invocation-token"  # Forge remote invocation contract
_jwks_clients: dict[str, jwt.PyJWKClient] = {}


class KeysUnavailable(Exception):
    """The JWKS could not be fetched: the call may be genuine, so Forge should retry it."""


def verify_invocation_token(authorization: str | None, settings: Settings) -> dict[str, Any]:
    """The claims of a valid Forge Invocation Token: RS256, signed by a key of the JWKS, for our app.

    Raises jwt.PyJWTError for anything else (forged, expired, not yet valid, another app's).
    """
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise jwt.InvalidTokenError("no bearer token")
    client = _jwks_clients.setdefault(settings.forge_jwks_url, jwt.PyJWKClient(settings.forge_jwks_url))
    try:
        key = client.get_signing_key_from_jwt(token).key
    except jwt.PyJWKClientConnectionError as exc:
        raise KeysUnavailable(str(exc)) from exc
    return jwt.decode(token, key, algorithms=["RS256"], audience=settings.forge_app_id, issuer=FORGE_ISSUER,
                      options={"require": ["exp", "iss", "aud"]})


@bp.post("/events/comment-created")
def comment_created() -> tuple[Response, int]:
    """avi:jira:commented:issue: mail an agent's public comment now; Forge retries, the outbox dedups."""
    runtime = current_runtime()
    try:
        verify_invocation_token(request.headers.get("Authorization"), runtime.settings)
    except KeysUnavailable as exc:
        log.warning("forge keys unavailable: %s", exc)
        return jsonify(error="cannot verify the invocation token now"), 503
    except jwt.PyJWTError as exc:
        log.info("forge call refused: %s", exc)
        return jsonify(error="invalid Forge Invocation Token"), 401
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
